"""Where a run's time goes: py-spy samples the CLI and the sandboxed script of one engine run,
and the samples are summed by process, by step, and by the function on top of the stack.

    .venv/bin/python bench/profile_engine.py [--records 1000000] [--cpu] [--rate 100] [--keep DIR]

By default the view is wall-clock: idle samples included, main threads only (the CLI's and the
script's), so each step's seconds are the time it held up the run, waits included (the CLI
waiting for its script, for DuckDB's own threads, for the disk). Parts are staged on another
thread while the script runs, so that work shows only in --cpu, which counts on-CPU samples of
every Python thread instead. DuckDB's worker threads are not Python threads: py-spy sees them
only as the Python frame that waits for the query. py-spy needs to ptrace the processes (root,
or kernel.yama.ptrace_scope=0). --keep leaves the raw collapsed stacks (for flamegraph.pl or
speedscope) in DIR.
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
# The outermost frame of each main thread; other threads (log pump, cancel watcher) start in
# threading's bootstrap.
_MAIN_THREAD = re.compile(r"^(_run_module_as_main \(<frozen runpy>\)|<module> \(.*_tributary_boot\.py\))$")

# Frames are matched as "function (dir/file.py)", innermost frame first; the first frame that
# matches a pattern names the step (so an import done lazily inside the load counts as import).
SANDBOX_STEPS = [
    (r"^dumps_line \(lib/_runtime", "outputStream.write: orjson serialising"),
    (r"^OutputStream\._rotate ", "outputStream.write: spool file rotation"),
    (r"^OutputStream\.close ", "closing the spool (final flush)"),
    (r"^OutputStream\.write ", "outputStream.write: checks and buffered file write"),
    (r"_find_and_load", "sandbox start-up: imports"),
    (r"^<module> \(.*script\.py\)$", "the script's own loop: building the records"),
    (r"_tributary_boot\.py\)$", "harness (boot, result file)"),
]
CLI_STEPS = [
    (r"_find_and_load", "imports (start-up, and lazy ones later)"),
    (r"^discover_fields \(destinations/duckdb/staging", "staging a part: its field names (json_keys)"),
    (r"^classify \(destinations/duckdb/staging", "staging a part: typing new fields (sample, or whole part)"),
    (r"^DuckDBStager\._stage ", "staging a part: checked conversion to Parquet"),
    (r"^DuckDBStager\.insert ", "load: INSERT of the staged Parquet into the table"),
    (r"^PartCollector\.", "taking parts out of the sandbox's spool"),
    (r"^profile_spool \(destinations/schema", "load (generic): pass 1, profiling the spool's types"),
    (r"^Shaper\.batches \(destinations/shaping", "load (generic): pass 2, shaping chunks into Arrow"),
    (r"\.write \(destinations/duckdb\.py\)", "load (generic): pass 2, DuckDB INSERT from Arrow"),
    (r"\(destinations/", "load: other (connect, ledger, DDL, commit)"),
    (r"^(SubprocessHandle\.)?wait \(runners/subprocess_runner", "waiting for the sandboxed script"),
    (r"^prepare_work_dir ", "preparing the sandbox's work dir"),
    (r"^_commit \(core/runs", "state commit"),
    (r"\(core/runs\.py\)$", "run bookkeeping (metadata store, log, clean-up)"),
    (r"\(core/", "CLI: other (argument parsing, store set-up, output)"),
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
    for frame in reversed(frames):
        short = _short(frame)
        for pattern, label in steps:
            if re.search(pattern, short):
                return label
    return "interpreter start-up and exit (no Python frame)" if not frames else "other"


def summarise(raw: str, rate: int, main_threads_only: bool) -> str:
    by_process: collections.Counter = collections.Counter()
    by_step: collections.Counter = collections.Counter()
    by_leaf: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for process, frames, count in _parse(raw):
        if main_threads_only and frames and not _MAIN_THREAD.match(_short(frames[0])):
            continue
        kind = "sandbox (script)" if "_tributary_boot" in process else "CLI (run + load)"
        by_process[kind] += count
        steps = SANDBOX_STEPS if kind.startswith("sandbox") else CLI_STEPS
        by_step[(kind, _step(frames, steps))] += count
        by_leaf[kind][_short(frames[-1]) if frames else "(no Python frame: native code or start-up)"] += count
    total = sum(by_process.values()) or 1
    view = "wall-clock samples of the main threads" if main_threads_only else "on-CPU samples of all Python threads"
    lines = [f"{view}: {total} at {rate} Hz = {total / rate:.1f} s"]
    for kind, samples in by_process.most_common():
        lines.append(f"\n{kind}: {samples / rate:6.1f} s  ({samples / total:.0%} of all samples; "
                     "the percentages below are of this process's)")
        for (k, step), count in by_step.most_common():
            if k == kind:
                lines.append(f"    {count / rate:6.1f} s  {count / samples:4.0%}  {step}")
        lines.append("  top functions (innermost Python frame):")
        for leaf, count in by_leaf[kind].most_common(12):
            lines.append(f"    {count / rate:6.1f} s  {count / samples:4.0%}  {leaf}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=100, help="samples per second per process")
    parser.add_argument("--cpu", action="store_true", help="on-CPU samples of all Python threads, not wall-clock")
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
        record = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(args.rate), "--output", str(raw)]
        subprocess.run([*record, *([] if args.cpu else ["--idle"]), "--", *cli, "--json", "run", "bench"], env=env,
                       check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, args.keep / f"engine-{args.records}-{'cpu' if args.cpu else 'wall'}.collapsed.txt")
        print(f"engine run of {args.records:,} records, profiled with py-spy")
        print(summarise(raw.read_text(), args.rate, main_threads_only=not args.cpu))


if __name__ == "__main__":
    main()
