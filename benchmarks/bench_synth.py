"""Benchmark the synthetic landing-zone generator: rows per source, seconds, peak memory.

    .venv/bin/python benchmarks/bench_synth.py --persons 1000000 --days 30

Writes into a temporary folder (removed afterwards unless --keep). Peak RSS is the process's
high-water mark (resource.getrusage), so it includes the interpreter and libraries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from stat19.synth import generate


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2026, 1, 5))
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--error-rate", type=float, default=0.002)
    parser.add_argument("--out", type=Path, help="write here (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated landing zone")
    parser.add_argument("--progress", action="store_true", help="log each delivery day")
    args = parser.parse_args(argv)
    if args.progress:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_synth_")) / "landing"
    started = time.perf_counter()
    summary = generate(out, persons=args.persons, start=args.start, days=args.days, seed=args.seed,
                       error_rate=args.error_rate)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    size_mib = folder_size(out) / 2**20

    print(f"persons={args.persons:,} days={args.days} start={args.start} seed={args.seed}")
    print(f"{'source':<10}{'rows':>14}")
    for source, rows in summary["rows"].items():
        print(f"{source:<10}{rows:>14,}")
    print(f"{'total':<10}{sum(summary['rows'].values()):>14,}")
    print(f"freg first delivery rows: {summary['population_rows']:,}")
    print(f"delivery faults: {len(summary['delivery_faults'])}")
    print(f"seconds: {seconds:.1f} ({seconds / args.days:.2f} per delivery day)")
    print(f"peak RSS: {peak_mib:,.0f} MiB")
    print(f"landing zone: {size_mib:,.1f} MiB in {out}")
    if not args.keep and args.out is None:
        shutil.rmtree(out.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
