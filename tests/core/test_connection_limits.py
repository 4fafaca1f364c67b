"""A connection's request budget and retries (lib.connection), set with the connection and
applied by the scripts that use it; bad values are refused naming the field."""

from __future__ import annotations

import pytest

from common.errors import ValidationError
from core.connections import ConnectionInput, create_connection, edit_connection, masked_view, get_connection
from core.feeds import FeedSpec, create_feed
from core.preview import PreviewRequest, preview_feed

SHOWS_SETTINGS = ("from lib import connection, outputStream\n"
                  "s = connection.settings\n"
                  "outputStream.write({'rate': s.get('rate'), 'per': s.get('per'), 'max_in_flight': s.get('max_in_flight'),"
                  " 'retries': s.get('retries')})\n")


def test_limits_saved_with_the_connection_reach_the_script(tributary):
    create_connection("DemoBasic", "basic", ConnectionInput(username="ana", password="s3cret-pass",
                                                            limits={"rate": 10, "per": "second", "max_in_flight": 4,
                                                                    "retries": 3}))
    assert masked_view(get_connection("DemoBasic"))["limits"] == {"rate": 10, "per": "second", "max_in_flight": 4,
                                                                 "retries": 3}
    create_feed(FeedSpec(name="limited", script=SHOWS_SETTINGS, connection="DemoBasic"))
    result = preview_feed("limited")
    assert result.ok, result.error
    assert result.records == [{"rate": 10, "per": "second", "max_in_flight": 4, "retries": 3}]

    edit_connection("DemoBasic", ConnectionInput(limits={"rate": None, "retries": 0}))  # no budget, no retries
    assert masked_view(get_connection("DemoBasic"))["limits"] == {"retries": 0}


@pytest.mark.parametrize("limits, field", [
    ({"rate": -1}, "requests per period"), ({"rate": 5, "per": "week"}, "period"),
    ({"max_in_flight": 1000}, "requests at once"), ({"retries": 50}, "retries"), ({"retries": "3"}, "retries"),
])
def test_bad_limits_are_refused_naming_the_field(tributary, limits, field):
    with pytest.raises(ValidationError) as refused:
        create_connection("Bad", "basic", ConnectionInput(username="ana", password="s3cret-pass", limits=limits))
    assert field in [name for name, _ in refused.value.problems], refused.value.problems
