"""vaccine_coverage's counts for one reference date R, in plain polars, from the raw landing.

    python benchmarks/plain/vaccine_coverage_polars.py --landing L --date R --out counts.parquet

What an analyst would write without the pipeline: the population (Folkeregister status bosatt on
R) by kommune x age group x sex, and persons of it with at least one non-deleted dose of each
vaccine group dated on or before R; fylke and national totals; no suppression. Simpler than the
engine on purpose: no identity chains (D-number -> fnr), no row validation or quarantine, no
checksums, kommune codes as delivered. A file that cannot be read is skipped with a message.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import polars as pl

AGE_BANDS = [(85, "85+"), (75, "75-84"), (65, "65-74"), (45, "45-64"), (18, "18-44"), (12, "12-17"), (5, "5-11"), (0, "0-4")]


def read_all(landing: Path, source: str, pattern: str, R: date, read) -> pl.DataFrame:
    """Every file of a source's deliveries up to R that have a manifest (else still being written)."""
    frames = []
    for folder in sorted((landing / source).iterdir()):
        if folder.name <= R.isoformat() and (folder / "_manifest.json").exists():
            for path in sorted(p for p in folder.glob(pattern) if p.stat().st_size > 0):
                try:
                    frames.append(read(path).with_columns(delivery=pl.lit(folder.name)))
                except Exception as exc:  # a corrupt file: left out, as a person would
                    print(f"skipped {path}: {type(exc).__name__}", file=sys.stderr)
    return pl.concat(frames, how="diagonal_relaxed")


def counts(landing: Path, R: date) -> pl.DataFrame:
    persons = read_all(landing, "freg", "persons.csv", R,
                       lambda p: pl.read_csv(p, separator=";", infer_schema=False, encoding="utf8-lossy"))
    birth = pl.col("birth_date").str.to_date(strict=False)
    not_yet = (birth.dt.month().cast(pl.Int32) * 100 + birth.dt.day()) > R.month * 100 + R.day  # (month is Int8)
    population = (
        persons.with_columns(pl.col("status_date").str.to_date(strict=False))
        .filter(pl.col("status_date") <= R)
        .drop_nulls(["fnr", "kommune_nr"])  # incomplete rows: left out
        .sort("status_date", "delivery", maintain_order=True)
        .group_by("fnr").last()  # each person's latest state on R
        .filter(pl.col("status") == "bosatt")
        .with_columns(age=R.year - birth.dt.year() - not_yet.cast(pl.Int32),
                      sex=pl.col("kjoenn").replace_strict({"mann": "male", "kvinne": "female"}, default=None))
        .filter(pl.col("age") >= 0, pl.col("sex").is_not_null())
        .with_columns(age_group=pl.coalesce(pl.when(pl.col("age") >= lo).then(pl.lit(band)) for lo, band in AGE_BANDS))
        .select("fnr", kommune=pl.col("kommune_nr"), age_group="age_group", sex="sex")
    )
    doses = read_all(landing, "sysvak", "*.jsonl", R, lambda p: pl.read_ndjson(p, infer_schema_length=None))
    code = pl.col("vaccine_code")
    group = (pl.when(code.str.starts_with("J07BN") | (code == "J07BX03")).then(pl.lit("covid19"))
             .when(code.str.starts_with("J07BB")).then(pl.lit("influenza"))
             .when(code.str.starts_with("J07AL")).then(pl.lit("pneumococcal"))
             .when(code.str.starts_with("J07AJ") | code.is_in(["J07CA02", "J07CA06", "J07CA09"])).then(pl.lit("pertussis")))
    vaccinated = (
        doses.with_columns(pl.col("registered_at").str.to_datetime(time_zone="UTC", strict=False))
        .sort("registered_at", maintain_order=True).group_by("vaccination_id").last()  # a delete withdraws the registration
        .filter(pl.col("action") != "delete",
                pl.col("vaccination_date").str.to_date(strict=False) <= R)
        .select("fnr", vaccine_group=group).drop_nulls().unique()
        .join(population, on="fnr")
        .group_by("vaccine_group", "kommune", "age_group", "sex").agg(vaccinated_ever=pl.len())
    )
    cells = population.group_by("kommune", "age_group", "sex").agg(population=pl.len())
    groups = pl.DataFrame({"vaccine_group": ["covid19", "influenza", "pneumococcal", "pertussis"]})
    kommune = (cells.join(groups, how="cross")
               .join(vaccinated, on=["vaccine_group", "kommune", "age_group", "sex"], how="left")
               .with_columns(pl.col("vaccinated_ever").fill_null(0)))
    keys, sums = ["vaccine_group", "age_group", "sex"], [pl.col("population").sum(), pl.col("vaccinated_ever").sum()]
    return pl.concat([
        kommune.select("vaccine_group", "age_group", "sex", "population", "vaccinated_ever",
                       geo_level=pl.lit("kommune"), geo_code="kommune"),
        kommune.group_by(keys, geo_code=pl.col("kommune").str.slice(0, 2)).agg(sums).with_columns(geo_level=pl.lit("fylke")),
        kommune.group_by(keys).agg(sums).with_columns(geo_level=pl.lit("national"), geo_code=pl.lit("NO")),
    ], how="diagonal").select("geo_level", "geo_code", *keys, "population", "vaccinated_ever")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="reference date R")
    parser.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    args = parser.parse_args()
    out = counts(args.landing, args.date)
    out.write_parquet(args.out)
    print(f"{out.height:,} cells -> {args.out}")


if __name__ == "__main__":
    main()
