"""Profile suppression of one vaccine_coverage-shaped release (bench_disclosure's), and time the
publication gate (``check_release``: its LPs are skipped for the release suppress proved).

    python benchmarks/profile_disclosure.py [--persons 3000] [--seed 1] [--profile] [--top 25]

CPU seconds are printed too: wall time on a shared machine depends on the neighbours.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import bench_disclosure as bench

from stat19 import disclosure


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, help="thin the population to about this many persons")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="cProfile the suppression")
    ap.add_argument("--top", type=int, default=25, help="functions listed with --profile")
    args = ap.parse_args()
    release, dims = bench.build(args.seed, list(bench.COVERAGE), args.persons)
    stats = disclosure.Stats()
    prof = cProfile.Profile() if args.profile else None
    t0, c0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    out = disclosure.suppress(release, dims, bench.MEASURES, stats=stats)
    if prof:
        prof.disable()
    print(f"suppress      {time.perf_counter() - t0:6.2f} s wall {time.process_time() - c0:6.2f} s CPU   "
          f"LPs {stats.lps}, repair rounds {stats.repair_rounds}, hidden {stats.hidden}")
    t0, c0 = time.perf_counter(), time.process_time()
    disclosure.check_release(out, dims, bench.MEASURES)
    print(f"check_release {time.perf_counter() - t0:6.2f} s wall {time.process_time() - c0:6.2f} s CPU   (the gate "
          "before publication)")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
