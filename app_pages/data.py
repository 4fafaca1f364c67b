"""Data: the warehouse's tables, a read-only SQL query against the embedded DuckDB warehouse,
the Parquet datasets, and records loaded per run per feed."""

import altair as alt
import streamlit as st

from app_pages.parts.common import count_of
from common.errors import TributaryError
from app_pages.view_models.warehouse_browser import (
    embedded_warehouse,
    example_query,
    list_tables,
    parquet_datasets,
    records_per_run,
    run_query,
    table_preview,
)

def records_chart(per_run) -> alt.Chart:
    """One bar per run, in the order they finished: a run is a category on the axis (not an
    instant on a time scale, where one run is a hairline bar at a tick like ".279"), the
    records an integer scale from 0, and the legend only the feeds that exist."""
    return alt.Chart(per_run).mark_bar(size=min(60, max(4, 600 // max(len(per_run), 1)))).encode(
        x=alt.X("label:N", sort=list(per_run["label"]), title="Run finished (UTC)",
                axis=alt.Axis(labelAngle=-40, labelOverlap=True, labelLimit=160)),
        y=alt.Y("records:Q", title="Records loaded", scale=alt.Scale(domainMin=0),
                axis=alt.Axis(format="d", tickMinStep=1)),
        color=alt.Color("feed:N", title="Feed", sort=sorted(per_run["feed"].unique())),
        tooltip=[alt.Tooltip("feed:N", title="Feed"), alt.Tooltip("run:N", title="Run"),
                 alt.Tooltip("finished:T", title="Finished", format="%Y-%m-%d %H:%M:%S"),
                 alt.Tooltip("records:Q", title="Records", format=",")],
    ).properties(height=320)


st.title("Data", anchor=False)
if not embedded_warehouse():
    st.info("The Data page browses the embedded DuckDB warehouse; this Tributary loads into another warehouse.")
    st.stop()

try:
    tables = list_tables()
except TributaryError as exc:
    st.error(str(exc))
    st.stop()



@st.fragment
def browse(tables) -> None:
    """A table's first rows; choosing another table reruns only this part."""
    table = st.selectbox("Browse a table", list(tables["table"]), key="data:table")
    try:
        preview = table_preview(table)
    except TributaryError as exc:
        st.error(str(exc))
        return
    st.caption(f"First {len(preview.frame)} rows of {table}")
    st.dataframe(preview.frame, hide_index=True)


@st.fragment
def query(tables) -> None:
    """The SQL box and its last result (kept while the user edits the next query)."""
    if "data:sql" not in st.session_state:
        st.session_state["data:sql"] = example_query(None if tables.empty else tables["table"].iloc[0])
    sql = st.text_area("Read-only query", key="data:sql", height=120,
                       help="Runs against the DuckDB warehouse, read-only; files outside it cannot be read.")
    if st.button("Run query", type="primary", icon=":material/play_arrow:", key="data:run"):
        try:
            st.session_state["data:result"] = run_query(sql)
        except TributaryError as exc:
            st.session_state["data:result"] = exc
    result = st.session_state.get("data:result")
    if isinstance(result, TributaryError):
        st.error(str(result), icon=":material/error:")
    elif result is not None:
        more = " (more rows exist; only these are shown)" if result.truncated else ""
        st.caption(f"{count_of(len(result.frame), 'row')} in {result.duration_s:.2f} s{more}")
        st.dataframe(result.frame, hide_index=True)


st.subheader("Tables", anchor=False)
if tables.empty:
    st.info("The warehouse has no tables yet: run a feed to load some.")
else:
    st.dataframe(tables, hide_index=True)
    browse(tables)

st.subheader("SQL", anchor=False)
query(tables)

datasets = parquet_datasets()
if not datasets.empty:
    st.subheader("Parquet files", anchor=False)
    st.dataframe(datasets, hide_index=True)

st.subheader("Records loaded per run", anchor=False)
per_run = records_per_run()
if per_run.empty:
    st.caption("No successful run yet.")
else:
    st.altair_chart(records_chart(per_run))
