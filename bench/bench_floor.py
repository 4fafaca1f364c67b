"""The floor: a bare process that builds the same records and writes them as JSON lines.

No sandbox, no spool rotation, no load, no database: only what any tool must do at least
(make N Python dicts and serialise them), with the fastest JSON library installed (orjson when
present, then msgspec, ujson, the standard library). Measured as a separate process, start-up
included, like the other contenders.

    .venv/bin/python bench/bench_floor.py [--records 100000 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import PRELUDE, RECORD  # noqa: E402
from procwatch import run_watched  # noqa: E402

# Each variant: (module to import, setup lines, the expression that makes one line of bytes).
ENCODERS = {
    "orjson": ("orjson", "dumps, opt = orjson.dumps, orjson.OPT_APPEND_NEWLINE", "dumps({record}, option=opt)"),
    "msgspec": ("msgspec", "dumps = msgspec.json.Encoder().encode", "dumps({record}) + b'\\n'"),
    "ujson": ("ujson", "dumps = ujson.dumps", "(dumps({record}) + '\\n').encode()"),
    "json": ("json", "dumps = json.JSONEncoder(separators=(',', ':')).encode", "(dumps({record}) + '\\n').encode()"),
}

PROGRAM = '''import {module}
{setup}
{prelude}
with open({path!r}, "wb", buffering=1 << 20) as handle:
    write = handle.write
    for i in range({n}):
        write({line})
'''


def fastest_encoder(python: str = sys.executable) -> tuple[str, str]:
    """The first library of ENCODERS that imports, with its version."""
    import subprocess

    for name in ENCODERS:
        probe = f"import {name}, importlib.metadata as m; print(m.version({name!r}) if {name!r} != 'json' else 'stdlib')"
        out = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return name, out.stdout.strip()
    raise RuntimeError("no JSON library at all")


def program(encoder: str, n: int, path: Path) -> str:
    module, setup, line = ENCODERS[encoder]
    return PROGRAM.format(module=module, setup=setup, prelude=PRELUDE, path=str(path), n=n,
                          line=line.format(record=RECORD))


def one_run(encoder: str, n: int, python: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="tributary-bench-floor-") as tmp:
        out_path = Path(tmp) / "records.jsonl"
        script = Path(tmp) / "floor.py"
        script.write_text(program(encoder, n, out_path))
        code, wall, watch, out = run_watched([python, str(script)])
        if code != 0:
            raise RuntimeError(f"the floor program failed:\n{out[-3000:]}")
        with open(out_path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        if lines != n:
            raise RuntimeError(f"the floor wrote {lines} lines, expected {n}")
        return {"wall_s": wall, "peak_rss_mb": watch.sum_of_peaks_mb, "bytes": out_path.stat().st_size}


def measure(n: int, repeat: int, python: str = sys.executable, encoder: str | None = None) -> dict:
    encoder, version = (encoder, None) if encoder else fastest_encoder(python)
    return summarize(n, [one_run(encoder, n, python) for _ in range(repeat)], encoder, version)


def summarize(n: int, runs: list[dict], encoder: str, version: str | None) -> dict:
    """The median of runs of N records, with every run's figures."""
    wall = statistics.median(r["wall_s"] for r in runs)
    return {
        "records": n,
        "runs": len(runs),
        "encoder": encoder,
        "encoder_version": version,
        "wall_s": round(wall, 3),
        "records_per_s": round(n / wall),
        "peak_rss_mb": round(statistics.median(r["peak_rss_mb"] for r in runs), 1),
        "all_wall_s": [round(r["wall_s"], 3) for r in runs],
        "all_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in runs],
        "bytes": runs[0]["bytes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--encoder", choices=sorted(ENCODERS), help="default: the fastest one installed")
    args = parser.parse_args()
    for n in args.records:
        result = measure(n, args.repeat, encoder=args.encoder)
        print(f"{n:>9,} records  {result['encoder']}: {result['wall_s']:6.2f} s  {result['records_per_s']:>10,} records/s  "
              f"peak RSS {result['peak_rss_mb']:6.1f} MB  {result['bytes'] / 2**20:6.1f} MiB written")


if __name__ == "__main__":
    main()
