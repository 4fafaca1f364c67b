"""Where a run's time goes: py-spy samples the CLI and the sandboxed script of one engine run,
and the samples are summed by process, by step, and by the function on top of the stack.

    .venv/bin/python bench/profile_engine.py [--records 1000000] [--rate 100] [--keep DIR]

Samples are on-CPU time only (py-spy leaves out threads that wait), so the CLI waiting for its
script costs nothing here; bench_engine.py's phases give the wall-clock split. py-spy needs to
ptrace the processes (root, or kernel.yama.ptrace_scope=0). --keep leaves the raw collapsed
stacks (for flamegraph.pl or speedscope) in DIR.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import cli_env, peak_script  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
_PROCESS = re.compile(r'^process \d+:"(.*)"$')
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# The first marker found in a stack, innermost frame first, names its step. Markers are
# "function (file" prefixes as py-spy prints frames.
SANDBOX_STEPS = [
    ("dumps_line", "outputStream.write: orjson serialising"),
    ("_rotate", "outputStream.write: spool file rotation"),
    ("write (lib/_runtime.py", "outputStream.write: checks, buffered file write"),
    ("<module> (script.py", "the script's own loop: building the records"),
    ("_find_and_load", "sandbox start-up: imports"),
]
CLI_STEPS = [
    ("profile_spool", "load, pass 1: profiling the spool's types (schema.profile_spool)"),
    ("write (storage/destinations/duckdb.py", "load, pass 2: DuckDB INSERT from Arrow"),
    ("batches (storage/destinations/shaping.py", "load, pass 2: reading and shaping chunks into Arrow"),
    ("plan_schema", "load: planning the schema"),
    ("_record (storage/destinations/sql_warehouse.py", "load: ledger row and commit"),
    ("load (storage/destinations/sql_warehouse.py", "load: other (connect, DDL, COMMIT)"),
    ("prepare_work_dir", "run: preparing the sandbox's work dir"),
    ("execute_run", "run: bookkeeping (metadata store, log, state commit)"),
    ("_find_and_load", "CLI start-up: imports"),
]


def _parse(raw: str):
    """(process command, frames outermost first, samples) for each collapsed stack."""
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        process, inner = "", []
        for frame in frames:
            match = _PROCESS.match(frame)
            if match:
                process, inner = match.group(1), []  # a child process: its frames start afresh
            else:
                inner.append(frame)
        yield process, inner, int(count)


def _short(frame: str) -> str:
    """'function (path/to/file.py:12)' -> 'function (to/file.py)': enough to tell apart."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = Path(match.group("file"))
    return f"{match.group('function')} ({'/'.join(path.parts[-2:])})"


def _step(frames: list[str], steps: list[tuple[str, str]]) -> str:
    shorts = [_short(f) for f in reversed(frames)]
    for marker, label in steps:
        if any(s.startswith(marker) or marker in s for s in shorts):
            return label
    return "other"


def summarise(raw: str, rate: int) -> str:
    by_process: collections.Counter = collections.Counter()
    by_step: collections.Counter = collections.Counter()
    by_leaf: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for process, frames, count in _parse(raw):
        kind = "sandbox (script)" if "_tributary_boot" in process else "CLI (run + load)"
        by_process[kind] += count
        steps = SANDBOX_STEPS if kind.startswith("sandbox") else CLI_STEPS
        by_step[(kind, _step(frames, steps))] += count
        by_leaf[kind][_short(frames[-1]) if frames else "(no Python frame: native code or start-up)"] += count
    total = sum(by_process.values()) or 1
    lines = [f"on-CPU samples: {total} at {rate} Hz = {total / rate:.1f} CPU-seconds"]
    for kind, samples in by_process.most_common():
        lines.append(f"\n{kind}: {samples / rate:6.1f} s  ({samples / total:.0%} of all samples)")
        for (k, step), count in by_step.most_common():
            if k == kind:
                lines.append(f"    {count / rate:6.1f} s  {count / total:4.0%}  {step}")
        lines.append("  top functions (self time):")
        for leaf, count in by_leaf[kind].most_common(12):
            lines.append(f"    {count / rate:6.1f} s  {count / total:4.0%}  {leaf}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=100, help="samples per second per process")
    parser.add_argument("--keep", type=Path, help="copy the raw collapsed stacks into this folder")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not py_spy:
        sys.exit("py-spy is not installed: .venv/bin/uv pip install --python .venv/bin/python -r bench/requirements.txt")
    with tempfile.TemporaryDirectory(prefix="tributary-profile-") as tmp:
        data, script, raw = Path(tmp) / "data", Path(tmp) / "script.py", Path(tmp) / "profile.txt"
        script.write_text(peak_script(args.records))
        env = cli_env(data)
        cli = [sys.executable, "-m", "core.cli"]
        subprocess.run([*cli, "feeds", "create", "bench", "--script", f"@{script}"], env=env, check=True,
                       capture_output=True, cwd=ROOT)
        subprocess.run([py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate), "--output",
                        str(raw), "--", *cli, "--json", "run", "bench"], env=env, check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.keep / f"engine-{args.records}.collapsed.txt")
        print(f"engine run of {args.records:,} records, profiled with py-spy")
        print(summarise(raw.read_text(), args.rate))


if __name__ == "__main__":
    main()
