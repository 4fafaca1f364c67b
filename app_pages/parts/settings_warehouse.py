"""The Settings page's Warehouse tab: the warehouse in use, a credentials form per section and
a "Test connection" per warehouse. The rules live in app_pages.view_models.settings_view.

A saved form starts afresh under new widget keys, so a typed secret does not linger in the
session; a refused one keeps what was typed and shows each message under its field.
"""

from __future__ import annotations

import streamlit as st

from common.errors import TributaryError
from app_pages.view_models.settings_view import (
    SECTION_TITLES,
    WAREHOUSE_ENV,
    WAREHOUSE_TITLES,
    FieldSpec,
    check_warehouse,
    destinations_of,
    form_fields,
    save_section,
    sections_for,
    stored_url,
    warehouse_choices,
    warehouse_overview,
)


def warehouse_tab() -> None:
    overview = warehouse_overview()
    if overview.problem:
        st.error(overview.problem, icon=":material/error:")
    else:
        offered = ", ".join(title for _, title in overview.destinations)
        st.markdown(f"**In use: {overview.title}** (`{overview.name}`) · destinations offered: {offered}")
    st.caption(f"The warehouse in use is chosen by the {WAREHOUSE_ENV} environment variable "
               f"({', '.join(warehouse_choices())}); restart Tributary after changing it. "
               "Credentials are stored encrypted in the data dir; a TRIBUTARY_<SECTION>_<FIELD> "
               "variable overrides a stored value.")
    # The one in use first and open; the others stay editable, to prepare a switch.
    ordered = sorted(warehouse_choices(), key=lambda name: name != overview.name)
    for warehouse in ordered:
        in_use = " (in use)" if warehouse == overview.name else ""
        with st.expander(f"{WAREHOUSE_TITLES.get(warehouse, warehouse)}{in_use}", expanded=bool(in_use)):
            _warehouse_panel(warehouse)


def _warehouse_panel(warehouse: str) -> None:
    st.caption("Destinations: " + ", ".join(title for _, title in destinations_of(warehouse)))
    sections = sections_for(warehouse)
    if not sections:
        st.caption("Nothing to configure: the DuckDB file and the Parquet files live in the data dir.")
    for section in sections:
        _section_form(warehouse, section)
    if st.button("Test connection", key=f"settings:test:{warehouse}", icon=":material/network_check:"):
        with st.spinner("Connecting…"):
            try:
                results = check_warehouse(warehouse)
            except TributaryError as exc:
                st.error(str(exc), icon=":material/error:")
                return
        for result in results:
            if result.ok:
                st.success(f"**{result.title}**: {result.message}", icon=":material/check_circle:")
            else:
                st.error(f"**{result.title}**: {result.message}", icon=":material/error:")


def _keys(section: str) -> tuple[str, str, str]:
    return f"settings:gen:{section}", f"settings:problems:{section}", f"settings:saved:{section}"


def _section_form(warehouse: str, section: str) -> None:
    gen_key, problems_key, saved_key = _keys(section)
    generation = st.session_state.get(gen_key, 0)
    problems = st.session_state.get(problems_key) or {}
    with st.form(f"settings:form:{warehouse}:{section}:{generation}"):
        st.markdown(f"**{SECTION_TITLES.get(section, section)}**")
        url = stored_url(section)
        if url:
            st.caption(f"Stored URL: `{url}`")
        values = {}
        for spec in form_fields(section):
            values[spec.name] = _input(warehouse, spec, generation)
            if spec.overridden_by:
                st.caption(f":orange[{spec.overridden_by} is set and takes precedence over the value saved here.]")
            if spec.name in problems:
                st.caption(f":red[:material/close: {spec.label} {problems[spec.name]}]")
        for message in problems.get("", []):
            st.error(message, icon=":material/error:")
        submitted = st.form_submit_button("Save", type="primary", icon=":material/save:")
    if st.session_state.pop(saved_key, False):
        st.success(f"{SECTION_TITLES.get(section, section)} settings saved.", icon=":material/check_circle:")
    if submitted:
        outcome = save_section(section, values)
        if outcome.saved:
            st.session_state[gen_key] = generation + 1
            st.session_state.pop(problems_key, None)
            st.session_state[saved_key] = True
        else:
            st.session_state[problems_key] = {**outcome.field_problems, "": outcome.other_problems}
        st.rerun()


def _input(warehouse: str, spec: FieldSpec, generation: int):
    # The same section appears under two warehouses (S3 under Redshift only today, but the
    # key says where it is), so the key names the warehouse too.
    key = f"settings:{warehouse}:{spec.section}:{spec.name}:{generation}"
    if spec.kind == "secret":
        return st.text_input(spec.label, value="", type="password", placeholder=spec.placeholder,
                             help=spec.help or None, key=key, autocomplete="off")
    if spec.kind == "choice":
        return st.selectbox(spec.label, spec.options, index=spec.options.index(spec.value), help=spec.help or None,
                            key=key)
    if spec.kind == "number":
        return st.number_input(spec.label, value=int(spec.value), min_value=0, step=1, help=spec.help or None,
                               key=key)
    return st.text_input(spec.label, value=str(spec.value), help=spec.help or None, key=key)
