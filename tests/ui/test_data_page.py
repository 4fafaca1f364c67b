"""The Data page: the warehouse's tables, a read-only SQL query with results in a table, the
Parquet datasets, and a chart of records loaded per run per feed."""

from core.feeds import FeedSpec, create_feed
from core.bootstrap import start_run
from tests.ui.conftest import button, errors, labelled, texts

NUMBERS = "from lib import outputStream\nfor i in range(7):\n    outputStream.write({'n': i, 'square': i * i})\n"


def loaded(app):
    create_feed(FeedSpec(name="numbers", script=NUMBERS, destinations=["duckdb", "parquet"]))
    start_run("numbers", wait=True)
    start_run("numbers", wait=True)
    return app("data")


def run_sql(at, sql: str):
    labelled(at.text_area, "Read-only query").set_value(sql)
    return button(at, "Run query").click().run()


def test_before_any_load_the_page_says_so(app):
    at = app("data")
    assert "The warehouse has no tables yet" in texts(at)


def test_tables_with_their_rows_and_a_preview(app):
    at = loaded(app)
    tables = at.dataframe[0].value
    assert tables.to_dict("records") == [{"table": "numbers", "rows": 14, "columns": 4}]
    assert labelled(at.selectbox, "Browse a table").value == "numbers"
    preview = at.dataframe[1].value
    assert len(preview) == 14 and {"n", "square", "_tributary_run_id"} <= set(preview.columns)


def test_a_query_shows_its_results_in_a_table(app):
    at = run_sql(loaded(app), "SELECT n, square FROM numbers WHERE n >= 5 GROUP BY ALL ORDER BY n")
    [result] = [d.value for d in at.dataframe if list(d.value.columns) == ["n", "square"]]
    assert result.to_dict("records") == [{"n": 5, "square": 25}, {"n": 6, "square": 36}]
    assert "2 rows in" in texts(at)


def test_the_query_is_read_only_and_cannot_reach_files(app):
    at = run_sql(loaded(app), "DELETE FROM numbers")
    assert any("read-only" in e for e in errors(at))
    at = run_sql(at, "SELECT * FROM read_text('/etc/hostname')")
    assert any("file system operations are disabled" in e for e in errors(at))
    at = run_sql(at, "SELECT count(*) AS c FROM numbers")
    assert "1 row in" in texts(at)


def test_a_wrong_query_shows_duckdbs_message(app):
    at = run_sql(loaded(app), "SELECT nope FROM numbers")
    assert any('Referenced column "nope" not found' in e for e in errors(at))


def test_parquet_datasets_and_the_records_per_run_chart(app):
    at = loaded(app)
    page = texts(at)
    assert "Parquet files" in page
    parquet = [d.value for d in at.dataframe if "dataset" in d.value.columns][0]
    assert parquet.to_dict("records")[0]["runs"] == 2
    assert "Records loaded per run" in page
    assert len(at.get("vega_lite_chart")) == 1
