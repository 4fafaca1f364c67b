"""Connection forms shared by stage 1 of the feed editor and the Connections page: the NEW
CONNECTION dialog (name and auth type first), the parameters of each auth type, the masked
view of a saved connection with its edit form, and deletion with confirmation.

Secrets are never shown back: a saved password, each header value and each field of the JSON
body appears as **** beside its name, with its own "Replace" switch (and Remove); a saved form
starts afresh under new widget keys. The JSON body is plain text (no editor completing words).
"""

from __future__ import annotations

import uuid

import streamlit as st

from app_pages.parts.common import count_of, flash, forget_keys, sentence_start, show_problems
from app_pages.view_models.connection_forms import header_problems, json_body_problem, new_connection_problems
from core.connections import (
    DEFAULT_TOKEN_HEADER,
    DEFAULT_TOKEN_PATH,
    RUNS_AT_ONCE_MAX,
    ConnectionInput,
    create_connection,
    delete_connection,
    edit_connection,
    get_connection,
    masked_view,
)
from core.connection_check import check_connection, feeds_using, needs_url
from core.connection_fields import KEEP, body_fields, merged_over_stored
from common.errors import Conflict, NotFound, TributaryError, ValidationError
from common.secrets import MASK
from core.validation import AUTH_TYPES, NAME_MAX, connection_name_problems

_NEW_DIALOG = "conn:new-dialog"  # holds the caller's tag while the dialog is open
_DELETE_DIALOG = "conn:delete-dialog"  # holds the name of the connection to delete
CREATED = "conn:created"  # {"tag", "name", "auth_type", "saved"} for the caller to pick up


# ---------------------------------------------------------------- NEW CONNECTION


def open_new_connection(tag: str) -> None:
    st.session_state[_NEW_DIALOG] = tag


def show_open_dialogs() -> None:
    """Call once per run on a page that may open the dialogs (they stay open across reruns)."""
    if _NEW_DIALOG in st.session_state:
        _new_connection_dialog(st.session_state[_NEW_DIALOG])
    if _DELETE_DIALOG in st.session_state:
        _delete_dialog(st.session_state[_DELETE_DIALOG])


def take_created(tag: str) -> dict | None:
    """The connection the dialog just named for this caller, once."""
    created = st.session_state.get(CREATED)
    if created and created["tag"] == tag:
        return st.session_state.pop(CREATED)
    return None


def _close_new() -> None:
    st.session_state.pop(_NEW_DIALOG, None)
    forget_keys("newconn:")


@st.dialog("New connection", on_dismiss=_close_new)
def _new_connection_dialog(tag: str) -> None:
    name = st.text_input("Connection name", key="newconn:name", live=True, max_chars=NAME_MAX,
                         help=f"1-{NAME_MAX} letters, digits and underscores, e.g. sales_api")
    for _, message in connection_name_problems(name or "") if name else []:
        st.caption(f":red[:material/close: Connection name {message}]")
    auth_type = st.radio("Authentication type", list(AUTH_TYPES), format_func=AUTH_TYPES.get, key="newconn:auth",
                         horizontal=True)
    st.caption("Name and type are saved first; then enter the parameters for the type.")
    save, cancel = st.columns(2)
    if save.button("Save", type="primary", key="newconn:save", width="stretch"):
        problems = new_connection_problems((name or "").strip(), auth_type)
        if problems:
            show_problems(problems)
            return
        name = name.strip()
        saved = False
        if auth_type == "none":
            try:
                create_connection(name, "none")  # nothing more to enter
            except (ValidationError, Conflict) as exc:  # e.g. taken a moment ago in another tab
                show_problems(_problems_of(exc))
                return
            saved = True
        st.session_state[CREATED] = {"tag": tag, "name": name, "auth_type": auth_type, "saved": saved}
        _close_new()
        st.rerun()
    if cancel.button("Cancel", key="newconn:cancel", width="stretch"):
        _close_new()
        st.rerun()


def _problems_of(exc: ValidationError | Conflict) -> list[tuple[str, str]]:
    if isinstance(exc, ValidationError):
        return exc.problems
    field, colon, message = str(exc).partition(": ")  # "connection name: 'Sales' is already taken"
    return [(field, message)] if colon else [("connection", str(exc))]


# ---------------------------------------------------------------- parameters


