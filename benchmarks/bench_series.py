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

    single   today's code: no series protection; the series audit counts what leaks
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
    dims = disclosure_dimensions(spec, singles[0])
    measures = disclosure_measures(spec)
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
              f"{(np.median(t_protect) if t_protect else 0):>11.2f}{np.median(t_series):>16.2f}"
              f"{np.median(t_audit):>9.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--persons", type=int, nargs="+", default=[20000])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--releases", type=int, default=30, help="consecutive daily releases (the last ones)")
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 5))
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--products", nargs="+", default=["vaccine_coverage"])
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "series")
    args = ap.parse_args()
    last = args.start + timedelta(days=args.days - 1)
    dates = [last - timedelta(days=k) for k in reversed(range(min(args.releases, args.days)))]
    for persons in args.persons:
        print(f"== {persons:,} persons", flush=True)
        home = prepare(persons, args.days, args.start, args.seed, args.workdir)
        for product in args.products:
            run_product(home, product, dates)


if __name__ == "__main__":
    main()
