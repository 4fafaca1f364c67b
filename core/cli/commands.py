"""The commands (Click). Each one reads and checks its input first, then starts the process's
services and returns (JSON data, human text, exit code); core/cli/__init__.py prints them."""

from __future__ import annotations

import getpass
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import click

from common.errors import ValidationError
from common.passwords import hash_password
from core import bootstrap, preview
from core import connections as connections_service
from core import feeds as feeds_service
from core import runs as runs_service
from core import schema_history
from core import state as state_service
from core.cli.inputs import check_auth_options, connection_input, json_object, read_file, read_text
from core.cli.interrupt import CancelOnSignal
from core.cli.output import Output, set_json, table
from common.process import worker_label

Result = tuple[object, str, int]
RUN_STATUSES = runs_service.ACTIVE_STATUSES + runs_service.FINAL_STATUSES
CONTEXT = {"help_option_names": ["-h", "--help"]}


def json_option(f):
    return click.option("--json", is_flag=True, expose_value=False, callback=set_json,
                        help="print one JSON document")(f)


def output() -> Output:
    return click.get_current_context().find_root().ensure_object(Output)


def services() -> bootstrap.Services:
    return bootstrap.current().start()


class StdoutClosed(Exception):
    """Standard output's reader went away while a command wrote to it (not an OSError, which
    Click would turn into exit 1)."""


