"""The one command behind `make bench`: Tributary's full run path against dlt and the floor,
test-run latency per runner, the issue's targets, and the results written to bench/results/.

    .venv/bin/python bench/run.py [--quick | --once] [--repeat 3] [--pairs 5] [--only floor,tributary,dlt,latency,commit,rest,start,distributed]

Every throughput figure is the median of --repeat runs (3 by default); the floor's and
Tributary's of --pairs runs (5 by default). The runs compared by the speed targets are taken in
rounds (floor, Tributary, dlt pages, dlt Arrow; again ...), so that each ratio compares runs of
the same minutes; dlt's batched settings run in the first --repeat rounds. Each run is a separate
process timed from start to exit, with the peak RSS of its whole process tree. dlt's default
setting at 1,000,000 records is the slow one: a run takes 4 to 6.5 minutes and about 7 GB on
the 2-core machine, so its three runs make most of the 20 minutes `make bench` takes. --once
measures it in one run (the output, the results and the table then say "1 run" next to it);
--quick leaves it out. Nothing is extrapolated: dlt's default setting does not scale linearly
(its 100,000-record run already peaks at about 5 GB), so a figure scaled up from a smaller
run would be wrong.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import bench_engine  # noqa: E402
import bench_floor  # noqa: E402
import report  # noqa: E402

SIZES = [report.SMALL, report.LARGE]
SECTIONS = ("floor", "tributary", "dlt", "latency", "commit", "rest", "start", "distributed")
LATENCY_RUNS = 20
# The floor ratio moves with a shared machine's speed: more pairs, a steadier median.
PAIRS = 5
TRIBUTARY_TITLE = "Tributary: `python -m core.cli run` of a Peak-style feed (sandbox, spool, DuckDB load, state commit)"


def ensure_requirements() -> None:
    """Install bench/requirements.txt into this interpreter's environment when a package is
    missing: the app's own requirements never include the benchmark's comparisons."""
    from importlib import metadata

    from packaging.requirements import Requirement

    wanted = [Requirement(line.split("#")[0].strip()) for line in (BENCH / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip()]
    missing = []
    for req in wanted:
        try:
            if not req.specifier.contains(metadata.version(req.name), prereleases=True):
                missing.append(str(req))
        except metadata.PackageNotFoundError:
            missing.append(str(req))
    if not missing:
        return
    print(f"installing the benchmark's requirements ({', '.join(missing)})", flush=True)
    from uv import find_uv_bin

    subprocess.run([find_uv_bin(), "pip", "install", "--quiet", "--compile-bytecode", "--python", sys.executable,
                    "-r", str(BENCH / "requirements.txt")], check=True)


def ensure_bytecode() -> None:
    """Compiled bytecode for every library and for the project, for every contender alike.
    Python writes it on first import, unless PYTHONDONTWRITEBYTECODE is set (as on the CI
    machines): then each process would compile every module it imports again (about 0.8 s for
    the CLI, more for dlt), which no installed application pays. Up-to-date files are skipped."""
    import compileall
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], *(str(ROOT / d) for d in ("core", "runners", "storage", "demo"))]
    print("compiling bytecode where it is missing or stale", flush=True)
    for path in paths:
        compileall.compile_dir(path, quiet=2, workers=0)


def _line(title: str, fig: dict) -> str:
    runs = " ".join(f"{s:.2f}" for s in fig.get("all_wall_s", []))
    return (f"  {title:<30} {fig['records']:>9,} records  {fig['wall_s']:8.2f} s  {fig['records_per_s']:>9,} rec/s  "
            f"peak RSS {fig['peak_rss_mb']:8.1f} MB   (runs: {runs} s)")


def _print_floor(fig: dict) -> None:
    print(_line(f"floor ({fig['encoder']} {fig['encoder_version']})", fig), flush=True)


def _print_tributary(fig: dict) -> None:
    print(_line("tributary", fig), flush=True)
    print(f"  {'':<30} median phases: {bench_engine.format_phases(fig['phases'])}", flush=True)
    print("\n".join(f"  {'':<32}{line.strip()}" for line in fig["processes"]), flush=True)


def run_floor(results: dict, repeat: int, sizes: list[int]) -> None:
    print("\nThe floor: build the same records and write them as JSON lines, nothing else", flush=True)
    for n in sizes:
        fig = results["throughput"].setdefault("floor", {})[str(n)] = bench_floor.measure(n, repeat)
        _print_floor(fig)


# What a round runs, in this order: the contenders compared by the speed targets, side by side.
ROUND_ORDER = ("floor", "tributary", "dlt_pages", "dlt_arrow")


def _one_run(key: str, n: int, encoder: str) -> dict:
    if key == "floor":
        return bench_floor.one_run(encoder, n, sys.executable)
    if key == "tributary":
        return bench_engine.one_run(n)
    import bench_dlt

    return bench_dlt.one_run(key.removeprefix("dlt_"), n, sys.executable)


def _summarize(key: str, n: int, runs: list[dict], encoder: str, version: str | None) -> dict:
    if key == "floor":
        return bench_floor.summarize(n, runs, encoder, version)
    if key == "tributary":
        return bench_engine.summarize(n, runs)
    import bench_dlt

    return bench_dlt.summarize(n, runs)


def _round_keys(sections: set[str]) -> list[str]:
    wanted = {"floor", "tributary"} & sections
    if "dlt" in sections and "tributary" in sections:
        wanted |= {"dlt_pages", "dlt_arrow"}
    return [key for key in ROUND_ORDER if key in wanted]


def _ratios(numerators: list[dict], denominators: list[dict]) -> list[float]:
    """Wall time over wall time, round by round, for the rounds in which both ran."""
    return [round(a["wall_s"] / b["wall_s"], 2) for a, b in zip(numerators, denominators)]


def run_in_rounds(results: dict, sections: set[str], rounds: int, repeat: int, sizes: list[int]) -> None:
    """The floor, Tributary and dlt's batched settings in rounds (floor, Tributary, dlt pages,
    dlt Arrow; again ...), so that every ratio compares runs taken at the same moments: on a
    shared machine the speed drifts by a third over minutes, and blocks of runs minutes apart
    would put that drift into the ratios. dlt runs in the first --repeat rounds (each of its runs
    takes a minute); the floor and Tributary in all --pairs rounds."""
    keys = _round_keys(sections)
    encoder, version = bench_floor.fastest_encoder()
    print(f"\nIn rounds ({', '.join(report.SHORT[k] for k in keys)}; again ...):\n"
          f"  floor      build the same records and write them as JSON lines, nothing else\n"
          f"  tributary  {TRIBUTARY_TITLE}", flush=True)
    if any(k.startswith("dlt_") for k in keys):
        import bench_dlt

        print(f"  dlt {results['environment']['versions']['dlt']} into DuckDB, the same records:\n"
              + "\n".join(f"    {k:<8} {bench_dlt.SETTINGS[k]}" for k in ("pages", "arrow")), flush=True)
    for n in sizes:
        runs: dict[str, list[dict]] = {key: [] for key in keys}
        for number in range(1, rounds + 1):
            for key in keys:
                if key.startswith("dlt_") and number > repeat:
                    continue
                runs[key].append(_one_run(key, n, encoder))
            print(f"  {n:>9,} records, round {number}: "
                  + ", ".join(f"{report.SHORT[k]} {runs[k][-1]['wall_s']:.2f} s" for k in keys if len(runs[k]) == number),
                  flush=True)
        figures = {key: _summarize(key, n, runs[key], encoder, version) for key in keys}
        for key, fig in figures.items():
            results["throughput"].setdefault(key, {})[str(n)] = fig
        _print_round_figures(figures, runs)


def _print_round_figures(figures: dict, runs: dict) -> None:
    ours = figures.get("tributary")
    for key, fig in figures.items():
        if key == "floor":
            _print_floor(fig)
        elif key == "tributary":
            _print_tributary(fig)
        else:
            print(_line(report.SHORT[key], fig), flush=True)
    if not ours:
        return
    if "floor" in figures:
        ratios = ours["floor_ratio_by_pair"] = _ratios(runs["tributary"], runs["floor"])
        print(f"  {'':<30} Tributary / floor, round by round: {' '.join(f'{r:.2f}' for r in ratios)} "
              f"(median {statistics.median(ratios):.2f}x)", flush=True)
    for key in (k for k in figures if k.startswith("dlt_")):
        ratios = ours.setdefault("dlt_ratio_by_round", {})[key] = _ratios(runs[key], runs["tributary"])
        print(f"  {'':<30} Tributary's records/s over {report.SHORT[key]}'s, round by round: "
              f"{' '.join(f'{r:.2f}' for r in ratios)}x (median {statistics.median(ratios):.2f}x)", flush=True)


def run_dlt(results: dict, repeat: int, sizes: list[int], quick: bool, once: bool) -> None:
    import bench_dlt

    measured = results["throughput"]
    print(f"\ndlt {results['environment']['versions']['dlt']} into DuckDB, the same records, each setting a separate "
          "process" + (" (its batched settings ran in the rounds above)" if "dlt_pages" in measured else "") + ":\n"
          + "\n".join(f"  {k:<8} {v}" for k, v in bench_dlt.SETTINGS.items()), flush=True)
    for setting in ("arrow", "pages", "default"):
        key = f"dlt_{setting}"
        for n in sizes:
            if str(n) in measured.get(key, {}):
                continue
            runs = repeat
            if setting == "default" and n == report.LARGE and quick:
                results["skipped"].append(f"{report.CONTENDERS[key]} at {n:,} records (--quick)")
                print(f"  {report.SHORT[key]:<30} {n:>9,} records  left out by --quick", flush=True)
                continue
            if setting == "default" and n == report.LARGE:
                runs = 1 if once else repeat
                print(f"  ({bench_dlt.SETTINGS[setting]} at {n:,} records: {runs} run(s) of several minutes each"
                      + ("" if once else "; --once for 1") + ")", flush=True)
            fig = results["throughput"].setdefault(key, {})[str(n)] = bench_dlt.measure(setting, n, runs)
            print(_line(report.SHORT[key], fig), flush=True)


def run_commit(results: dict, sizes: list[int]) -> None:
    print("\nThe two-phase commit's extra store write (the pending outcome), against the run's wall time", flush=True)
    # Its own process, as the latency: it sets TRIBUTARY_* variables and imports the app.
    out = subprocess.run([sys.executable, str(BENCH / "bench_commit.py"), "--json", "--records", *map(str, sizes)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        results["commit"] = {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
        print(f"  not measured: {out.stderr.strip()[-500:]}", flush=True)
        return
    lines = out.stdout.strip().splitlines()
    print("\n".join("  " + line for line in lines[:-1]), flush=True)
    results["commit"] = json.loads(lines[-1])["commit"]


def _subprocess_section(results: dict, key: str, args: list[str]) -> None:
    """A measurement in its own process (it sets TRIBUTARY_* variables, starts servers): its
    lines printed as they come, its last line the JSON document of its figures."""
    proc = subprocess.Popen([sys.executable, *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("{"):
            print("  " + line.rstrip(), flush=True)
    err = proc.stderr.read()
    if proc.wait() != 0 or not lines or not lines[-1].startswith("{"):
        results[key] = {"error": err.strip().splitlines()[-1:] or ["failed"]}
        print(f"  not measured: {err.strip()[-1500:]}", flush=True)
        return
    results[key] = json.loads(lines[-1])[key]


def run_rest(results: dict, rounds: int) -> None:
    print("\nIssue 18: a paginated REST API over HTTP (demo API, 50 ms per page), Tributary against Peak's "
          "sequential loop and dlt's rest_api", flush=True)
    _subprocess_section(results, "rest", [str(BENCH / "bench_rest.py"), "--rounds", str(rounds)])


def run_start(results: dict, rounds: int) -> None:
    print("\nIssue 17: first start of a fresh clone (install + server up) and the idle server's CPU", flush=True)
    _subprocess_section(results, "start", [str(BENCH / "bench_start.py"), "--runs", str(rounds)])


def run_distributed(results: dict) -> None:
    print("\nIssue 20: 8 CPU-bound feeds (250,000 records each) with the local executor, one Celery worker and two; "
          "enqueue-to-start and cancel latency", flush=True)
    _subprocess_section(results, "distributed", [str(BENCH / "bench_distributed.py")])


def run_latency(results: dict) -> None:
    print(f"\nTest-run latency: Peak's example against the demo API, {LATENCY_RUNS} warm runs per runner", flush=True)
    # Its own process: the measurement sets TRIBUTARY_* variables and imports the app.
    out = subprocess.run([sys.executable, str(BENCH / "bench_latency.py"), "--json", "--runs", str(LATENCY_RUNS)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        results["latency"] = {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
        print(f"  not measured: {out.stderr.strip()[-500:]}", flush=True)
        return
    data = json.loads(out.stdout.strip().splitlines()[-1])
    results["latency"] = {"runs": LATENCY_RUNS, **data["runners"]}
    for runner, fig in data["runners"].items():
        if "error" in fig:
            print(f"  {runner:<21} not measured: {fig['error']}", flush=True)
        else:
            print(f"  {runner:<21} median {fig['median_s'] * 1000:7.1f} ms   p95 {fig['p95_s'] * 1000:7.1f} ms   "
                  f"(the script's own part: median {fig['script']['median_s'] * 1000:.1f} ms)", flush=True)
    isolated, plain = data["runners"].get("subprocess", {}), data["runners"].get("subprocess-unisolated", {})
    if "median_s" in isolated and "median_s" in plain:
        print(f"  {report.sandbox_cost(isolated['median_s'], plain['median_s'])}", flush=True)


def print_comparison(results: dict, sizes: list[int]) -> None:
    throughput = results["throughput"]
    for n in sizes:
        ours = throughput.get("tributary", {}).get(str(n))
        if not ours:
            continue
        print(f"\nAt {n:,} records, Tributary ({ours['wall_s']:.2f} s, {ours['records_per_s']:,} rec/s, "
              f"{ours['peak_rss_mb']:.0f} MB) compared:")
        for key in (*report.DLT_KEYS, "floor"):
            fig = throughput.get(key, {}).get(str(n))
            if fig:
                print(f"  vs {report.CONTENDERS[key]:<58} {report._versus(ours, fig, key)}")


def print_targets(targets: list[dict]) -> None:
    print("\nTargets (issue 7, on this machine):")
    for t in targets:
        distance = f"  -> {t['distance']}" if t["distance"] else ""
        print(f"  [{t['status']:^12}] {t['target']}: {t['measured'] or '-'}{distance}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--quick", action="store_true", help="leave out dlt's default setting at 1,000,000 records")
    how.add_argument("--once", action="store_true",
                     help="measure dlt's default setting at 1,000,000 records in one run, not --repeat (saves about "
                          "10 minutes)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is reported (default 3)")
    parser.add_argument("--pairs", type=int, default=PAIRS,
                        help=f"rounds of floor and Tributary runs per size (default {PAIRS}, at least --repeat); "
                             "dlt's batched settings join the first --repeat rounds")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES,
                        help="record counts (default 100000 1000000; the targets need both of those)")
    parser.add_argument("--no-install", action="store_true", help="do not install bench/requirements.txt")
    args = parser.parse_args()
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    if unknown := sections - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if not args.no_install:
        ensure_requirements()
    ensure_bytecode()

    started = time.monotonic()
    environment = report.environment()
    machine, versions = environment["machine"], environment["versions"]
    results = {"started_at": report.now_iso(), "settings": {"repeat": args.repeat, "pairs": max(args.pairs, args.repeat),
               "quick": args.quick, "once": args.once,
               "sections": sorted(sections), "sizes": args.sizes}, "environment": environment,
               "throughput": {}, "latency": {}, "skipped": []}
    print(f"Tributary benchmarks on {machine['cpu_count']} CPUs ({machine['cpu_model']}), {machine['memory_gb']} GB; "
          f"Python {versions['python']}, DuckDB {versions['duckdb']}, dlt {versions['dlt']}, Tributary {versions['tributary']}")
    mode = "--quick" if args.quick else "--once: dlt's default setting at 1M in 1 run" if args.once else "every figure"
    print(f"each figure: median of {args.repeat} runs ({mode}); the floor and Tributary: "
          f"{max(args.pairs, args.repeat)} each; runs taken in rounds")
    load = machine["load_average_at_start"]
    if load and load[0] > 0.25 * (machine["cpu_count"] or 1):
        print(f"note: load average {load[0]} at start: other processes are using the CPUs, so every figure here "
              "is slower than on an idle machine (the ratios suffer less)")

    if "tributary" in sections:
        rounds = max(args.pairs, args.repeat) if "floor" in sections else args.repeat
        run_in_rounds(results, sections, rounds, args.repeat, args.sizes)
    elif "floor" in sections:
        run_floor(results, args.repeat, args.sizes)
    if "dlt" in sections:
        run_dlt(results, args.repeat, args.sizes, args.quick, args.once)
    if "latency" in sections:
        run_latency(results)
    if "commit" in sections:
        run_commit(results, args.sizes)
    if "rest" in sections:
        run_rest(results, args.repeat)
    if "start" in sections:
        run_start(results, args.repeat)
    if "distributed" in sections:
        run_distributed(results)

    results["finished_at"] = report.now_iso()
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    environment["machine"]["load_average_at_end"] = report.load_average()
    if (at_end := report.engine_source()) != versions["engine_source_sha256"]:
        # Someone edited the engine while it was measured: the figures may mix two versions.
        versions["engine_source_sha256_at_end"] = at_end
        print(f"\nwarning: the engine's source changed during the benchmark ({versions['engine_source_sha256']} -> "
              f"{at_end}); figures may mix the two versions")
    results["targets"] = report.evaluate_targets(results)
    print_comparison(results, args.sizes)
    if sections & {"floor", "tributary", "dlt", "latency"}:  # issue 7's; rest and start print their own
        print_targets(results["targets"])
    for item in results["skipped"]:
        print(f"not measured: {item}")
    # A run of some sections writes its own results file only: latest.json and the README's
    # table stay those of the last full run.
    partial = sections != set(SECTIONS)
    paths = report.write(results, partial=partial)
    if partial:
        print(f"\nwrote {paths['json'].relative_to(ROOT)} (sections {', '.join(sorted(sections))}; latest.json and "
              f"README-table.md are left as the last full run wrote them) in {results['elapsed_s'] / 60:.1f} min")
    else:
        print(f"\nwrote {paths['json'].relative_to(ROOT)}, {paths['latest'].relative_to(ROOT)} and "
              f"{paths['table'].relative_to(ROOT)} in {results['elapsed_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