def parameters_form(name: str, auth_type: str, prefix: str, existing: bool) -> bool:
    """The parameters of a connection's auth type with a Save button; True once saved.

    After a save the form starts afresh under new widget keys, so what was typed (secrets
    included) is neither shown again nor sent back by the browser."""
    if auth_type == "none":
        st.caption("No Auth: no credentials to enter. Scripts call the API without them.")
        if not existing:
            return False
    generation_key = f"form-generation:{prefix}"
    prefix = f"{prefix}:{st.session_state.get(generation_key, 0)}"
    if auth_type == "none":
        data, problems = ConnectionInput(), []
    elif auth_type == "basic":
        data, problems = _basic_fields(prefix, name, existing)
    else:
        data, problems = _custom_fields(prefix, name, existing)
    data.limits = _limits_fields(prefix, _stored(name, existing).get("limits") or {})
    if not st.button("Save parameters", type="primary", icon=":material/save:", key=f"{prefix}:save"):
        return False
    if problems:
        show_problems(problems)
        return False
    try:
        if existing:
            edit_connection(name, data)
        else:
            create_connection(name, auth_type, data)
    except (ValidationError, Conflict) as exc:
        show_problems(_problems_of(exc))
        return False
    st.session_state[generation_key] = st.session_state.get(generation_key, 0) + 1
    return True


def _limits_fields(prefix: str, stored: dict) -> dict:
    """lib.connection's request budget and retries for this connection (a script may change
    them with connection.configure())."""
    with st.expander("Rate limit and retries", expanded=bool(stored.get("rate") or stored.get("max_in_flight")
                                                                  or stored.get("max_concurrent_runs"))):
        st.caption("Every request a script makes through `lib.connection` keeps to these, across its threads; "
                   "429, 502, 503 and 504 answers and connection errors are retried, honouring Retry-After.")
        rate_column, per_column = st.columns(2)
        rate = rate_column.number_input("Requests per period (0: no limit)", min_value=0.0, max_value=100_000.0,
                                        value=float(stored.get("rate") or 0), step=1.0, key=f"{prefix}:rate")
        periods = ["second", "minute", "hour", "day"]
        per = per_column.selectbox("Period", periods, index=periods.index(stored.get("per") or "second"),
                                   key=f"{prefix}:per")
        in_flight_column, retries_column = st.columns(2)
        in_flight = in_flight_column.number_input("Requests at once (0: no limit)", min_value=0, max_value=256,
                                                  value=int(stored.get("max_in_flight") or 0), step=1,
                                                  key=f"{prefix}:in-flight")
        retries = retries_column.number_input("Retries", min_value=0, max_value=20,
                                              value=int(stored.get("retries", 5)), step=1, key=f"{prefix}:retries")
        runs_column, _ = st.columns(2)
        runs = runs_column.number_input("Runs at once (0: no limit)", min_value=0, max_value=RUNS_AT_ONCE_MAX,
                                        value=int(stored.get("max_concurrent_runs") or 0), step=1,
                                        key=f"{prefix}:runs-at-once",
                                        help="How many runs of feeds using this connection execute at the same "
                                             "time, on all workers together; the others wait in the queue")
    return {"rate": (int(rate) if float(rate).is_integer() else rate) or None, "per": per,
            "max_in_flight": int(in_flight) or None, "retries": int(retries),
            "max_concurrent_runs": int(runs) or None}


def _stored(name: str, existing: bool) -> dict:
    return masked_view(get_connection(name)) if existing else {}


def _secret_field(label: str, prefix: str, key: str, stored_masked: bool) -> str | None:
    """A secret input; for a stored secret, **** and a Replace switch. None keeps the stored one."""
    if stored_masked:
        shown, switch = st.columns([3, 1], vertical_alignment="bottom")
        shown.text_input(label, value=MASK, disabled=True, key=f"{prefix}:{key}-masked")
        if not switch.toggle("Replace", key=f"{prefix}:{key}-replace"):
            return None
    return st.text_input(label if not stored_masked else f"New {label.lower()}", type="password",
                         key=f"{prefix}:{key}")


def _basic_fields(prefix: str, name: str, existing: bool) -> tuple[ConnectionInput, list]:
    stored = _stored(name, existing)
    username = st.text_input("Username", value=stored.get("username", ""), key=f"{prefix}:username")
    password = _secret_field("Password", prefix, "password", bool(stored.get("password")))
    return ConnectionInput(username=username, password=password or (None if existing else "")), []


