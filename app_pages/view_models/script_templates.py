"""What stage 2's editor starts from: Peak's template, or one that uses the feed's connection
(`lib.connection`, a requests.Session carrying its Basic or Custom Auth), and the example
scripts in examples/ that the snippet picker offers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.feeds import PEAK_TEMPLATE

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

_HOW_IT_SIGNS_IN = {
    "basic": "Basic Auth: the username and password go with every request",
    "custom": "Custom Auth: a token from the authorization URL goes with every request, fetched again on a 401",
}

_CONNECTION_TEMPLATE = '''# Fetch data from a REST API and write it to the output stream.
#
# connection                  a requests.Session signed in with this feed's connection
#                             ({how}), e.g. connection.get(url).
# outputStream.write(record)  writes one record (a dict) to the feed.
# metadata                    the state saved by the last successful run ({{}} at first).
# metadata.save(obj)          keeps a state (a dict) for the next run, e.g. a cursor.
from lib import connection, outputStream, metadata

'''


def uses_connection(auth_type: str | None) -> bool:
    return auth_type in _HOW_IT_SIGNS_IN


def starting_template(auth_type: str | None) -> str:
    """The script a new feed starts from with a connection of this auth type (None: none)."""
    if not uses_connection(auth_type):
        return PEAK_TEMPLATE
    return _CONNECTION_TEMPLATE.format(how=_HOW_IT_SIGNS_IN[auth_type])


def is_starting_point(script: str) -> bool:
    """Whether the script is blank or one of the templates as it was given: nothing the user
    typed would be lost by replacing it."""
    templates = {PEAK_TEMPLATE, *(starting_template(a) for a in _HOW_IT_SIGNS_IN)}
    return not script.strip() or script in templates


def template_caption(connection: str, auth_type: str) -> str:
    return (f"The template uses `connection` from `lib`: a requests.Session signed in with the connection "
            f"**{connection}** ({_HOW_IT_SIGNS_IN[auth_type]}). Call `connection.get(url)` instead of "
            "`requests.get(url)`.")


@dataclass(frozen=True)
class Example:
    name: str  # the file's name, e.g. basic_auth_connection.py
    description: str  # its first comment
    script: str


def examples(folder: Path = EXAMPLES_DIR) -> list[Example]:
    """The example scripts, by file name; none when the folder is not there."""
    found = []
    for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
        script = path.read_text(encoding="utf-8")
        found.append(Example(path.name, _first_comment(script), script))
    return found


def _first_comment(script: str) -> str:
    block: list[str] = []
    for line in script.splitlines():
        if line.startswith("#"):
            block.append(line.lstrip("#").strip())
        elif block:
            break
    return " ".join(part for part in block if part)
