"""A Tributary worker: executes the runs that the app's `celery` executor sends.

    TRIBUTARY_CELERY_BROKER_URL=redis://broker-host:6379/0 \\
    TRIBUTARY_DATABASE_URL=postgresql://...  TRIBUTARY_SECRET_KEY=...  \\
    TRIBUTARY_DATA_DIR=/var/lib/tributary-worker  TRIBUTARY_MAX_CONCURRENT_RUNS=4 \\
    python -m core.worker [--queues big,tributary.runs] [--loglevel INFO]

A worker shares the app's store (which must be PostgreSQL for workers on other machines),
secret key (to decrypt connections' secrets) and warehouse settings (TRIBUTARY_WAREHOUSE and
TRIBUTARY_<SECTION>_<FIELD>, e.g. TRIBUTARY_POSTGRES_URL: the warehouse.json of the app's data
dir is not read from here), and has a data dir of its own (work dirs, dependency environments,
run logs). It executes up to TRIBUTARY_MAX_CONCURRENT_RUNS runs at a time, each on a thread of
this one process (Celery's threads pool), with the same runners and destinations as the app:
bootstrap's run executor, in the foreground. It renews each run's heartbeat while the run
executes (core/heartbeat.py), kills a run's sandbox within a second of a cancel asked anywhere
(the run executor polls the run's cancel flag), and, like the app, settles the runs that dead
processes left (core/services/recovery.py) at its start and every RECOVERY_POLL_S.

A worker consumes the queues named by --queues (or TRIBUTARY_WORKER_QUEUES), comma-separated:
the default queue (tributary.runs) when none, so a worker started with `--queues big` takes
only the runs of feeds pinned to `big` (core/queues.py). The app host's queue is the app's own
worker's: the files its feeds load into are the app's.

A run's log is written to this worker's data dir (logs/) and shipped into the store as it
grows (core/log_chunks.py), all of it before the run's end is recorded: the app's Runs page and
the CLI's `logs` show it live, wherever the worker is.

SIGTERM (or Ctrl-C) stops taking runs and lets the runs in progress end; a second one stops at
once, and the runs it leaves are settled by recovery (this host's processes are seen dead at
once, another host's once their heartbeat is stale).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from common.errors import TributaryError
from common.settings import Settings, get_settings
from core import bootstrap, celery_executor, log_chunks, queues
from core.heartbeat import heartbeat_s, stale_after_s
from core.services.recovery import RecoveryService
from core.workers import Presence
from core.validation import queue_problems, raise_if

log = logging.getLogger("tributary.worker")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m core.worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loglevel", default=os.environ.get("TRIBUTARY_WORKER_LOGLEVEL", "INFO"))
    parser.add_argument("--concurrency", type=int, default=None,
                        help="runs at a time (default: TRIBUTARY_MAX_CONCURRENT_RUNS)")
    parser.add_argument("--queues", default=None,
                        help=f"the queues to consume, comma-separated (default: TRIBUTARY_WORKER_QUEUES, "
                             f"else {queues.DEFAULT_QUEUE})")
    return parser.parse_args(argv)


def consumed_queues(given: str | None, settings: Settings) -> list[str]:
    """The queues this worker consumes: --queues, else TRIBUTARY_WORKER_QUEUES, else the
    default queue; a bad name, or the app host's queue, is refused naming the setting."""
    field = "--queues" if given is not None else "TRIBUTARY_WORKER_QUEUES"
    names = [n.strip() for n in given.split(",") if n.strip()] if given is not None else list(settings.worker_queues)
    problems = [problem for name in names for problem in queue_problems(name, field)]
    if queues.APP_HOST_QUEUE in names:
        problems.append((field, f"{queues.APP_HOST_QUEUE} is the app host's queue: the app's own worker consumes it "
                                "(its feeds load into files of the app's host)"))
    raise_if(problems)
    return list(dict.fromkeys(names)) or [queues.DEFAULT_QUEUE]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        url = celery_executor.broker_url()
        settings = get_settings()
        consumed = consumed_queues(args.queues, settings)
        if heartbeat_s() * 3 > stale_after_s():
            raise TributaryError(f"TRIBUTARY_HEARTBEAT_S ({heartbeat_s():g} s) must be at most a third of "
                                 f"TRIBUTARY_HEARTBEAT_STALE_S ({stale_after_s():g} s): a live worker's runs "
                                 "would look dead")
        services = bootstrap.build(settings).start()  # migrates the store, settles what dead processes left
    except (TributaryError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    concurrency = max(1, args.concurrency or settings.max_concurrent_runs)
    celery_executor.serve(services.execute_run)
    log_chunks.ship_from_this_process()
    recovery = RecoveryService().start()
    presence = Presence(_node_name(), consumed, concurrency).start()  # Settings' workers list
    log.info("worker %s: up to %d runs at a time from queue(s) %s, data dir %s", _node_name(), concurrency,
             ", ".join(consumed), settings.data_dir)
    try:
        celery_executor.celery_app(url).worker_main([
            "worker", "--pool=threads", f"--concurrency={concurrency}", f"--loglevel={args.loglevel.upper()}",
            f"--hostname={_node_name()}", f"--queues={','.join(consumed)}", "--without-gossip",
            "--without-mingle",
        ])
    finally:
        presence.stop()
        recovery.stop()
        services.stop()
    return 0


def _node_name() -> str:
    """Celery's node name: unique per process, so that several workers can share a host."""
    return f"tributary-{os.getpid()}@{socket.gethostname()}"


if __name__ == "__main__":
    sys.exit(main())
