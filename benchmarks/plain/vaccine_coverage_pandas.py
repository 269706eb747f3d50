"""vaccine_coverage's counts for one reference date R, in plain pandas, from the raw landing.

    python benchmarks/plain/vaccine_coverage_pandas.py --landing L --date R --out counts.parquet

The same counts and the same simplifications as vaccine_coverage_polars.py (see there): the
population (status bosatt on R) by kommune x age group x sex, persons of it vaccinated ever per
vaccine group, fylke and national totals, no suppression, no identity chains or row validation.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import pandas as pd

AGE_BINS = [0, 5, 12, 18, 45, 65, 75, 85, 200]
AGE_LABELS = ["0-4", "5-11", "12-17", "18-44", "45-64", "65-74", "75-84", "85+"]
GROUPS = ["covid19", "influenza", "pneumococcal", "pertussis"]


def read_all(landing: Path, source: str, pattern: str, R: date, read) -> pd.DataFrame:
    """Every file of a source's deliveries up to R that have a manifest (else still being written)."""
    frames = []
    for folder in sorted((landing / source).iterdir()):
        if folder.name <= R.isoformat() and (folder / "_manifest.json").exists():
            for path in sorted(p for p in folder.glob(pattern) if p.stat().st_size > 0):
                try:
                    frames.append(read(path).assign(delivery=folder.name))
                except Exception as exc:  # a corrupt file: left out, as a person would
                    print(f"skipped {path}: {type(exc).__name__}", file=sys.stderr)
    return pd.concat(frames, ignore_index=True)


def vaccine_group(code: pd.Series) -> pd.Series:
    group = pd.Series(None, index=code.index, dtype="object")
    group[code.str.startswith("J07AJ", na=False) | code.isin(["J07CA02", "J07CA06", "J07CA09"])] = "pertussis"
    group[code.str.startswith("J07AL", na=False)] = "pneumococcal"
    group[code.str.startswith("J07BB", na=False)] = "influenza"
    group[code.str.startswith("J07BN", na=False) | (code == "J07BX03")] = "covid19"
    return group


def counts(landing: Path, R: date) -> pd.DataFrame:
    persons = read_all(landing, "freg", "persons.csv", R,
                       lambda p: pd.read_csv(p, sep=";", dtype=str, encoding_errors="replace"))
    persons["status_date"] = pd.to_datetime(persons["status_date"], errors="coerce")
    persons = persons[persons["status_date"] <= pd.Timestamp(R)].dropna(subset=["fnr", "kommune_nr"])  # incomplete: left out
    latest = persons.sort_values(["status_date", "delivery"]).groupby("fnr").tail(1)  # each person's state on R
    pop = latest[latest["status"] == "bosatt"].copy()
    birth = pd.to_datetime(pop["birth_date"], errors="coerce")
    not_yet = (birth.dt.month * 100 + birth.dt.day) > R.month * 100 + R.day
    pop["age"] = R.year - birth.dt.year - not_yet.astype(int)
    pop["sex"] = pop["kjoenn"].map({"mann": "male", "kvinne": "female"})
    pop = pop[(pop["age"] >= 0) & pop["sex"].notna()]
    pop["age_group"] = pd.cut(pop["age"], AGE_BINS, right=False, labels=AGE_LABELS).astype(str)
    pop = pop.rename(columns={"kommune_nr": "kommune"})[["fnr", "kommune", "age_group", "sex"]]

    doses = read_all(landing, "sysvak", "*.jsonl", R, lambda p: pd.read_json(p, lines=True, dtype=False))
    doses["registered_at"] = pd.to_datetime(doses["registered_at"], utc=True, errors="coerce")
    doses = doses.sort_values("registered_at", kind="stable").groupby("vaccination_id").tail(1)  # a delete withdraws it
    doses = doses[(doses["action"] != "delete")
                  & (pd.to_datetime(doses["vaccination_date"], errors="coerce") <= pd.Timestamp(R))]
    doses = doses.assign(vaccine_group=vaccine_group(doses["vaccine_code"]))[["fnr", "vaccine_group"]]
    vacc = doses.dropna().drop_duplicates().merge(pop, on="fnr")
    keys = ["kommune", "age_group", "sex"]
    vacc = vacc.groupby(["vaccine_group", *keys]).size().rename("vaccinated_ever").reset_index()
    cells = pop.groupby(keys).size().rename("population").reset_index()
    kommune = (cells.merge(pd.DataFrame({"vaccine_group": GROUPS}), how="cross")
               .merge(vacc, on=["vaccine_group", *keys], how="left").fillna({"vaccinated_ever": 0}))
    kommune["vaccinated_ever"] = kommune["vaccinated_ever"].astype("int64")
    kommune["fylke"] = kommune["kommune"].str[:2]
    by = ["vaccine_group", "age_group", "sex"]
    sums = ["population", "vaccinated_ever"]
    out = pd.concat([
        kommune.assign(geo_level="kommune", geo_code=kommune["kommune"]),
        kommune.groupby(["fylke", *by])[sums].sum().reset_index().assign(geo_level="fylke").rename(columns={"fylke": "geo_code"}),
        kommune.groupby(by)[sums].sum().reset_index().assign(geo_level="national", geo_code="NO"),
    ], ignore_index=True)
    return out[["geo_level", "geo_code", *by, *sums]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--date", type=date.fromisoformat, required=True, help="reference date R")
    parser.add_argument("--out", type=Path, required=True, help="Parquet file to write")
    args = parser.parse_args()
    out = counts(args.landing, args.date)
    out.to_parquet(args.out, index=False)
    print(f"{len(out):,} cells -> {args.out}")


if __name__ == "__main__":
    main()
