"""Warm test-run latency of each runner: what a user waits for between pressing "Test" and
seeing the preview, once the runner is warm (engine up, image present, no dependencies).

Each runner does a few unmeasured warm-up runs, then N measured test runs (median of 20 by
default) of the Peak example that previews 10 entries from the bundled demo API. Reported: the
whole test run as the core's preview_script() returns it, and the part the script itself took.

    .venv/bin/python bench/bench_runners.py [--runs 20] [--runners subprocess,subprocess-unisolated,docker]

The docker runner needs a reachable engine and the runner image (docker/build-base-image.sh);
without them its line says why and the other runners are still measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common.errors import TributaryError  # noqa: E402
from core.preview import PreviewRequest, preview_script  # noqa: E402
from demo.api import DemoAPI  # noqa: E402
from runners import get_runner  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import sandbox_cost  # noqa: E402

EXAMPLE = ROOT / "examples" / "public_apis_entries.py"
WARM_UP_RUNS = 3


def demo_host() -> str:
    """An address of this host that containers on Docker's default bridge reach too."""
    try:
        from runners.docker_engine import bridge_gateway

        return bridge_gateway() or "127.0.0.1"
    except ImportError:  # no docker SDK: loopback serves the subprocess runner
        return "127.0.0.1"


def measure(runner: str, script: str, runs: int, warm_up: int = WARM_UP_RUNS) -> dict:
    os.environ["TRIBUTARY_RUNNER"] = runner
    get_runner(runner).check()
    totals, scripts = [], []
    for index in range(warm_up + runs):
        started = time.perf_counter()
        result = preview_script(PreviewRequest(script=script))
        elapsed = time.perf_counter() - started
        if not result.ok:
            raise TributaryError(f"a test run failed: {result.error}")
        if index >= warm_up:
            totals.append(elapsed)
            scripts.append(result.duration_s)
    return {"total": totals, "script": scripts}


def describe(values: list[float]) -> str:
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]
    return (f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   "
            f"min {min(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--runners", default="subprocess,subprocess-unisolated,docker")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tributary-bench-") as tmp, DemoAPI(host=demo_host()) as api:
        os.environ["TRIBUTARY_DATA_DIR"] = str(Path(tmp) / "data")
        script = EXAMPLE.read_text().replace("http://127.0.0.1:8765", api.url)
        print(f"warm test runs of {EXAMPLE.name} (preview of 10 records), {args.runs} per runner "
              f"after {WARM_UP_RUNS} warm-up runs; demo API at {api.url}")
        medians = {}
        for runner in [name.strip() for name in args.runners.split(",") if name.strip()]:
            try:
                timings = measure(runner, script, args.runs)
            except (TributaryError, ImportError) as exc:
                print(f"{runner:>21}: not measured: {exc}")
                continue
            medians[runner] = statistics.median(timings["total"])
            print(f"{runner:>21}  test run  {describe(timings['total'])}")
            print(f"{'':>21}  script    {describe(timings['script'])}")
        if "subprocess" in medians and "subprocess-unisolated" in medians:
            print(sandbox_cost(medians["subprocess"], medians["subprocess-unisolated"]))
        if "subprocess" in medians and "docker" in medians:
            extra = (medians["docker"] - medians["subprocess"]) * 1000
            print(f"docker adds {extra:.0f} ms to a warm test run's median "
                  f"({medians['docker'] / medians['subprocess']:.1f}x the subprocess runner)")


if __name__ == "__main__":
    main()
