"""Benchmark stat19.disclosure on a national-scale vaccine_coverage-shaped release.

Synthetic counts on the real structure: the 2024 population by kommune x age x sex (SSB, shipped
in stat19/reference) grouped into the product's age groups; vaccinated_ever / vaccinated_season
are binomial draws with a plausible coverage per vaccine group and age group (season <= ever).
Totals (age, sex, fylke, national) are sums, as the product defines them; vaccine_group has no
total. 4 groups x 9 ages x 3 sexes x (1 + 15 + 357) units = 40,284 cells.

``--persons N`` thins the population to about N persons (binomially, cell by cell), which gives
the sparse tables of the small demos: most kommune cells are then zeros or small counts.
``--baseline REV`` runs the stat19 package as it was at git revision REV (in its own process,
exported with ``git archive``) on the same release, side by side, to compare time and hidden cells.

    python benchmarks/bench_disclosure.py [--seed 1] [--persons N] [--baseline REV]
        [--groups covid19 influenza ...] [--no-audit]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from importlib import resources
from pathlib import Path

import numpy as np
import polars as pl

from stat19.disclosure import CountMeasure, Dimension

AGE_LABELS = ["0-4", "5-11", "12-17", "18-44", "45-64", "65-74", "75-84", "85+"]
AGE_UPPER = [4, 11, 17, 44, 64, 74, 84]  # last age of each group but 85+
# coverage per age group (ever, season): rough orders of magnitude, synthetic only
COVERAGE = {
    "covid19": ([0.002, 0.03, 0.45, 0.75, 0.85, 0.93, 0.95, 0.93],
                [0.0005, 0.002, 0.005, 0.03, 0.12, 0.45, 0.60, 0.55]),
    "influenza": ([0.05, 0.08, 0.10, 0.35, 0.55, 0.80, 0.88, 0.87],
                  [0.02, 0.03, 0.03, 0.08, 0.20, 0.55, 0.68, 0.65]),
    "pneumococcal": ([0.93, 0.97, 0.96, 0.05, 0.08, 0.30, 0.42, 0.40],
                     [0.45, 0.001, 0.001, 0.004, 0.01, 0.06, 0.08, 0.06]),
    "pertussis": ([0.90, 0.97, 0.97, 0.88, 0.55, 0.20, 0.10, 0.05],
                  [0.40, 0.10, 0.08, 0.02, 0.002, 0.001, 0.001, 0.0005]),
}
MEASURES = [
    CountMeasure("population", "public"),
    CountMeasure("vaccinated_ever", "share", "population"),
    CountMeasure("vaccinated_season", "share", "population"),
]
COUNTS = [m.name for m in MEASURES]
KEYS = ["geo_code", "vaccine_group", "age_group", "sex"]


def _reference(name: str, **schema: type[pl.DataType]) -> pl.DataFrame:
    with resources.as_file(resources.files("stat19") / "reference" / name) as path:
        return pl.read_csv(path, schema_overrides=schema)


def build(seed: int, groups: list[str], persons: int | None = None) -> tuple[pl.DataFrame, list[Dimension]]:
    leaf, rng = leaf_table(seed, groups, persons)
    return roll_up_release(leaf)


def leaf_table(seed: int, groups: list[str], persons: int | None = None
               ) -> tuple[pl.DataFrame, np.random.Generator]:
    """The kommune x age group x sex x vaccine group counts (no totals), and the generator that
    drew them (benchmarks/bench_series.py goes on drawing the next days from it)."""
    pop = _reference("kommune_population_age_sex_2024.csv", kommune_nr=pl.String)
    kommuner = _reference("kommuner_2024.csv", kommune_nr=pl.String, fylke_nr=pl.String)
    age_group = np.asarray(AGE_LABELS)[np.searchsorted(AGE_UPPER, pop["age"].to_numpy())]
    leaf = (
        pop.with_columns(pl.Series("age_group", age_group))
        .group_by(pl.col("kommune_nr").alias("geo_code"), "age_group", "sex")
        .agg(pl.col("population").sum())
        .sort("geo_code", "age_group", "sex")
    )
    rng = np.random.default_rng(seed)
    if persons is not None:  # a smaller country with the same shape
        share = min(persons / leaf["population"].sum(), 1.0)
        leaf = leaf.with_columns(pl.Series("population", rng.binomial(leaf["population"].to_numpy(), share)))
    age = leaf["age_group"].replace_strict(AGE_LABELS, list(range(len(AGE_LABELS)))).to_numpy()
    n = leaf["population"].to_numpy()
    frames = []
    for g in groups:
        ever_p, season_p = (np.asarray(p)[age] for p in COVERAGE[g])
        ever = rng.binomial(n, ever_p)
        season = rng.binomial(ever, np.minimum(season_p / ever_p, 1.0))
        frames.append(leaf.with_columns(pl.lit(g).alias("vaccine_group"),
                                        pl.Series("vaccinated_ever", ever),
                                        pl.Series("vaccinated_season", season)).select(*KEYS, *COUNTS))
    return pl.concat(frames), rng


def roll_up_release(table: pl.DataFrame) -> tuple[pl.DataFrame, list[Dimension]]:
    """The release of leaf counts: every total (age, sex, fylke, national) added, and its dimensions."""
    kommuner = _reference("kommuner_2024.csv", kommune_nr=pl.String, fylke_nr=pl.String)

    def roll_up(t: pl.DataFrame, col: str, code: pl.Expr) -> pl.DataFrame:
        return t.with_columns(code.alias(col)).group_by(KEYS).agg(pl.col(COUNTS).sum()).select(t.columns)

    for col in ["sex", "age_group"]:  # every combination of totals
        table = pl.concat([table, roll_up(table, col, pl.lit("total"))])
    fylke_of = dict(zip(kommuner["kommune_nr"], kommuner["fylke_nr"], strict=True))
    fylke = roll_up(table, "geo_code", pl.col("geo_code").replace_strict(fylke_of))
    national = roll_up(fylke, "geo_code", pl.lit("NO"))
    level = (pl.when(pl.col("geo_code") == "NO").then(pl.lit("national"))
             .when(pl.col("geo_code").str.len_chars() == 2).then(pl.lit("fylke"))
             .otherwise(pl.lit("kommune")))
    release = (pl.concat([national, fylke, table]).with_columns(level.alias("geo_level"))
               .select("geo_level", *KEYS, *COUNTS).sort("vaccine_group", "geo_code", "age_group", "sex"))
    dims = [
        Dimension("geo_code", fylke_of | {f: "NO" for f in fylke_of.values()}),
        Dimension("vaccine_group"),
        Dimension("age_group", {a: "total" for a in AGE_LABELS}),
        Dimension("sex", {"male": "total", "female": "total"}),
    ]
    return release, dims


def run_baseline(rev: str, argv: list[str]) -> None:
    """This benchmark, same arguments, on the stat19 package as it was at git revision rev (exported
    to a temporary folder and run in its own process, so the two versions never mix)."""
    import os
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "archive", rev, "stat19"], cwd=root, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        env = {**os.environ, "PYTHONPATH": tmp}
        subprocess.run([sys.executable, __file__, *argv, "--label", f"baseline {rev}"], env=env, check=True)


def run(engine: types.ModuleType, label: str, release: pl.DataFrame, dims: list, audit_too: bool) -> None:
    """Suppress (and audit) the release with one version of the module; print the figures."""
    measures = [engine.CountMeasure(m.name, m.rule, m.denominator) for m in MEASURES]
    dims = [engine.Dimension(d.name, d.parent) for d in dims]
    s = engine.Stats()
    t0, c0 = time.perf_counter(), time.process_time()
    out = engine.suppress(release, dims, measures, stats=s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert out.select(release.columns).equals(release), "suppress changed values"
    print(f"[{label}]")
    for m in measures[1:]:
        hidden = out[f"{m.name}_hidden"].to_numpy()
        secondary = hidden & ~engine.primary_mask(out, m)
        zeros = int((secondary & (out[m.name] == 0).to_numpy()).sum())
        print(f"  {m.name:<22}primary {s.primary[m.name]:>6}   hidden {s.hidden[m.name]:>6} "
              f"({s.hidden[m.name] / release.height:.2%} of cells)   secondary {int(secondary.sum()):>5} "
              f"(zeros {zeros})")
    # CPU seconds too: wall time on a shared 2-core machine depends on the neighbours
    print(f"  suppress seconds      {wall:.2f} wall, {cpu:.2f} CPU   "
          f"(LPs solved {s.lps}, repair rounds {s.repair_rounds})")
    if audit_too:
        a = engine.Stats()
        t0, c0 = time.perf_counter(), time.process_time()
        findings = engine.audit(out, dims, measures, stats=a)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"  audit seconds         {wall:.2f} wall, {cpu:.2f} CPU   (LPs solved {a.lps})   "
              f"findings {len(findings)}")
        for f in findings[:5]:
            print("    ", f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--persons", type=int, help="thin the population to about this many persons")
    ap.add_argument("--baseline", metavar="REV", help="also run the stat19 package of this git revision")
    ap.add_argument("--label", default="this version", help=argparse.SUPPRESS)
    ap.add_argument("--groups", nargs="+", default=list(COVERAGE), choices=list(COVERAGE))
    ap.add_argument("--no-audit", action="store_true", help="skip the independent audit")
    args = ap.parse_args()

    release, dims = build(args.seed, args.groups, args.persons)
    print(f"cells {release.height}, persons {release.filter(pl.col('geo_code') == 'NO', pl.col('age_group') == 'total', pl.col('sex') == 'total')['population'][0]:,}")
    if args.baseline:
        argv = sys.argv[1:]
        k = argv.index("--baseline")
        run_baseline(args.baseline, argv[:k] + argv[k + 2:])
    from stat19 import disclosure
    run(disclosure, args.label, release, dims, not args.no_audit)


if __name__ == "__main__":
    main()
