"""Benchmark: generate a synthetic landing, then run the whole pipeline on it; print figures.

    python benchmarks/bench_ingest.py --persons 1000000 --days 30 --dir bench/1m

Each phase runs as its own process so its peak memory (max RSS) is measured on its own.
Reuses an existing landing in DIR/landing (delete it to regenerate); always starts a fresh home.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

MEASURE = """
import resource, sys, time, runpy
started = time.perf_counter()
sys.argv = ["stat19"] + sys.argv[1:]
code = 0
try:
    from stat19.cli import main
    code = main(sys.argv[1:])
finally:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"@@ seconds={time.perf_counter() - started:.1f} peak_mb={peak:.0f}", file=sys.stderr)
sys.exit(code)
"""


def phase(name: str, args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", MEASURE, *args], capture_output=True, text=True)
    line = next((l for l in proc.stderr.splitlines() if l.startswith("@@")), "")
    figures = dict(kv.split("=") for kv in line[3:].split()) if line else {}
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return {"phase": name, **{k: float(v) for k, v in figures.items()}, "output": proc.stdout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", default="2026-01-05")
    parser.add_argument("--dir", type=Path, default=Path("bench/ingest"))
    args = parser.parse_args()

    landing, home = args.dir / "landing", args.dir / "home"
    results = []
    if not landing.exists():
        results.append(phase("synth", ["synth", "--persons", str(args.persons), "--start", args.start,
                                       "--days", str(args.days), "--out", str(landing)]))
    shutil.rmtree(home, ignore_errors=True)
    results.append(phase("run (ingest + link)", ["run", "--landing", str(landing), "--home", str(home)]))

    rows = sum(1 for _ in (home / "reports" / "deliveries.csv").open()) - 1
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 1e6
    print(f"\n{args.persons:,} persons x {args.days} days; landing {size:,.0f} MB; {rows} delivery attempts")
    for r in results:
        print(f"  {r['phase']:<22} {r.get('seconds', float('nan')):>8.1f} s   peak {r.get('peak_mb', float('nan')):>7.0f} MB")
    (args.dir / "figures.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "output"} for r in results], indent=2))


if __name__ == "__main__":
    main()
