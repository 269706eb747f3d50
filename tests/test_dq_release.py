"""Through `stat19 run`: a waiver releases exactly one withheld date, and a rejected delivery is the
first failure of its date's report and a failed, partitioned asset check in Dagster."""

from __future__ import annotations

import json
from pathlib import Path

from kit import write_delivery
from stat19.cli import EXIT_DQ_BLOCKED, EXIT_OK, EXIT_USAGE, main
from stat19.pipeline import dagster_instance
from stat19.paths import Home
from test_dq_blocking import RESIDENTS, STRANGERS, day, sysvak
from kit import csv_bytes


def population(landing: Path) -> None:
    persons = [[p, "1960-03-03", "kvinne", "0301", "bosatt", "2000-01-01"] for p in RESIDENTS]
    write_delivery(landing, "freg", day(0), {
        "persons.csv": (csv_bytes(["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"], persons), 30),
        "id_changes.csv": (csv_bytes(["old_id", "new_id", "change_date", "reason"], []), 0)})


def eight_clean_days(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A landing of the population and eight days of SYSVAK deliveries that all link."""
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "test xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    landing, home = tmp_path / "landing", tmp_path / "home"
    population(landing)
    for n in range(8):
        sysvak(landing, n, RESIDENTS[:25])
    return landing, home


def report(home: Path, n: int) -> dict:
    return json.loads((home / "reports" / "dq" / f"{day(n)}.json").read_text())


def run(landing: Path, home: Path) -> int:
    return main(["run", "--landing", str(landing), "--home", str(home)])


def test_a_waiver_releases_exactly_one_date(tmp_path, monkeypatch):
    landing, home = eight_clean_days(tmp_path, monkeypatch)
    assert run(landing, home) == EXIT_OK
    sysvak(landing, 8, STRANGERS[:25])  # nobody the population register knows: blocked
    assert run(landing, home) == EXIT_DQ_BLOCKED
    published = home / "published" / "vaccine_coverage"
    assert not (published / day(8)).exists()

    # a check that did not fail, a date that was not withheld, an unknown name: nothing released
    args = ["waive", "--home", str(home), "--by", "statistician"]
    assert main(args + ["--date", day(8), "--check", "no_such_check", "--reason", "x"]) == EXIT_USAGE
    assert main(args + ["--date", day(8), "--check", "person_present", "--reason", "not the one"]) == EXIT_OK
    assert run(landing, home) == EXIT_DQ_BLOCKED
    assert main(args + ["--date", day(8), "--check", "linkage_rate_drop",
                        "--reason", "a vaccination campaign among newcomers; checked with SYSVAK"]) == EXIT_OK
    assert run(landing, home) == EXIT_OK
    assert (published / day(8) / "data.parquet").exists()
    meta = json.loads((published / day(8) / "metadata.json").read_text())
    waivers = {w["check"]: w for w in meta["dq_waivers"]}
    assert waivers["linkage_rate_drop"]["by"] == "statistician" and "campaign" in waivers["linkage_rate_drop"]["reason"]
    doc = report(home, 8)
    (waived,) = [c for c in doc["CheckResults"] if c["status"] == "waived"]
    assert waived["checkName"] == "linkage_rate_drop" and "statistician" in " ".join(waived["details"])
    assert doc["Overview"]["countBlocking"] == 0 and len(doc["Waivers"]) == 2
    assert "WAIVED" in (home / "reports" / "dq" / f"{day(8)}.html").read_text()

    # the waiver was for day 8 only: the same failure on day 9 is withheld again
    sysvak(landing, 9, STRANGERS[:25])
    assert run(landing, home) == EXIT_DQ_BLOCKED
    assert not (published / day(9)).exists()
    index = (home / "reports" / "dq" / "index.html").read_text()
    assert f'href="{day(9)}.html"' in index and f'href="{day(8)}.html"' in index
    assert index.index(day(9)) < index.index(day(8))  # newest first
    row9 = index[index.index(f"<td>{day(9)}</td>"):].split("</tr>")[0]
    row8 = index[index.index(f"<td>{day(8)}</td>"):].split("</tr>")[0]
    assert "blocked" in row9 and "waived" in row8


def test_a_rejected_delivery_is_the_first_failure_and_a_failed_check(tmp_path, monkeypatch):
    landing, home = eight_clean_days(tmp_path, monkeypatch)
    folder = landing / "sysvak" / day(7)
    manifest = json.loads((folder / "_manifest.json").read_text())
    manifest["files"][0]["sha256"] = "0" * 64  # the file is not what the manifest says: rejected
    (folder / "_manifest.json").write_text(json.dumps(manifest))
    assert run(landing, home) == EXIT_OK  # a warning: the other sources' day goes on

    doc = report(home, 7)
    first = doc["CheckResults"][0]
    assert (first["checkName"], first["asset"], first["status"]) == ("delivery_not_rejected", "vault/sysvak", "warn")
    assert "sha256" in " ".join(first["details"]) and "part-0001.jsonl" in " ".join(first["details"])
    html = (home / "reports" / "dq" / f"{day(7)}.html").read_text()
    assert "checks passed" not in html and html.index("delivery_not_rejected") < html.index("person_present")

    instance = dagster_instance(Home(home))
    from dagster import AssetCheckKey, AssetKey
    key = AssetCheckKey(AssetKey(["vault", "sysvak"]), "delivery_not_rejected")
    runs = instance.get_runs()
    evaluations = [e.dagster_event.event_specific_data for r in runs for e in instance.all_logs(r.run_id)
                   if e.dagster_event is not None and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
                   and e.dagster_event.event_specific_data.asset_check_key == key]
    (evaluation,) = evaluations
    assert evaluation.passed is False
    assert evaluation.partition == day(7)
    assert "sha256" in evaluation.metadata["details"].value
