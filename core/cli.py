"""Tributary's command line: `python -m core.cli [--json] COMMAND ...`.

Every command prints a human summary, or one JSON document with --json, and exits non-zero
on failure: 1 for a failed test or run, 2 for bad input, 3 for something not found, 4 for a
conflict (a name taken, a run already active).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from core import connections as connections_service
from core import feeds as feeds_service
from core import bootstrap, preview
from core import runs as runs_service
from core import state as state_service
from common.errors import TributaryError, ValidationError


def _read_text(value: str) -> str:
    """An argument given inline, as @file, or as - for standard input."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        return Path(value[1:]).read_text(encoding="utf-8")
    return value


def _headers(pairs: list[str] | None) -> dict | None:
    if pairs is None:
        return None
    headers = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValidationError.single("header", f"{pair!r} must look like Name=value")
        key, _, value = pair.partition("=")
        headers[key.strip()] = value
    return headers


def _connection_input(args) -> connections_service.ConnectionInput:
    password = args.password
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    return connections_service.ConnectionInput(
        username=args.username, password=password, auth_url=args.auth_url, headers=_headers(args.header),
        body=_read_text(args.body) if args.body is not None else None, token_path=args.token_path,
        token_header=args.token_header,
    )


def _feed_changes(args) -> dict:
    changes = {}
    if args.script is not None:
        changes["script"] = _read_text(args.script)
    simple = {"connection": "connection", "load_type": "load_type", "timeout": "timeout_s", "memory": "memory_limit_mb",
              "retries": "retries", "retry_backoff": "retry_backoff_s", "max_rejected": "max_rejected_ratio"}
    for arg, key in simple.items():
        if getattr(args, arg) is not None:
            changes[key] = getattr(args, arg)
    if args.network is not None:
        changes["network"] = args.network == "on"
    lists = {"dep": "dependencies", "primary_key": "primary_key", "destination": "destinations", "tag": "tags"}
    for arg, key in lists.items():
        if getattr(args, arg) is not None:
            changes[key] = [v for v in getattr(args, arg) if v != ""]
    return changes


def _feed_view(feed) -> dict:
    spec = asdict(feeds_service.spec_of(feed))
    spec.update(paused=feed.paused, created_at=feed.created_at.isoformat(), updated_at=feed.updated_at.isoformat())
    return spec


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- commands


def cmd_connections(args) -> tuple[object, str, int]:
    svc = connections_service
    if args.action == "list":
        views = [svc.masked_view(c) for c in svc.list_connections()]
        return views, _table(views, ["name", "auth_type_label", "updated_at"]), 0
    if args.action == "show":
        view = svc.masked_view(svc.get_connection(args.name))
        return view, json.dumps(view, indent=2), 0
    if args.action == "create":
        conn = svc.create_connection(args.name, args.auth, _connection_input(args))
        return svc.masked_view(conn), f"connection {conn.name} created ({conn.auth_type})", 0
    if args.action == "edit":
        conn = svc.edit_connection(args.name, _connection_input(args), new_name=args.rename, new_auth_type=args.auth)
        return svc.masked_view(conn), f"connection {conn.name} updated", 0
    svc.delete_connection(args.name)
    return {"deleted": args.name}, f"connection {args.name} deleted", 0


def cmd_feeds(args) -> tuple[object, str, int]:
    svc = feeds_service
    if args.action == "list":
        views = [_feed_view(f) for f in svc.list_feeds()]
        return views, _table(views, ["name", "connection", "load_type", "destinations", "paused"]), 0
    if args.action == "show":
        view = _feed_view(svc.get_feed(args.name))
        return view, json.dumps(view, indent=2), 0
    if args.action == "create":
        spec = svc.FeedSpec(name=args.name, **_feed_changes(args))
        feed = svc.create_feed(spec)
        return _feed_view(feed), f"feed {feed.name} created", 0
    if args.action == "edit":
        feed = svc.edit_feed(args.name, **_feed_changes(args))
        return _feed_view(feed), f"feed {feed.name} updated", 0
    if args.action == "delete":
        svc.delete_feed(args.name, drop_data=args.drop_data)
        return {"deleted": args.name}, f"feed {args.name} deleted", 0
    if args.action == "export":
        text = svc.export_yaml(args.names or None)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            return {"exported": args.output}, f"exported to {args.output}", 0
        return {"yaml": text}, text.rstrip("\n"), 0
    names = svc.import_yaml(Path(args.file).read_text(encoding="utf-8"), replace=args.replace)
    return {"imported": names}, f"imported {', '.join(names)}", 0