class Root(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise StdoutClosed() from None


@click.group(cls=Root, context_settings=CONTEXT)
@json_option
def cli() -> None:
    """Tributary: REST API data feeds.

    Exit codes: 0 done, 1 a failed test or run, 2 bad input, 3 not found, 4 a conflict (a name
    taken, a run already active), 130/143 a run cancelled by Ctrl-C/SIGTERM.
    """


# ---------------------------------------------------------------- connections


def options(*specs: tuple[str, dict]):
    """A decorator adding these options, in this order in --help."""
    def decorate(f):
        for decl, kwargs in reversed(specs):
            f = click.option(decl, **kwargs)(f)
        return f
    return decorate


connection_options = options(
    ("--username", {}),
    ("--password", {"help": "prefer --password-stdin: arguments show in process lists"}),
    ("--password-stdin", {"is_flag": True, "help": "read the password from standard input's first line"}),
    ("--auth-url", {}),
    ("--header", {"multiple": True, "help": "Name=value (Custom Auth); repeat for several"}),
    ("--body", {"help": "JSON body for the authorization URL (inline, @file or -)"}),
    ("--token-path", {"help": "where the token is in the auth response (default access_token)"}),
    ("--token-header", {"help": "how the token is sent (default 'Authorization: Bearer <token>')"}),
    ("--runs-at-once", {"type": int, "help": "at most this many runs of its feeds at a time, on all workers "
                                             "together (0: no limit)"}),
)


@cli.group(context_settings=CONTEXT)
@json_option
def connections() -> None:
    """saved connections"""


@connections.command("list")
@json_option
def connections_list() -> Result:
    """the saved connections"""
    svc = connections_service
    services()
    views = [svc.masked_view(c) for c in svc.list_connections()]
    return views, table(views, ["name", "auth_type_label", "updated_at"]), 0


@connections.command("show")
@click.argument("name")
@json_option
def connections_show(name: str) -> Result:
    """one connection, its secrets masked"""
    services()
    view = connections_service.masked_view(connections_service.get_connection(name))
    return view, json.dumps(view, indent=2), 0


@connections.command("create")
@click.argument("name")
@click.option("--auth", required=True, type=click.Choice(["none", "basic", "custom"]))
@connection_options
@json_option
def connections_create(name: str, auth: str, **given) -> Result:
    """save a connection (Basic Auth: --username and a password; Custom Auth: --auth-url, ...)"""
    check_auth_options(auth, given)
    data = connection_input(given)
    services()
    conn = connections_service.create_connection(name, auth, data)
    return connections_service.masked_view(conn), f"connection {conn.name} created ({conn.auth_type})", 0


@connections.command("edit")
@click.argument("name")
@click.option("--rename", hidden=True)
@click.option("--auth", hidden=True)
@connection_options
@json_option
def connections_edit(name: str, rename: str | None, auth: str | None, **given) -> Result:
    """change a connection's settings (an option not given keeps what is stored)"""
    svc = connections_service
    services()
    stored = svc.get_connection(name)
    if auth is None or auth == stored.auth_type:
        check_auth_options(stored.auth_type, given)  # else the service refuses the change of type
    data = connection_input(given, stored.params.get("limits"))
    conn = svc.edit_connection(name, data, new_name=rename, new_auth_type=auth)
    return svc.masked_view(conn), f"connection {conn.name} updated", 0


@connections.command("delete")
@click.argument("name")
@json_option
def connections_delete(name: str) -> Result:
    """delete a connection no feed uses"""
    services()
    connections_service.delete_connection(name)
    return {"deleted": name}, f"connection {name} deleted", 0


# ---------------------------------------------------------------- feeds


feed_options = options(
    ("--script", {"help": "the script: @file, - for standard input, or inline text"}),
    ("--connection", {}),
    ("--dep", {"multiple": True, "help": "a pip requirement; repeat for several"}),
    ("--load-type", {"type": click.Choice(["incremental", "truncate_insert", "upsert"])}),
    ("--primary-key", {"multiple": True, "help": "a primary key field (Upsert); repeat"}),
    ("--destination", {"multiple": True, "help": "a destination name; repeat for several"}),
    ("--tag", {"multiple": True}),
    ("--timeout", {"type": int, "help": "time limit of a run, in seconds"}),
    ("--memory", {"type": int, "help": "memory limit of a run, in MB"}),
    ("--retries", {"type": int, "help": "extra attempts after a failed run"}),
    ("--retry-backoff", {"type": int, "help": "seconds before the first retry (doubles each time)"}),
    ("--network", {"type": click.Choice(["on", "off"]), "help": "off: run the script with no network (docker)"}),
    ("--max-rejected", {"type": float, "help": "failed row threshold: share of rows a destination may reject "
                                               "before the run fails (0-1, default 0)"}),
    ("--schema-policy", {"type": click.Choice(["evolve", "freeze", "discard_new_columns"]),
                         "help": "a run whose records add or widen a column: evolve the table (default), "
                                 "freeze it (the run fails), or discard the new columns"}),
    ("--queue", {"help": "the workers' queue its runs go to, with the celery executor (\"\" for the default); "
                         "a feed loading into DuckDB or Parquet files runs on the app host's worker"}),
)


SIMPLE = {"connection": "connection", "load_type": "load_type", "timeout": "timeout_s", "memory": "memory_limit_mb",
          "retries": "retries", "retry_backoff": "retry_backoff_s", "max_rejected": "max_rejected_ratio",
          "schema_policy": "schema_policy", "queue": "queue"}
LISTS = {"dep": "dependencies", "primary_key": "primary_key", "destination": "destinations", "tag": "tags"}


def feed_changes(given: dict) -> dict:
    """The feed fields the options set; an option not given keeps what is stored (edit)."""
    changes = {}
    if given["script"] is not None:
        changes["script"] = read_text(given["script"], "--script")
    for param, key in SIMPLE.items():
        if given[param] is not None:
            changes[key] = given[param]
    if given["network"] is not None:
        changes["network"] = given["network"] == "on"
    for param, key in LISTS.items():
        if given[param]:  # `--tag ""` clears the list
            changes[key] = [v for v in given[param] if v != ""]
    return changes


def feed_view(feed) -> dict:
    spec = asdict(feeds_service.spec_of(feed))
    spec.update(paused=feed.paused, created_at=feed.created_at.isoformat(), updated_at=feed.updated_at.isoformat())
    return spec


@cli.group(context_settings=CONTEXT)
@json_option
def feeds() -> None:
    """feeds"""


@feeds.command("list")
@json_option
def feeds_list() -> Result:
    """the feeds"""
    services()
    views = [feed_view(f) for f in feeds_service.list_feeds()]
    return views, table(views, ["name", "connection", "load_type", "destinations", "paused"]), 0


@feeds.command("show")
@click.argument("name")
@json_option
def feeds_show(name: str) -> Result:
    """one feed's definition"""
    services()
    view = feed_view(feeds_service.get_feed(name))
    return view, json.dumps(view, indent=2), 0


@feeds.command("create")
@click.argument("name")
@feed_options
@json_option
def feeds_create(name: str, **given) -> Result:
    """create a feed"""
    changes = feed_changes(given)
    services()
    feed = feeds_service.create_feed(feeds_service.FeedSpec(name=name, **changes))
    return feed_view(feed), f"feed {feed.name} created", 0


@feeds.command("edit")
@click.argument("name")
@feed_options
@json_option
def feeds_edit(name: str, **given) -> Result:
    """change a feed (an option not given keeps what is stored)"""
    changes = feed_changes(given)
    services()
    feed = feeds_service.edit_feed(name, **changes)
    return feed_view(feed), f"feed {feed.name} updated", 0


@feeds.command("delete")
@click.argument("name")
@click.option("--drop-data", is_flag=True, help="also drop the feed's tables")
@json_option
def feeds_delete(name: str, drop_data: bool) -> Result:
    """delete a feed"""
    services()
    feeds_service.delete_feed(name, drop_data=drop_data)
    return {"deleted": name}, f"feed {name} deleted", 0


@feeds.command("export")
@click.argument("names", nargs=-1)
@click.option("-o", "--output", "output_path", help="write the YAML to this file")
@json_option
def feeds_export(names: tuple[str, ...], output_path: str | None) -> Result:
    """feed definitions as YAML, never secrets (all feeds, or those named)"""
    services()
    text = feeds_service.export_yaml(list(names) or None)
    if output_path:
        try:
            Path(output_path).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ValidationError.single("--output", f"{output_path!r} cannot be written: {exc.strerror}") from None
        return {"exported": output_path}, f"exported to {output_path}", 0
    return {"yaml": text}, text.rstrip("\n"), 0


@feeds.command("import")
@click.argument("file")
@click.option("--replace", is_flag=True, help="update feeds that already exist")
@json_option
def feeds_import(file: str, replace: bool) -> Result:
    """create feeds from exported YAML (all or nothing)"""
    text = read_file(file, "file")
    services()
    names = feeds_service.import_yaml(text, replace=replace)
    return {"imported": names}, f"imported {', '.join(names)}", 0


# ---------------------------------------------------------------- test, run, cancel


@cli.command("test")
@click.argument("name", required=False)
@click.option("--script", help="test this script instead of the saved feed NAME's, or of none (@file, - or text)")
@click.option("--connection")
@click.option("--dep", multiple=True)
@click.option("--all", "run_all", is_flag=True, help="run to completion instead of stopping at 10 records")
@json_option
def test_command(name: str | None, script: str | None, connection: str | None, dep: tuple[str, ...],
                 run_all: bool) -> Result:
    """test a feed's script (nothing is loaded or saved)"""
    if not name and script is None:
        raise ValidationError.single("name", "a feed name or --script is required")
    on_log = None if output().json else (lambda line: print(line, flush=True))
    if script is not None:
        request = preview.PreviewRequest(script=read_text(script, "--script"), connection=connection,
                                         dependencies=list(dep), run_to_completion=run_all, feed=name)
        services()
        result = preview.preview_script(request, on_log)
    else:
        services()
        result = preview.preview_feed(name, run_to_completion=run_all, on_log=on_log)
    data = asdict(result)
    summary = [f"test {result.status}: {result.count} records in {result.duration_s:.2f} s"]
    if result.error:
        summary.append(f"error: {result.error}")
    summary.append(f"metadata saved: {json.dumps(result.metadata)}")
    summary += _request_lines(result)
    summary += [json.dumps(r, default=str) for r in result.records]
    return data, "\n".join(summary), 0 if result.ok else 1


def _request_lines(result: preview.PreviewResult) -> list[str]:
    """The inspector's requests, one line each (secrets already masked)."""
    counts = result.request_counts
    if not counts:
        return []
    lines = [f"requests: {counts.get('requests', 0)} (retries {counts.get('retries', 0)}, waits {counts.get('waits', 0)}"
             f" {counts.get('waited_s', 0):.1f} s, {counts.get('bytes', 0)} bytes)"]
    for r in result.requests:
        mark = " [token]" if r.get("kind") == "token" else ""
        retries = f", {r['retries']} retries" if r.get("retries") else ""
        lines.append(f"  {r.get('method')} {r.get('url')} -> {r.get('status') or r.get('error')}"
                     f" in {r.get('duration_ms') or 0:.0f} ms{retries}{mark}")
    return lines


def run_with_retries(svc: bootstrap.Services, name: str, payload: dict | None, guard: CancelOnSignal,
                     options: runs_service.RunOptions | None = None):
    """The run, then each retry it earns (no dispatcher runs them in the CLI's process). A
    signal cancels the attempt under way or the retry waiting for its backoff."""
    def announce(retry) -> None:
        print(f"run failed; attempt {retry.attempt} starts after its backoff (Ctrl-C cancels it)",
              file=sys.stderr, flush=True)

    return svc.run_with_retries(name, trigger="cli", payload=payload, sleep=guard.sleep, on_retry=announce,
                                options=options)[-1]


def run_options(from_state: str | None, commit_state: bool, full_refresh: bool) -> runs_service.RunOptions | None:
    if from_state is not None and full_refresh:
        raise ValidationError([("--full-refresh", "starts from {}: it cannot be given with --from-state")])
    if commit_state and from_state is None:
        raise ValidationError([("--commit-state", "applies to a run --from-state only")])
    if from_state is None and not full_refresh:
        return None
    state = json_object(read_text(from_state, "--from-state"), "--from-state") if from_state is not None else None
    return runs_service.RunOptions(state=state, commit_state=commit_state, full_refresh=full_refresh)


@cli.command("run")
@click.argument("name")
@click.option("--payload", help="JSON object given to the script as lib.trigger.payload (inline, @file or -)")
@click.option("--from-state", "from_state", metavar="JSON",
              help="a backfill: start from this state (a JSON object, inline, @file or -), not the current one")
@click.option("--commit-state", is_flag=True, help="with --from-state: the state it ends with becomes current")
@click.option("--full-refresh", is_flag=True,
              help="start from {} and replace the table when the run commits, whatever the load type")
@click.option("--detach", is_flag=True, hidden=True)
@json_option
def run_command(name: str, payload: str | None, from_state: str | None, commit_state: bool, full_refresh: bool,
                detach: bool) -> Result:
    """run a feed now and wait for it (Ctrl-C or SIGTERM cancels it)"""
    body = json_object(read_text(payload, "--payload"), "--payload") if payload else None
    runs_service.raise_for_invalid_payload(body)
    options = run_options(from_state, commit_state, full_refresh)
    svc = services()
    with CancelOnSignal(name) as guard:
        if detach:
            run = svc.start_run(name, trigger="cli", payload=body, wait=False, options=options)
            # A detached run lives in this process: wait for it so the command's exit does not kill it.
            run = runs_service.wait_for_run(run.id, timeout_s=10**9)
        else:
            run = run_with_retries(svc, name, body, guard, options)
    view = runs_service.run_view(run)
    text = f"run {run.id} {run.status}: {run.records_loaded} records loaded"
    if run.worker:
        text += f" (on {worker_label(run.worker)})"
    if run.error:
        text += f"\nerror: {run.error}"
    code = 0 if run.status == "succeeded" else 1
    if guard.exit_code is not None and run.status == "cancelled":
        code = guard.exit_code
    return view, text, code


@cli.command("cancel")
@click.argument("run_id")
@json_option
def cancel_command(run_id: str) -> Result:
    """cancel a run"""
    services()
    run = runs_service.cancel_run(run_id)
    return runs_service.run_view(run), f"cancel requested for run {run.id} ({run.status})", 0


# ---------------------------------------------------------------- history, logs, state


@cli.command("runs")
@click.argument("run_id", required=False)
@click.option("--feed", help="only this feed's runs")
@click.option("--status", type=click.Choice(RUN_STATUSES), help="only runs with this status")
@click.option("--limit", type=int, default=50, show_default=True)
@json_option
def runs_command(run_id: str | None, feed: str | None, status: str | None, limit: int) -> Result:
    """run history (give a run id to show one run)"""
    services()
    if run_id:
        view = runs_service.run_view(runs_service.get_run(run_id))
        return view, json.dumps(view, indent=2), 0
    found = runs_service.list_runs(feed, limit, status)
    views = [runs_service.run_view(r) for r in found]
    rows = [{**view, "worker": worker_label(r.worker)} for view, r in zip(views, found)]
    columns = ["id", "feed", "status", "worker", "started_at", "duration_s", "records_loaded", "error"]
    return views, table(rows, columns), 0


@cli.command("logs")
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="keep printing until the run ends")
@json_option
def logs_command(run_id: str, follow: bool) -> Result:
    """a run's log"""
    services()
    text, offset = runs_service.read_log(run_id)
    if not follow:
        return {"run_id": run_id, "log": text}, text.rstrip("\n"), 0
    sys.stdout.write(text)
    while runs_service.get_run(run_id).status not in runs_service.FINAL_STATUSES:
        time.sleep(0.5)
        text, offset = runs_service.read_log(run_id, offset)
        sys.stdout.write(text)
        sys.stdout.flush()
    text, offset = runs_service.read_log(run_id, offset)
    return None, text.rstrip("\n"), 0