def _custom_fields(prefix: str, name: str, existing: bool) -> tuple[ConnectionInput, list]:
    stored = _stored(name, existing)
    problems: list[tuple[str, str]] = []
    auth_url = st.text_input("Authorization URL", value=stored.get("auth_url", ""), key=f"{prefix}:auth-url",
                             placeholder="https://auth.example.com/oauth/token")
    rows = _header_rows(prefix, list(stored.get("headers") or {}))
    problems += header_problems([(header, value or "") for header, value in rows])
    body = _json_body(prefix, stored.get("body") is not None, body_fields(name) if existing else None)
    if isinstance(body, str):
        problem = json_body_problem(body)
        if problem:
            problems.append(("JSON body", problem.message))
    path, template = st.columns(2)
    token_path = path.text_input("Token path", value=stored.get("token_path", DEFAULT_TOKEN_PATH),
                                 key=f"{prefix}:token-path",
                                 help="Where the token is in the auth response, e.g. data.token")
    token_header = template.text_input("Token header", value=stored.get("token_header", DEFAULT_TOKEN_HEADER),
                                       key=f"{prefix}:token-header", help="Sent on every request; <token> is replaced")
    headers = {header.strip(): value for header, value in rows if header.strip()}
    if existing:  # the fields left as they were keep their stored values
        headers, merged_body = merged_over_stored(name, headers, body if isinstance(body, dict) else None)
        body = merged_body if isinstance(body, dict) else body
    data = ConnectionInput(auth_url=auth_url, token_path=token_path, token_header=token_header,
                           headers=headers, body=body)
    return data, problems


def _masked_row(prefix: str, kind: str, field: str) -> str | None | bool:
    """A stored secret field: its name and ****, a Replace switch and a Remove button. KEEP
    (None) keeps the stored value, a string replaces it, False removes the field."""
    removed_key = f"{prefix}:{kind}-removed"
    shown, switch, remove = st.columns([3, 1.2, 0.6], vertical_alignment="center")
    shown.text(f"{field}: {MASK}")
    replace = switch.toggle("Replace", key=f"{prefix}:{kind}-replace:{field}")
    if remove.button("", icon=":material/delete:", key=f"{prefix}:{kind}-remove:{field}", help=f"Remove {field}"):
        st.session_state.setdefault(removed_key, []).append(field)
        st.rerun()
    if not replace:
        return KEEP
    return st.text_input(f"New value of {field}", type="password", key=f"{prefix}:{kind}-new:{field}") or ""


def _new_rows(prefix: str, kind: str, name_label: str, placeholder: str, first_row: bool) -> list[tuple[str, str]]:
    """Rows of a new field name and its (masked) value, with Remove and Add buttons."""
    rows_key = f"{prefix}:{kind}-rows"
    if rows_key not in st.session_state:
        st.session_state[rows_key] = [uuid.uuid4().hex[:6]] if first_row else []
    rows = []
    for row_id in list(st.session_state[rows_key]):
        key_col, value_col, remove_col = st.columns([2, 3, 0.6], vertical_alignment="bottom")
        field = key_col.text_input(name_label, key=f"{prefix}:{kind}-name:{row_id}", placeholder=placeholder)
        value = value_col.text_input("Value", key=f"{prefix}:{kind}-value:{row_id}", type="password")
        if remove_col.button("", icon=":material/delete:", key=f"{prefix}:{kind}-remove-row:{row_id}",
                             help="Remove this row"):
            st.session_state[rows_key].remove(row_id)
            st.rerun()
        rows.append((field or "", value or ""))
    if st.button(f"Add {name_label.lower()}", icon=":material/add:", key=f"{prefix}:{kind}-add"):
        st.session_state[rows_key].append(uuid.uuid4().hex[:6])
        st.rerun()
    return rows


def _header_rows(prefix: str, stored: list[str]) -> list[tuple[str, str | None]]:
    """Headers as name/value rows. A stored header shows its name with ****, and its value can
    be replaced or the header removed on its own; a value KEEP (None) keeps the stored one."""
    st.markdown("**Headers** sent to the authorization URL")
    removed = st.session_state.get(f"{prefix}:h-removed", [])
    rows: list[tuple[str, str | None]] = []
    for header in stored:
        if header not in removed:
            rows.append((header, _masked_row(prefix, "h", header)))
    return rows + _new_rows(prefix, "h", "Header", "X-Client-Id", first_row=not stored)


def _json_body(prefix: str, stored: bool, fields: list[str] | None) -> str | dict | None:
    """The JSON body: as text for a new connection (or to replace a stored one whole); a stored
    object's fields show their names with ****, each replaceable or removable on its own
    (returned as {field: KEEP or new text}). None keeps the stored body."""
    st.markdown("**JSON body** sent to the authorization URL")
    if stored and not st.toggle("Replace the whole body", key=f"{prefix}:body-replace"):
        if fields is None:
            st.text(f"(a JSON array) {MASK}")
            return None
        removed = st.session_state.get(f"{prefix}:b-removed", [])
        body: dict = {}
        for field in fields:
            if field not in removed:
                body[field] = _masked_row(prefix, "b", field)
        added = _new_rows(prefix, "b", "Field", "client_secret", first_row=False)
        body.update({field.strip(): value for field, value in added if field.strip()})
        st.caption("A new value is sent as a JSON string; for numbers or nested objects, replace the whole body.")
        if set(body) == set(fields) and all(value is KEEP for value in body.values()):
            return None
        return body
    text = st.text_area("JSON body", key=f"{prefix}:body", height=140, label_visibility="collapsed",
                        placeholder='{"client_id": "…", "client_secret": "…"}')
    problem = json_body_problem(text or "")
    if problem:
        st.caption(f":red[:material/close: JSON body {problem.message}]")
    elif (text or "").strip():
        st.caption(":green[:material/check: Valid JSON]")
    return text or ""


