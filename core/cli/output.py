"""What the command line prints: a human summary or one JSON document (--json), errors as
`error: <field>: <rule>` lines (or a JSON document with the problems), and nothing at all
once the reader of standard output has gone (`... | head -1`)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import click

from common.errors import TributaryError

BROKEN_PIPE_EXIT = 141  # as a shell reports a command that SIGPIPE ended (128 + 13)
INTERRUPTED_EXIT = 130  # 128 + SIGINT


@dataclass
class Output:
    """One command's output settings, shared by the root group and its subcommands."""

    json: bool = False


def set_json(ctx: click.Context, _param, value: bool) -> None:
    """--json's callback, wherever it appears: before the command, after it, or on a group."""
    if value:
        ctx.find_root().ensure_object(Output).json = True


def emit(out: Output, data, text: str) -> None:
    if out.json:
        if data is not None:
            print(json.dumps(data, default=str, indent=2))
    elif text:
        print(text)


def table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def report_error(out: Output, message: str, problems: list | None) -> None:
    if out.json:
        print(json.dumps({"error": message, "problems": problems}))
    else:
        print(f"error: {message}", file=sys.stderr)


def report_tributary_error(out: Output, exc: TributaryError) -> int:
    problems = getattr(exc, "problems", None)
    report_error(out, str(exc), [list(p) for p in problems] if problems is not None else None)
    return exc.exit_code


def _field_of(param: click.Parameter) -> str:
    if isinstance(param, click.Option):
        return "/".join(param.opts)
    return (param.name or "argument").replace("_", " ")


def usage_problem(exc: click.UsageError) -> tuple[str, list | None]:
    """A usage error as a message and, where it concerns one option or argument, the
    (field, rule) problem."""
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        field = _field_of(exc.param)
        return f"{field}: is required", [[field, "is required"]]
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        field, rule = _field_of(exc.param), exc.message.rstrip(".")
        return f"{field}: {rule}", [[field, rule]]
    return exc.format_message(), None


def report_usage_error(out: Output, exc: click.UsageError) -> int:
    message, problems = usage_problem(exc)
    if out.json:
        report_error(out, message, problems)
        return exc.exit_code
    if exc.ctx is not None:
        print(exc.ctx.get_usage(), file=sys.stderr)
        print(f"Try '{exc.ctx.command_path} --help' for help.", file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    return exc.exit_code


def silence_stdout() -> None:
    """Standard output's reader has gone: point it at /dev/null, so that the flush at exit
    does not fail again (https://docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