@cli.command("state")
@click.argument("name")
@click.option("--history", is_flag=True, help="every state the feed had, with who or which run set it")
@click.option("--reset", is_flag=False, flag_value="{}", default=None,
              help="set the state (a JSON object; alone: {})")
@click.option("--rewind", "rewind_to", metavar="RUN_ID", default=None,
              help="make the state after that earlier run current again")
@click.option("--diff", "diff_with", metavar="JSON", default=None,
              help="what setting this state (a JSON object) would change; changes nothing")
@click.option("--by", default=None, help="who changes the state (kept in its history)")
@click.option("--why", default=None, help="why (kept in its history)")
@json_option
def state_command(name: str, history: bool, reset: str | None, rewind_to: str | None, diff_with: str | None,
                  by: str | None, why: str | None) -> Result:
    """a feed's state: show it, its history, or change it (refused while a run is in progress)"""
    chosen = [option for option, value in (("--reset", reset), ("--rewind", rewind_to), ("--diff", diff_with))
              if value is not None]
    if len(chosen) > 1:
        raise ValidationError([(chosen[1], f"cannot be given with {chosen[0]}: one change at a time")])
    # Bad input is refused before anything is read from the store (exit 2, naming the option).
    proposed = json_object(diff_with, "--diff") if diff_with is not None else None
    new_state = json_object(reset or "{}", "--reset") if reset is not None else None
    services()
    by = by or _user_name()
    if diff_with is not None:
        changes = state_service.diff_states(state_service.current_state(name), proposed)
        lines = [f"{c['change']:>8} {c['path']}: {json.dumps(c['old'])} -> {json.dumps(c['new'])}" for c in changes]
        return changes, "\n".join(lines) or "no change", 0
    if reset is not None or rewind_to is not None:
        before = state_service.current_state(name)
        if rewind_to is not None:
            row = state_service.rewind_state(name, rewind_to, by, why)
        else:
            row = state_service.reset_state(name, new_state, by, why)
        changes = state_service.diff_states(before, row.state)
        summary = f"state of {name} set to {json.dumps(row.state)} ({len(changes)} change(s))"
        return row.state, summary, 0
    if history:
        rows = [{"id": r.id, "run_id": r.run_id, "reason": r.reason, "by": r.changed_by, "why": r.note,
                 "state": r.state, "created_at": r.created_at.isoformat()} for r in state_service.state_history(name)]
        return rows, table(rows, ["id", "run_id", "reason", "by", "why", "state", "created_at"]), 0
    state = state_service.current_state(name)
    return state, json.dumps(state, indent=2), 0


