"""The Data page's chart of records per run: with one run it is one bar of sensible width on a
category axis with an integer scale from 0 (not a time axis with a tick like ".279" and a
hairline bar); a deleted feed has no place in the legend."""

import json

from core.bootstrap import start_run
from core.feeds import FeedSpec, create_feed, delete_feed

NUMBERS = "from lib import outputStream\nfor i in range(7):\n    outputStream.write({'n': i})\n"


def chart_spec(at) -> dict:
    [chart] = at.get("vega_lite_chart")
    return json.loads(chart.proto.spec)


def chart_rows(at, spec: dict) -> list[dict]:
    [chart] = at.get("vega_lite_chart")
    from streamlit import dataframe_util

    frames = [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in chart.proto.datasets]
    return [row for frame in frames for row in frame.to_dict("records")]


def test_one_run_is_one_bar_on_a_category_axis_with_an_integer_scale(app):
    create_feed(FeedSpec(name="numbers", script=NUMBERS))
    start_run("numbers", wait=True)
    at = app("data")
    spec = chart_spec(at)
    assert spec["mark"]["type"] == "bar" and spec["mark"]["size"] >= 40  # a bar, not a hairline
    assert spec["encoding"]["x"]["type"] == "nominal"  # one run, one category: no time ticks
    assert spec["encoding"]["y"]["axis"]["format"] == "d"
    assert spec["encoding"]["y"]["scale"]["domainMin"] == 0
    assert [r["records"] for r in chart_rows(at, spec)] == [7]


def test_a_deleted_feed_is_not_in_the_legend(app):
    create_feed(FeedSpec(name="numbers", script=NUMBERS))
    create_feed(FeedSpec(name="gone", script=NUMBERS))
    start_run("numbers", wait=True)
    start_run("gone", wait=True)
    delete_feed("gone")
    at = app("data")
    spec = chart_spec(at)
    assert spec["encoding"]["color"]["sort"] == ["numbers"]
    assert {r["feed"] for r in chart_rows(at, spec)} == {"numbers"}
