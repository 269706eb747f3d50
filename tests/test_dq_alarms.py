"""Through `stat19 run` on synthetic landings: each injected defect (stat19/synth/defects.py)
blocks its date (exit 3, nothing published for it, earlier releases byte for byte unchanged), a register broken in every row from its first
delivery blocks every day without any history, and clean landings of seeds and sizes other than
the demo's publish.

One landing is built and run (with its releases) through the day before the last once per
session; each defect goes into a copy of it. 15 days give every check used its history. The size
is the smallest at which every defect can be seen on the last day: the sex codes are checked on
the population register's daily changes, which need at least 4 person rows on the day; at 10,000
persons a day has 2 to 9 (seed 5: 6 on the last day), at 20,000 persons 4 to 20 (see
dq_checks/README.md, "History and counts each check needs").
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from stat19.cli import EXIT_DQ_BLOCKED, EXIT_OK, main
from stat19.synth.defects import DEFECTS, all_quarantined
from test_dq_blocking import tree

KEY = "test key for the defect landings, 32 bytes or more"
START, DAYS, PERSONS, SEED = date(2026, 1, 5), 15, 10000, 5
LAST = START + timedelta(days=DAYS - 1)

# The check that exists for each defect; others may fail too.
BLOCKED_BY = {
    "unknown_identifiers": "linkage_rate_drop",
    "half_rows": "delivery_volume",
    "date_shifted_a_year": "late_share",
    "all_quarantined": "quarantine_share",
    "resent_yesterday": "resent_share",
    "sex_codes_swapped": "sex_matches_identifier",
}


def synth(landing: Path, persons: int, days: int, seed: int, *options: str) -> None:
    assert main(["synth", "--persons", str(persons), "--start", START.isoformat(), "--days", str(days),
                 "--seed", str(seed), "--out", str(landing), *options]) == EXIT_OK


# Data quality decides before any product is computed, so two cheap products stand for all seven
# (the same engine and publication) where only blocking is at stake.
CHEAP = ["--product", "sari_weekly", "--product", "mortality_weekly"]


def run(landing: Path, home: Path, *through: str, every_product: bool = False) -> int:
    return main(["run", "--landing", str(landing), "--home", str(home),
                 *(("--through", *through) if through else ()), *([] if every_product else CHEAP)])


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> Path:
    """A landing of DAYS days, run (with its releases) through the day before the last."""
    root = tmp_path_factory.mktemp("defects")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STAT19_PSEUDONYM_KEY", KEY)
        synth(root / "landing", PERSONS, DAYS, SEED)
        assert run(root / "landing", root / "home", (LAST - timedelta(days=1)).isoformat()) == EXIT_OK
    return root


def test_defects_are_listed_with_their_checks():
    assert set(DEFECTS) == set(BLOCKED_BY)


# under `make test` (pytest-xdist, --dist loadgroup) the tests of `history` stay on one worker,
# which builds it once; the other tests of this file go wherever a worker is free
@pytest.mark.xdist_group("dq_alarms_history")
@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_injected_defect_blocks_its_date(history, defect, tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", KEY)
    landing, home = tmp_path / "landing", tmp_path / "home"
    shutil.copytree(history / "landing", landing)
    shutil.copytree(history / "home", home)
    published = home / "published"
    before = tree(published)
    assert any(f"/{LAST - timedelta(days=1)}/" in name for name in before)  # the earlier releases exist

    DEFECTS[defect](landing, LAST)
    assert run(landing, home) == EXIT_DQ_BLOCKED
    assert tree(published) == before                                     # nothing new, nothing changed
    assert not [p for p in published.rglob(LAST.isoformat())]            # nothing for the date
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "blocked"
    report = json.loads((home / "reports" / "dq" / f"{LAST}.json").read_text())
    failed = {c["checkName"] for c in report["CheckResults"] if c["status"] == "fail" and c["severity"] == "blocking"}
    assert BLOCKED_BY[defect] in failed


@pytest.mark.parametrize("seed, persons, days, every_product", [(7, 3000, 15, False), (23, 2000, 10, True)])
def test_a_clean_landing_of_another_seed_and_size_publishes(seed, persons, days, every_product, tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", KEY)
    landing, home = tmp_path / "landing", tmp_path / "home"
    synth(landing, persons, days, seed)
    assert run(landing, home, every_product=every_product) == EXIT_OK
    last = (START + timedelta(days=days - 1)).isoformat()
    releases = [p for p in (home / "published").iterdir() if p.is_dir()]
    assert releases and all((p / last / "metadata.json").exists() for p in releases)
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "ok"


def test_a_register_whose_every_row_is_broken_from_the_first_day_blocks_every_day(tmp_path, monkeypatch):
    """Every kpr row broken from the first delivery on: there is no history for quarantine_share's
    rate test (7 earlier deliveries), and then a history of 100 %, yet each day blocks (a delivery
    of 10 rows or more of which none loaded) and nothing is ever published. Run day by day, as the
    06:00 schedule would; 1,000 persons give kpr 14 to 17 rows a day (seed 5)."""
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", KEY)
    landing, home = tmp_path / "landing", tmp_path / "home"
    days = [START, START + timedelta(days=1)]
    # no other fault, so that only the broken register can block
    synth(landing, 1000, len(days), SEED, "--error-rate", "0", "--no-delivery-faults")
    for day in days:
        all_quarantined(landing, "kpr", day)
    for day in days:
        assert run(landing, home, day.isoformat()) == EXIT_DQ_BLOCKED, day
        assert tree(home / "published") == {}                            # nothing published, ever
        assert json.loads((home / "reports" / "status.json").read_text())["status"] == "blocked"
        report = json.loads((home / "reports" / "dq" / f"{day}.json").read_text())
        failed = [c for c in report["CheckResults"] if c["status"] == "fail" and c["severity"] == "blocking"]
        assert [(c["suite"], c["checkName"]) for c in failed] == [("kpr", "quarantine_share")], failed
        assert "every one of the delivery's" in failed[0]["details"][0]
