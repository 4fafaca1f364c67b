"""Checks behind the connection forms, run while the user types, before anything is saved.

The services in core.connections validate again when saving; these give earlier and more
precise messages (e.g. the line and column of a JSON mistake, for the editor to mark).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.connections import list_connections
from core.validation import AUTH_TYPES, connection_name_problems

Problems = list[tuple[str, str]]


def new_connection_problems(name: str, auth_type: str) -> Problems:
    """The NEW CONNECTION dialog's rules: Peak's name rules, a free name, a known auth type."""
    problems = connection_name_problems(name)
    if name and name in {c.name for c in list_connections()}:
        problems.append(("connection name", f"{name!r} is already taken"))
    if auth_type not in AUTH_TYPES:
        problems.append(("authentication type", "choose one"))
    return problems


@dataclass
class JsonProblem:
    message: str
    line: int  # 1-based, as editors count
    column: int


def json_body_problem(text: str) -> JsonProblem | None:
    """Why a JSON body does not parse, or None. An empty body is fine: nothing is sent."""
    if not text or not text.strip():
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        return JsonProblem(message, exc.lineno, exc.colno)
    if not isinstance(value, (dict, list)):
        return JsonProblem("must be a JSON object or array", 1, 1)
    return None


def header_problems(rows: list[tuple[str, str]]) -> Problems:
    problems = []
    seen = set()
    for number, (name, value) in enumerate(rows, 1):
        name = name.strip()
        if not name and value:
            problems.append(("headers", f"row {number} has a value but no header name"))
        elif name and (":" in name or any(c.isspace() for c in name)):
            problems.append(("headers", f"{name!r} is not a header name (no spaces or colons)"))
        elif name.lower() in seen:
            problems.append(("headers", f"{name!r} is listed twice"))
        if name:
            seen.add(name.lower())
    return problems
