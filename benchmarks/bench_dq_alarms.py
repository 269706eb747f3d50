"""False alarms and misses of the blocking data-quality checks, measured.

Each injected defect (stat19/synth/defects.py) is put into the last day of a clean landing of
`--defect-persons` persons: a run that does not block is a miss. Then clean landings (different
seeds and sizes) must publish: any blocking failure on their last day is a false alarm.

Every landing goes through the same code as `stat19 run` (stat19.pipeline.run): load, the
data-quality checks for the last day, linkage and — unless --dq-only — the seven products.
--dq-only skips the products (disclosure control dominates a full run) and says so in its output.

    python benchmarks/bench_dq_alarms.py --dq-only --sizes 3000 5000 10000 20000 --days 15
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from stat19.paths import Home
from stat19.pipeline import DataQualityBlocked, run
from stat19.synth import generate
from stat19.synth.defects import DEFECTS

START = date(2026, 1, 5)
DEFAULT_SIZES = [3000, 3000, 5000, 5000, 5000, 10000, 10000, 10000, 20000, 20000, 20000, 20000,
                 50000, 50000, 50000, 100000, 100000, 250000, 250000, 1000000]


def outcome(landing: Path, home: Path, products: bool, through: date | None = None) -> tuple[str, str]:
    """('published' | 'blocked', the blocking checks and figures) of one run."""
    try:
        run(landing, Home(home), through, progress=lambda _: None, products=products)
        return "published", ""
    except DataQualityBlocked as exc:
        return "blocked", "; ".join(f"{c.check}: {' '.join(c.details) or c.summary()}" for c in exc.blocked.checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=DEFAULT_SIZES, help="persons of each clean landing")
    parser.add_argument("--days", type=int, default=15, help="days of deliveries per landing (history for the checks)")
    parser.add_argument("--defect-persons", type=int, nargs="*", default=[20000], help="sizes for the defect table")
    parser.add_argument("--defects", nargs="+", choices=sorted(DEFECTS), default=sorted(DEFECTS),
                        help="the defects to inject (default: all)")
    parser.add_argument("--first-seed", type=int, default=1000,
                        help="seed of the first clean landing (the next ones count up), so runs split over processes differ")
    parser.add_argument("--dq-only", action="store_true", help="load + checks + linkage, without the products")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/stat19-bench-dq-alarms"))
    args = parser.parse_args()
    os.environ.setdefault("STAT19_PSEUDONYM_KEY", "benchmark key, not a secret: 32 bytes or more")
    products = not args.dq_only
    print(f"mode: {'load + data quality + linkage, no products (--dq-only)' if args.dq_only else 'whole pipeline with products'}; "
          f"{args.days} days per landing")
    shutil.rmtree(args.workdir, ignore_errors=True)
    last = START + timedelta(days=args.days - 1)

    # The defects first: fewer landings, and the largest clean landing takes longest.
    print(f"\nInjected defects on {last} (a run that publishes is a miss)\n{'persons':>9} {'defect':<22} {'outcome':>10} {'seconds':>8}  blocked by")
    misses = false_alarms = 0
    for persons in args.defect_persons:
        base = args.workdir / f"defects-{persons}"
        generate(base / "landing", persons=persons, start=START, days=args.days, seed=7)
        status, detail = outcome(base / "landing", base / "home", False, through=last - timedelta(days=1))  # history once
        if status == "blocked":  # the clean days before the defect: a block is a false alarm too
            false_alarms += 1
            print(f"{persons:>9,} {'(clean history)':<22} {status:>10} {'':>8}  {detail}", flush=True)
        for name in args.defects:
            inject = DEFECTS[name]
            case = args.workdir / f"{name}-{persons}"
            shutil.copytree(base, case)
            inject(case / "landing", last)
            started = time.perf_counter()
            status, detail = outcome(case / "landing", case / "home", products)
            misses += status != "blocked"
            print(f"{persons:>9,} {name:<22} {status:>10} {time.perf_counter() - started:>8.0f}  {detail}", flush=True)
            shutil.rmtree(case)
        shutil.rmtree(base)
    print(f"\nClean landings (a block is a false alarm)\n{'persons':>9} {'seed':>5} {'outcome':>10} {'seconds':>8}  detail")
    for k, persons in enumerate(args.sizes):
        seed = args.first_seed + k
        landing, home = args.workdir / f"clean-{k}" / "landing", args.workdir / f"clean-{k}" / "home"
        generate(landing, persons=persons, start=START, days=args.days, seed=seed)
        started = time.perf_counter()
        status, detail = outcome(landing, home, products)
        false_alarms += status == "blocked"
        print(f"{persons:>9,} {seed:>5} {status:>10} {time.perf_counter() - started:>8.0f}  {detail}", flush=True)
        shutil.rmtree(args.workdir / f"clean-{k}")

    print(f"\nfalse blocks: {false_alarms} of {len(args.sizes)} clean landings and {len(args.defect_persons)} clean histories; "
          f"misses: {misses} of {len(args.defects) * len(args.defect_persons)} injected defects")


if __name__ == "__main__":
    main()