def cmd_test(args) -> tuple[object, str, int]:
    on_log = None if args.json else (lambda line: print(line, flush=True))
    if args.script is not None:
        request = preview.PreviewRequest(
            script=_read_text(args.script), connection=args.connection, dependencies=args.dep or [],
            run_to_completion=args.all,
        )
        result = preview.preview_script(request, on_log)
    else:
        result = preview.preview_feed(args.name, run_to_completion=args.all, on_log=on_log)
    data = asdict(result)
    summary = [f"test {result.status}: {result.count} records in {result.duration_s:.2f} s"]
    if result.error:
        summary.append(f"error: {result.error}")
    summary.append(f"metadata saved: {json.dumps(result.metadata)}")
    summary += [json.dumps(r, default=str) for r in result.records]
    return data, "\n".join(summary), 0 if result.ok else 1


def run_with_retries(name: str, payload: dict | None):
    """The run, then each retry it earns (no dispatcher runs them in the CLI's process). A
    Ctrl-C while a retry waits for its backoff cancels that retry, so the feed is free."""
    def announce(retry) -> None:
        print(f"run failed; attempt {retry.attempt} starts after its backoff (Ctrl-C cancels it)",
              file=sys.stderr, flush=True)
        waiting.append(retry.id)

    waiting: list[str] = []
    try:
        return bootstrap.current().run_with_retries(name, trigger="cli", payload=payload, on_retry=announce)[-1]
    except KeyboardInterrupt:
        if waiting:
            runs_service.cancel_run(waiting[-1])
        raise


def cmd_run(args) -> tuple[object, str, int]:
    payload = json.loads(_read_text(args.payload)) if args.payload else None
    runs_service.raise_for_invalid_payload(payload)
    if args.detach:
        run = bootstrap.current().start_run(args.name, trigger="cli", payload=payload, wait=False)
        # A detached run lives in this process: wait for it so the command's exit does not kill it.
        run = runs_service.wait_for_run(run.id, timeout_s=10**9)
    else:
        run = run_with_retries(args.name, payload)
    view = runs_service.run_view(run)
    text = f"run {run.id} {run.status}: {run.records_loaded} records loaded"
    if run.error:
        text += f"\nerror: {run.error}"
    return view, text, 0 if run.status == "succeeded" else 1


def cmd_cancel(args) -> tuple[object, str, int]:
    run = runs_service.cancel_run(args.run_id)
    return runs_service.run_view(run), f"cancel requested for run {run.id} ({run.status})", 0


def cmd_runs(args) -> tuple[object, str, int]:
    if args.run_id:
        view = runs_service.run_view(runs_service.get_run(args.run_id))
        return view, json.dumps(view, indent=2), 0
    views = [runs_service.run_view(r) for r in runs_service.list_runs(args.feed, args.limit, args.status)]
    return views, _table(views, ["id", "feed", "status", "started_at", "duration_s", "records_loaded", "error"]), 0


def cmd_logs(args) -> tuple[object, str, int]:
    text, offset = runs_service.read_log(args.run_id)
    if not args.follow:
        return {"run_id": args.run_id, "log": text}, text.rstrip("\n"), 0
    sys.stdout.write(text)
    while runs_service.get_run(args.run_id).status not in runs_service.FINAL_STATUSES:
        time.sleep(0.5)
        text, offset = runs_service.read_log(args.run_id, offset)
        sys.stdout.write(text)
        sys.stdout.flush()
    text, offset = runs_service.read_log(args.run_id, offset)
    return None, text.rstrip("\n"), 0


def cmd_state(args) -> tuple[object, str, int]:
    if args.reset is not None:
        row = state_service.reset_state(args.name, json.loads(args.reset or "{}"))
        return row.state, f"state of {args.name} reset to {json.dumps(row.state)}", 0
    if args.history:
        rows = [{"id": r.id, "run_id": r.run_id, "reason": r.reason, "state": r.state,
                 "created_at": r.created_at.isoformat()} for r in state_service.state_history(args.name)]
        return rows, _table(rows, ["id", "run_id", "reason", "state", "created_at"]), 0
    state = state_service.current_state(args.name)
    return state, json.dumps(state, indent=2), 0


def cmd_demo_api(args) -> tuple[object, str, int]:
    from demo.api import main as demo_main

    demo_main(["--port", str(args.port)])
    return None, "", 0


# ---------------------------------------------------------------- parser


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--username")
    parser.add_argument("--password", help="prefer --password-stdin: arguments show in process lists")
    parser.add_argument("--password-stdin", action="store_true")
    parser.add_argument("--auth-url")
    parser.add_argument("--header", action="append", help="Name=value (Custom Auth); repeat for several")
    parser.add_argument("--body", help="JSON body for the authorization URL (inline, @file or -)")
    parser.add_argument("--token-path", help="where the token is in the auth response (default access_token)")
    parser.add_argument("--token-header", help="how the token is sent (default 'Authorization: Bearer <token>')")


