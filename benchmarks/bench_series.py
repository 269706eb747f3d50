"""Benchmark (issue 11): disclosure control across consecutive daily releases, design by design.

    python benchmarks/bench_series.py --persons 20000 --days 30 --releases 30 --workdir bench/series
    python benchmarks/bench_series.py --persons 250000 --days 30 --releases 30 --workdir bench/series

For each size: `stat19 synth` writes a landing of --days days (kept under --workdir and reused with
the same arguments) and `stat19 run` loads it into a home (the linked model keeps every version
with _known_from/_known_to, so any earlier reference date can be computed as known then). Then,
for each product and each of the last --releases dates R, the release is computed as the daily
run computes it (`compute_release`, single-release suppression), and the series is protected
design by design, each release against the previous day's release of the same design (already
published, so fixed):

    single   today's code: no series protection; findings counts the cells published in both
             releases whose difference is 1-4 (a lower bound of the leaks: the LP finds more)
    hold     protect_series(design="hold"): a published count that changed by 1-4 is hidden,
             the pattern otherwise free (plus what the series audit proves necessary)
    stable   protect_series(design="stable"): first keep hidden what the previous release hid

Printed per design: hidden share of the suppressible count cells by geography level (mean over
the releases), extra cells hidden beyond the single-release suppression, series findings (must be
0 for hold and stable), and seconds: single suppression (inside compute_release), series
protection, and one series audit (series_audit) next to one single-release audit (audit), the
budget of issue 11 being that the series audit costs at most the single audit's time again.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from stat19 import disclosure  # noqa: E402
from stat19.linkage import linked_connection  # noqa: E402
from stat19.paths import Home  # noqa: E402
from stat19.products import compute_release, disclosure_dimensions, disclosure_measures, get_product  # noqa: E402

DESIGNS = ["single", "hold", "stable"]


def stat19(*args: str) -> list[str]:
    return [sys.executable, "-m", "stat19.cli", *args]


def prepare(persons: int, days: int, start: date, seed: int, workdir: Path) -> Home:
    base = workdir / f"p{persons}-d{days}-s{seed}"
    landing, home = base / "landing", base / "home"
    stamp = base / "ready.json"
    want = {"persons": persons, "days": days, "start": start.isoformat(), "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return Home(home)
    subprocess.run(["rm", "-rf", str(base)], check=True)
    base.mkdir(parents=True)
    clock = time.perf_counter()
    subprocess.run(stat19("synth", "--persons", str(persons), "--start", start.isoformat(), "--days", str(days),
                          "--out", str(landing), "--seed", str(seed)), check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    # products are computed below, date by date; the run only has to load and link
    subprocess.run(stat19("run", "--landing", str(landing), "--home", str(home), "--product", "pertussis_pregnancy"),
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    print(f"  landing and home for {persons:,} persons x {days} days: {time.perf_counter() - clock:.0f} s",
          flush=True)
    stamp.write_text(json.dumps(want))
    return Home(home)


def shares(df: pl.DataFrame, measures: list[disclosure.CountMeasure]) -> dict[str, float]:
    """Hidden share of the suppressible count cells by geography level (all measures together)."""
    hidden = [disclosure.hidden_column(m.name) for m in measures if m.rule != "public"]
    long = df.select("geo_level", *hidden).unpivot(index="geo_level", value_name="hidden")
    out = long.group_by("geo_level").agg(pl.col("hidden").mean()).sort("geo_level")
    return {**dict(zip(out["geo_level"], out["hidden"], strict=True)), "all": float(long["hidden"].mean())}


def run_product(home: Home, product: str, dates: list[date]) -> None:
    spec = get_product(product)
    singles: list[pl.DataFrame] = []
    seconds_single: list[float] = []
    with linked_connection(home) as con:
        for day in dates:
            timings: dict[str, float] = {}
            df, _ = compute_release(con, spec, day, timings=timings)
            singles.append(df)
            seconds_single.append(timings["suppression"])
    compare(product, dates, singles, seconds_single, disclosure_dimensions(spec, singles[0]), disclosure_measures(spec))


def synthetic(persons: int, releases: int, seed: int, rate: float) -> None:
    """vaccine_coverage-shaped releases on the national structure (bench_disclosure.py), day after
    day: each day every unvaccinated person is vaccinated with probability rate (x4 from age 65),
    counted in ever and season. No pipeline, so any size runs in minutes."""
    import bench_disclosure as bd

    leaf, rng = bd.leaf_table(seed, list(bd.COVERAGE), persons)
    old_age = pl.col("age_group").is_in(["65-74", "75-84", "85+"])
    p = leaf.select(pl.when(old_age).then(4 * rate).otherwise(rate)).to_series().to_numpy()
    start = date(2026, 1, 5)
    dates, singles, seconds = [], [], []
    measures = bd.MEASURES
    for k in range(releases):
        if k:
            new = rng.binomial(leaf["population"].to_numpy() - leaf["vaccinated_ever"].to_numpy(), p)
            leaf = leaf.with_columns(pl.col("vaccinated_ever") + new, pl.col("vaccinated_season") + new)
        release, dims = bd.roll_up_release(leaf)
        clock = time.perf_counter()
        singles.append(disclosure.suppress(release, dims, measures))
        seconds.append(time.perf_counter() - clock)
        dates.append(start + timedelta(days=k))
    compare(f"vaccine_coverage-shaped, synthetic, daily rate {rate}", dates, singles, seconds, dims, measures)


def published_small_differences(new: pl.DataFrame, old: pl.DataFrame, dims: list[disclosure.Dimension],
                                 counted: list[disclosure.CountMeasure]) -> int:
    """Cells published in both releases whose difference is 1-4 in size (a lower bound of what
    the series audit finds; the rest, cells narrowed through hidden ones, needs the LPs)."""
    keys = [d.name for d in dims]
    both = new.join(old, on=keys, suffix="_old")
    n = 0
    for m in counted:
        h = disclosure.hidden_column(m.name)
        change = (both[m.name] - both[f"{m.name}_old"]).abs()
        n += int((~both[h] & ~both[f"{h}_old"] & (change >= 1) & (change <= disclosure.WIDTH - 1)).sum())
    return n


def compare(product: str, dates: list[date], singles: list[pl.DataFrame], seconds_single: list[float],
            dims: list[disclosure.Dimension], measures: list[disclosure.CountMeasure]) -> None:
    counted = [m for m in measures if m.rule != "public"]
    print(f"\n{product}: {len(dates)} releases {dates[0]} .. {dates[-1]}, {singles[-1].height:,} cells each (last), "
          f"single suppression {np.median(seconds_single):.1f} s median", flush=True)
    print(f"  {'design':<8}{'national':>10}{'fylke':>9}{'kommune':>9}{'all':>8}{'extra/day':>11}"
          f"{'findings':>10}{'protect s':>11}{'series audit s':>16}{'audit s':>9}")
    for design in DESIGNS:
        prev: pl.DataFrame | None = None
        rows, extra, findings, t_protect, t_series, t_audit = [], [], 0, [], [], []
        for day, single in zip(dates, singles, strict=True):
            df = single
            if prev is not None:
                neighbours = {(day - timedelta(days=1)).isoformat(): prev}
                if design != "single":
                    clock = time.perf_counter()
                    df = disclosure.protect_series(single, neighbours, dims, measures, design=design)
                    t_protect.append(time.perf_counter() - clock)
                    before = sum(int(single[disclosure.hidden_column(m.name)].sum()) for m in counted)
                    extra.append(sum(int(df[disclosure.hidden_column(m.name)].sum()) for m in counted) - before)
                if design == "single":  # unprotected: the published differences of 1-4 alone (no LP)
                    findings += published_small_differences(df, prev, dims, counted)
                else:
                    clock = time.perf_counter()
                    findings += len(disclosure.series_audit(df, neighbours, dims, measures))
                    t_series.append(time.perf_counter() - clock)
                    clock = time.perf_counter()
                    assert not disclosure.audit(df, dims, measures), "the single-release audit must pass"
                    t_audit.append(time.perf_counter() - clock)
            rows.append(shares(df, measures))
            prev = df
        levels = {lvl: float(np.mean([r.get(lvl, np.nan) for r in rows]))
                  for lvl in ("national", "fylke", "kommune", "all")}

        def pct(x: float) -> str:
            return "-" if np.isnan(x) else f"{100 * x:.2f}%"

        print(f"  {design:<8}{pct(levels['national']):>10}{pct(levels['fylke']):>9}{pct(levels['kommune']):>9}"
              f"{pct(levels['all']):>8}"
              f"{(np.mean(extra) if extra else 0):>11.1f}{findings:>10}"
              f"{(np.median(t_protect) if t_protect else 0):>11.2f}{(np.median(t_series) if t_series else 0):>16.2f}"
              f"{(np.median(t_audit) if t_audit else 0):>9.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, nargs="+", default=[20000])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--releases", type=int, default=30, help="consecutive daily releases (the last ones)")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 5))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--products", nargs="+", default=["vaccine_coverage"])
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "series")
    ap.add_argument("--synthetic", action="store_true",
                    help="vaccine_coverage-shaped releases drawn day by day, no landing (see synthetic())")
    ap.add_argument("--rate", type=float, default=0.0005, help="--synthetic: daily vaccination probability")
    ap.add_argument("--verbose", action="store_true", help="print the suppression's progress lines")
    args = ap.parse_args()
    if args.verbose:
        from stat19.progress import set_printer
        set_printer(lambda line: print(f"    {line}", flush=True))
    if args.synthetic:
        for persons in args.persons:
            print(f"== {persons:,} persons", flush=True)
            synthetic(persons, args.releases, args.seed, args.rate)
        return
    last = args.start + timedelta(days=args.days - 1)
    dates = [last - timedelta(days=k) for k in reversed(range(min(args.releases, args.days)))]
    for persons in args.persons:
        print(f"== {persons:,} persons", flush=True)
        home = prepare(persons, args.days, args.start, args.seed, args.workdir)
        for product in args.products:
            run_product(home, product, dates)


if __name__ == "__main__":
    main()
