"""Benchmark: compute every product (SQL, suppression, audit-ready release) on an existing home.

    python benchmarks/bench_products.py --home bench/1m/home --date 2026-02-03

Run benchmarks/bench_ingest.py first to make the home. Prints seconds, cells, hidden values and
peak memory per product; nothing is published.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date
from pathlib import Path

from stat19.linkage import linked_connection
from stat19.paths import Home
from stat19.products import compute_release, product_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="reference date R")
    args = parser.parse_args()
    total = time.perf_counter()
    with linked_connection(Home(args.home)) as con:
        for name, spec in product_specs().items():
            started = time.perf_counter()
            _, meta = compute_release(con, spec, args.date)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{name:<22}{time.perf_counter() - started:8.1f} s  {meta['cells']:>10,} cells  "
                  f"{meta['disclosure']['hidden_values_total']:>9,} hidden values  peak {peak:,.0f} MB", flush=True)
    print(f"all products: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