def _feed_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--script", help="the script: @file, - for standard input, or inline text")
    parser.add_argument("--connection")
    parser.add_argument("--dep", action="append", help="a pip requirement; repeat for several")
    parser.add_argument("--load-type", choices=["incremental", "truncate_insert", "upsert"])
    parser.add_argument("--primary-key", action="append", help="a primary key field (Upsert); repeat")
    parser.add_argument("--destination", action="append", help="a destination name; repeat for several")
    parser.add_argument("--tag", action="append")
    parser.add_argument("--timeout", type=int, help="time limit of a run, in seconds")
    parser.add_argument("--memory", type=int, help="memory limit of a run, in MB")
    parser.add_argument("--retries", type=int, help="extra attempts after a failed run")
    parser.add_argument("--retry-backoff", type=int, help="seconds before the first retry (doubles each time)")
    parser.add_argument("--network", choices=["on", "off"], help="off: run the script with no network (docker)")
    parser.add_argument("--max-rejected", type=float, help="failed row threshold: share of rows a destination may "
                                                           "reject before the run fails (0-1, default 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.cli", description="Tributary: REST API data feeds")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    sub = parser.add_subparsers(dest="command", required=True)

    conns = sub.add_parser("connections", help="saved connections").add_subparsers(dest="action", required=True)
    conns.add_parser("list")
    conns.add_parser("show").add_argument("name")
    create = conns.add_parser("create")
    create.add_argument("name")
    create.add_argument("--auth", required=True, choices=["none", "basic", "custom"])
    _connection_options(create)
    edit = conns.add_parser("edit")
    edit.add_argument("name")
    edit.add_argument("--rename", help=argparse.SUPPRESS)
    edit.add_argument("--auth", help=argparse.SUPPRESS)
    _connection_options(edit)
    conns.add_parser("delete").add_argument("name")

    feeds = sub.add_parser("feeds", help="feeds").add_subparsers(dest="action", required=True)
    feeds.add_parser("list")
    feeds.add_parser("show").add_argument("name")
    for action in ("create", "edit"):
        p = feeds.add_parser(action)
        p.add_argument("name")
        _feed_options(p)
    delete = feeds.add_parser("delete")
    delete.add_argument("name")
    delete.add_argument("--drop-data", action="store_true", help="also drop the feed's tables")
    export = feeds.add_parser("export")
    export.add_argument("names", nargs="*")
    export.add_argument("-o", "--output")
    imp = feeds.add_parser("import")
    imp.add_argument("file")
    imp.add_argument("--replace", action="store_true")

    test = sub.add_parser("test", help="test a feed's script (nothing is loaded or saved)")
    test.add_argument("name", nargs="?")
    test.add_argument("--script", help="test this script instead of a saved feed (@file, - or text)")
    test.add_argument("--connection")
    test.add_argument("--dep", action="append")
    test.add_argument("--all", action="store_true", help="run to completion instead of stopping at 10 records")

    run = sub.add_parser("run", help="run a feed now and wait for it")
    run.add_argument("name")
    run.add_argument("--payload", help="JSON given to the script as lib.trigger.payload")
    run.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)

    sub.add_parser("cancel", help="cancel a run").add_argument("run_id")
    runs = sub.add_parser("runs", help="run history")
    runs.add_argument("run_id", nargs="?", help="show one run")
    runs.add_argument("--feed")
    runs.add_argument("--status")
    runs.add_argument("--limit", type=int, default=50)
    logs = sub.add_parser("logs", help="a run's log")
    logs.add_argument("run_id")
    logs.add_argument("--follow", "-f", action="store_true")
    state = sub.add_parser("state", help="a feed's state")
    state.add_argument("name")
    state.add_argument("--history", action="store_true")
    state.add_argument("--reset", nargs="?", const="{}", help="set the state (JSON; default {})")
    demo = sub.add_parser("demo-api", help="serve the bundled demo API")
    demo.add_argument("--port", type=int, default=8765)
    return parser


COMMANDS = {
    "connections": cmd_connections, "feeds": cmd_feeds, "test": cmd_test, "run": cmd_run, "cancel": cmd_cancel,
    "runs": cmd_runs, "logs": cmd_logs, "state": cmd_state, "demo-api": cmd_demo_api,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "test" and not args.name and args.script is None:
        print("error: test needs a feed name or --script", file=sys.stderr)
        return 2
    try:
        bootstrap.current().start()
        data, text, code = COMMANDS[args.command](args)
    except TributaryError as exc:
        if args.json:
            problems = getattr(exc, "problems", None)
            print(json.dumps({"error": str(exc), "problems": problems}))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if args.json:
        if data is not None:
            print(json.dumps(data, default=str, indent=2))
    elif text:
        print(text)
    return code


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown. Finalising DuckDB, SQLAlchemy and
    the objects of a large run took 0.1-0.15 s and does nothing a finished command needs: by
    now every run log is closed and every store and warehouse transaction has ended. What
    still runs is waited for first: notifications being delivered, the store's connections."""
    from storage.db import dispose_all

    bootstrap.current().deliveries.flush()
    dispose_all()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
