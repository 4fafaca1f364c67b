"""Tributary's command line: `python -m core.cli [--json] COMMAND ... [--json]`.

Every command prints a human summary, or one JSON document with --json (given anywhere), and
exits non-zero on failure: 1 for a failed test or run, 2 for bad input (with a message naming
the option or field, `error: <field>: <rule>`), 3 for something not found, 4 for a conflict (a
name taken, a run already active), 130 or 143 for a run that Ctrl-C or SIGTERM cancelled. It
never ends with a traceback for bad input, and ends quietly when the reader of its output goes
away (`... | head -1`).

    commands.py   the commands (Click)
    inputs.py     @file / - arguments, JSON options, connection options per auth type
    output.py     summaries, JSON documents, error messages
    interrupt.py  SIGINT and SIGTERM during `run`: the run ends as cancelled
"""

from __future__ import annotations

import os
import sys

import click

from common.errors import TributaryError
from core import bootstrap
from core.cli.commands import StdoutClosed, cli
from core.cli.output import (BROKEN_PIPE_EXIT, INTERRUPTED_EXIT, Output, emit, report_error,
                             report_tributary_error, report_usage_error, silence_stdout)

PROG = "python -m core.cli"


def _json_asked(argv: list[str]) -> bool:
    """--json anywhere before a `--`: errors found while parsing, before --json's own turn,
    are reported as JSON too."""
    options = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in options


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = Output(json=_json_asked(argv))
    try:
        result = cli.main(args=argv, prog_name=PROG, obj=out, standalone_mode=False)
        if not isinstance(result, tuple):
            return result if isinstance(result, int) else 0  # --help, for one
        data, text, code = result
        emit(out, data, text)
        sys.stdout.flush()
        return code
    except (BrokenPipeError, StdoutClosed):
        silence_stdout()
        return BROKEN_PIPE_EXIT
    except (KeyboardInterrupt, click.Abort):
        print(file=sys.stderr)
        return INTERRUPTED_EXIT
    except click.exceptions.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else exc.format_message(), file=sys.stderr)
        return exc.exit_code
    except click.UsageError as exc:
        return report_usage_error(out, exc)
    except click.ClickException as exc:
        report_error(out, exc.format_message(), None)
        return exc.exit_code
    except TributaryError as exc:
        return report_tributary_error(out, exc)
    except ValueError as exc:  # bad input a service did not word as a ValidationError
        report_error(out, str(exc), None)
        return 2


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown. Finalising DuckDB, SQLAlchemy and
    the objects of a large run took 0.1-0.15 s and does nothing a finished command needs: by
    now every run log is closed and every store and warehouse transaction has ended. What
    still runs is waited for first: notifications being delivered, the store's connections."""
    from storage.db import dispose_all

    bootstrap.current().deliveries.flush()
    dispose_all()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()
        code = code or BROKEN_PIPE_EXIT
    try:
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


__all__ = ["PROG", "cli", "exit_now", "main"]
