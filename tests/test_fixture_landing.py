"""The committed sample landing, end to end: every row accounted for, every fault found."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import polars as pl
import pytest

from stat19.cli import main

FIXTURE = Path(__file__).parent.parent / "data_fixtures" / "landing"
TRUTH = json.loads((FIXTURE / "_synth_truth.json").read_text())
# how each delivery-level fault is named in the rejection message
FAULT_MESSAGES = {
    "sha256_mismatch": "does not match the manifest",
    "row_count_mismatch": "but the manifest says",
    "missing_column": "missing required column",
    "undecodable_bytes": "do not decode",
    "unlisted_file": "is not listed in the manifest",
}

# under `make test` (pytest-xdist, --dist loadgroup) this file runs on one worker, which builds
# its module fixture (home) once
pytestmark = pytest.mark.xdist_group("test_fixture_landing")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("fixture") / "home"
    assert main(["run", "--landing", str(FIXTURE), "--home", str(home)]) == 0
    return home


@pytest.fixture(scope="module")
def deliveries(home) -> dict[tuple[str, str], dict]:
    rows = pl.read_csv(home / "reports" / "deliveries.csv", infer_schema=False).to_dicts()
    latest = {(r["source"], r["delivery_date"]): r for r in rows}
    assert len(latest) == len(rows), "one attempt per delivery in a single run"
    return latest


def test_every_row_of_every_loaded_delivery_is_accounted_for(deliveries):
    expected = {(s, d): n for s, by_day in TRUTH["rows"].items() for d, n in by_day.items()}
    faulty = {(f["source"], f["delivery_date"]) for f in TRUTH["delivery_faults"]}
    assert set(deliveries) == set(expected)
    for key, row in deliveries.items():
        if key in faulty:
            continue
        assert row["status"] == "loaded", (key, row["message"])
        rows_in = int(row["rows_in"])
        assert rows_in == expected[key], key
        assert rows_in == int(row["rows_loaded"]) + int(row["rows_quarantined"]) + int(row["rows_duplicate"])


@pytest.mark.parametrize("fault", TRUTH["delivery_faults"], ids=lambda f: f["kind"])
def test_every_delivery_fault_is_found_and_named(deliveries, fault):
    row = deliveries[(fault["source"], fault["delivery_date"])]
    if fault["kind"] == "missing_manifest":
        assert row["status"] == "ignored"
    else:
        assert row["status"] == "rejected"
        assert FAULT_MESSAGES[fault["kind"]] in row["message"]
        assert fault["file"] in row["message"] or fault["kind"] == "unlisted_file"
        assert row["rows_loaded"] == "0"


def test_quarantine_and_duplicates_match_what_was_broken(home, deliveries):
    con = duckdb.connect(str(home / "vault" / "warehouse.duckdb"), read_only=True)
    try:
        found = Counter({(s, str(d), r): n for s, d, r, n in con.execute(
            "SELECT source, delivery_date, reason, count(*) FROM quarantine GROUP BY ALL").fetchall()})
    finally:
        con.close()
    faulty = {(f["source"], f["delivery_date"]) for f in TRUTH["delivery_faults"]}
    expected = Counter()
    duplicates = Counter()
    for source, by_day in TRUTH["row_faults"].items():
        for day, kinds in by_day.items():
            if (source, day) in faulty:
                continue
            for kind, n in kinds.items():
                if kind == "duplicate_row":
                    duplicates[(source, day)] += n
                elif n:
                    expected[(source, day, kind)] += n
    assert sum(expected.values()) > 100
    assert found == expected
    for (source, day), n in duplicates.items():
        assert int(deliveries[(source, day)]["rows_duplicate"]) == n


def test_quarantine_report_sums_the_quarantined_rows(home, deliveries):
    summary = pl.read_csv(home / "reports" / "quarantine.csv")
    assert summary["rows"].sum() == sum(int(r["rows_quarantined"]) for r in deliveries.values() if r["status"] == "loaded")