# ---------------------------------------------------------------- saved connections


def connection_details(name: str, prefix: str, deletable: bool = True) -> None:
    """A saved connection: masked parameters, their edit form and (where asked) a Delete button."""
    try:
        view = masked_view(get_connection(name))
    except NotFound as exc:
        st.warning(str(exc))
        return
    st.caption(masked_summary(view))
    # Every auth type has parameters to edit: No Auth its rate limit and retries.
    with st.expander("Edit parameters", icon=":material/edit:"):
        name_col, type_col = st.columns(2)
        name_col.text_input("Connection name", value=view["name"], disabled=True, key=f"{prefix}:ro-name",
                            help="Fixed once the connection exists")
        type_col.text_input("Authentication type", value=view["auth_type_label"], disabled=True,
                            key=f"{prefix}:ro-type", help="Fixed once the connection exists")
        if parameters_form(name, view["auth_type"], f"{prefix}:edit", existing=True):
            flash(f"Connection {name} saved.")
            st.rerun()
    if deletable and st.button("Delete connection", icon=":material/delete:", key=f"{prefix}:delete"):
        st.session_state[_DELETE_DIALOG] = name
        st.rerun()


def masked_summary(view: dict) -> str:
    """A saved connection in one line, secrets as ****."""
    if view["auth_type"] == "basic":
        return f"Username **{view.get('username', '')}** · password {view.get('password') or 'not set'}"
    if view["auth_type"] == "custom":
        headers = ", ".join(f"{h}: {v}" for h, v in (view.get("headers") or {}).items()) or "none"
        body = view.get("body") or "none"
        return (f"Token from **{view.get('auth_url', '')}** (at `{view.get('token_path')}`) sent as "
                f"`{view.get('token_header')}` · headers {headers} · body {body}")
    return "No Auth: scripts call the API without credentials."


def _close_delete() -> None:
    st.session_state.pop(_DELETE_DIALOG, None)


@st.dialog("Delete connection", on_dismiss=_close_delete)
def _delete_dialog(name: str) -> None:
    st.write(f"Delete the connection **{name}**? Its credentials are erased; this cannot be undone.")
    users = feeds_using(name)
    if users:
        st.warning(f"It is used by {count_of(len(users), 'feed')}: {', '.join(users)}. Change their connection "
                   "or delete them first: it cannot be deleted while they use it.", icon=":material/block:")
    delete, cancel = st.columns(2)
    if delete.button("Yes, delete", type="primary", key="conn:delete-confirm", width="stretch"):
        try:
            delete_connection(name)
        except (Conflict, NotFound, TributaryError) as exc:
            st.error(str(exc), icon=":material/block:")
            return
        _close_delete()
        flash(f"Connection {name} deleted.", ":material/delete:")
        st.rerun()
    if cancel.button("Cancel", key="conn:delete-cancel", width="stretch"):
        _close_delete()
        st.rerun()


# ---------------------------------------------------------------- Test connection


def test_connection(name: str, auth_type: str, prefix: str) -> None:
    """Make one call with the connection and show how the API answered (never a secret)."""
    with st.expander("Test connection", icon=":material/network_check:"):
        url = None
        if needs_url(auth_type):
            url = st.text_input("URL to call", key=f"{prefix}:check-url", placeholder="https://api.example.com/health",
                                help="A GET to this URL" + (" with the username and password" if auth_type == "basic"
                                                            else ""))
        else:
            st.caption("Calls the authorization URL as a script would, and looks for the token in its answer.")
        if not st.button("Test connection", icon=":material/network_check:", key=f"{prefix}:check"):
            return
        try:
            with st.spinner("Calling the API…"):
                result = check_connection(name, url)
        except (ValidationError, NotFound) as exc:
            show_problems(exc.problems if isinstance(exc, ValidationError) else [("connection", str(exc))])
            return
        if result.ok:
            st.success(sentence_start(result.summary), icon=":material/check_circle:")
        else:
            st.error(sentence_start(result.summary), icon=":material/error:")
