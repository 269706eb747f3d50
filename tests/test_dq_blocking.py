"""A blocking data-quality failure, end to end through `stat19 run`: the day's releases are
withheld, earlier releases and all loaded data stay intact, a later clean delivery publishes again."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb

from kit import csv_bytes, fnrs, jsonl_bytes, write_delivery
from stat19.cli import EXIT_DQ_BLOCKED, main
from test_ingest import vacc

RESIDENTS, STRANGERS = fnrs(60, seed=23)[:30], fnrs(60, seed=23)[30:]
FIRST = date(2026, 1, 5)


def day(n: int) -> str:
    return (FIRST + timedelta(days=n)).isoformat()


def sysvak(landing: Path, n: int, people: list[str]) -> None:
    records = [vacc(0, vaccination_id=f"v{n}-{i}", fnr=p, vaccination_date=day(n),
                    registered_at=f"{day(n)}T10:00:00+01:00") for i, p in enumerate(people)]
    write_delivery(landing, "sysvak", day(n), {"part-0001.jsonl": (jsonl_bytes(records), len(records))})


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_blocking_failure_withholds_the_day_and_a_clean_day_publishes_again(tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "test xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    landing, home = tmp_path / "landing", tmp_path / "home"
    persons = [[p, "1960-03-03", "kvinne", "0301", "bosatt", "2000-01-01"] for p in RESIDENTS]
    write_delivery(landing, "freg", day(0), {
        "persons.csv": (csv_bytes(["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"], persons), 30),
        "id_changes.csv": (csv_bytes(["old_id", "new_id", "change_date", "reason"], []), 0)})
    for n in range(8):
        sysvak(landing, n, RESIDENTS[:25])  # everyone links: a linkage rate of 100 %
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    published = home / "published" / "vaccine_coverage"
    assert (published / day(7) / "data.parquet").exists()
    before = tree(home / "published")

    # Day 8: every vaccination names a person the population register does not know.
    sysvak(landing, 8, STRANGERS[:25])
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == EXIT_DQ_BLOCKED
    assert not (published / day(8)).exists()                      # the day's releases are withheld
    assert tree(home / "published") == before                     # earlier releases untouched
    con = duckdb.connect(str(home / "vault" / "warehouse.duckdb"), read_only=True)
    try:                                                          # and nothing loaded is lost
        assert con.execute("SELECT count(*) FROM sysvak_vaccinations WHERE _delivery_date = ?", [day(8)]).fetchone()[0] == 25
    finally:
        con.close()
    report = json.loads((home / "reports" / "dq" / f"{day(8)}.json").read_text())
    failed = [c for c in report["CheckResults"] if c["status"] == "fail" and c["severity"] == "blocking"]
    assert [c["checkName"] for c in failed] == ["linkage_rate_drop"]
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "blocked"

    # Day 9: a clean delivery publishes again.
    sysvak(landing, 9, RESIDENTS[:25])
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    assert (published / day(9) / "data.parquet").exists()
    catalog = json.loads((home / "published" / "catalog.json").read_text())
    assert day(9) in json.dumps(catalog) and day(8) not in json.dumps(catalog)
