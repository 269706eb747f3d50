"""vaccine_coverage computed from a small hand-made landing through `stat19 run`; every cell checked.

30 women born 3 March 1960 live in Oslo (0301); 25 of them had an influenza dose in January 2026,
and 5 persons unknown to the Folkeregister were vaccinated too (not members of any population,
so they count nowhere: vaccinated is a share of population). On R = 2026-01-09 they are 65.
"""

from __future__ import annotations


import polars as pl

from kit import csv_bytes, fnrs, jsonl_bytes, write_delivery
from stat19.cli import main
from test_ingest import vacc

PEOPLE = fnrs(35, seed=31)
R = "2026-01-09"


def test_every_cell_of_vaccine_coverage_from_a_landing(tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "test xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    landing, home = tmp_path / "landing", tmp_path / "home"
    residents = [[p, "1960-03-03", "kvinne", "0301", "bosatt", "2000-01-01"] for p in PEOPLE[:30]]
    write_delivery(landing, "freg", "2026-01-05", {
        "persons.csv": (csv_bytes(["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"], residents), 30),
        "id_changes.csv": (csv_bytes(["old_id", "new_id", "change_date", "reason"], []), 0)})
    doses = [vacc(0, vaccination_id=f"v{i}", fnr=p, vaccination_date="2026-01-06",
                  registered_at="2026-01-08T10:00:00+01:00") for i, p in enumerate(PEOPLE[:25] + PEOPLE[30:])]
    write_delivery(landing, "sysvak", "2026-01-08", {"part-0001.jsonl": (jsonl_bytes(doses), len(doses))})
    write_delivery(landing, "sysvak", R, {"part-0001.jsonl": (jsonl_bytes([]), 0)})
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0

    df = pl.read_parquet(home / "published" / "vaccine_coverage" / R / "data.parquet")
    # 4 vaccine groups x 9 age groups x 3 sexes x (1 + 15 + 357) geographic units
    assert df.height == 4 * 9 * 3 * (1 + 15 + 357)
    assert df.select(pl.col("^.*_flag$")).to_series(0).is_in(["", None]).all()  # nothing needs hiding

    ours = (pl.col("geo_code").is_in(["NO", "03", "0301"]) & pl.col("age_group").is_in(["65-74", "total"])
            & pl.col("sex").is_in(["female", "total"]))
    influenza = pl.col("vaccine_group") == "influenza"
    expected = df.select(
        pl.when(ours).then(30).otherwise(0).alias("population"),
        pl.when(ours & influenza).then(25).otherwise(0).alias("vaccinated_ever"),
        pl.when(ours & influenza).then(25).otherwise(0).alias("vaccinated_season"),
        pl.when(ours & influenza).then(83.3).when(ours).then(0.0).otherwise(None).alias("coverage_ever_pct"),
        pl.when(ours & influenza).then(83.3).when(ours).then(0.0).otherwise(None).alias("coverage_season_pct"),
    )
    for column in expected.columns:
        got, want = df[column].cast(pl.Float64), expected[column].cast(pl.Float64)
        mismatches = df.filter(~got.eq_missing(want)).select("geo_code", "vaccine_group", "age_group", "sex", column)
        assert mismatches.height == 0, f"{column}:\n{mismatches}"
    assert set(df.filter(pl.col("geo_level") == "kommune")["geo_code"]) >= {"0301", "4601", "5001"}