@cli.command("schema")
@click.argument("name")
@json_option
def schema_command(name: str) -> Result:
    """a feed's schema history: the columns its runs added, widened or dropped, newest first"""
    services()
    policy, history = feeds_service.get_feed(name).schema_policy, schema_history.schema_history(name)
    rows = [{"run_id": h["run_id"], "at": h["at"], "destination": h["destination"], "change": "; ".join(h["lines"])}
            for h in history]
    text = f"schema policy: {policy}\n" + (table(rows, ["run_id", "at", "destination", "change"])
                                           if rows else "no run has changed the feed's tables yet")
    return {"schema_policy": policy, "history": history}, text, 0


def _user_name() -> str | None:
    """Who runs the command, for the state's history (the login name where there is one)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


# ---------------------------------------------------------------- tools


@cli.command("hash-password")
@click.option("--password-stdin", is_flag=True,
              help="read the password from standard input's first line (the default when it is not a terminal)")
@json_option
def hash_password_command(password_stdin: bool) -> Result:
    """print the team password's hash, for TRIBUTARY_PASSWORD_HASH or [access] password_hash"""
    if password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Team password: ")
        if getpass.getpass("Again: ") != password:
            raise ValidationError.single("password", "the two entries differ")
    if not password:
        raise ValidationError.single("password", "must not be empty")
    encoded = hash_password(password)
    return {"hash": encoded}, encoded, 0


@cli.command("demo-api")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@json_option
def demo_api_command(port: int) -> Result:
    """serve the bundled demo API"""
    from demo.api import main as demo_main

    services()
    demo_main(["--port", str(port)])
    return None, "", 0

