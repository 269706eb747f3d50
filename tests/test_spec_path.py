"""A crisis register and its product added from a spec directory only (STAT19_SPEC_PATH): the
intensive-care register of tests/crisis_register/ loads with the landing protocol, links, passes
its checks, and icu_weekly is published under disclosure control and audited, through
`stat19 run` in a fresh process, and no file of the repository changes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from kit import csv_bytes, write_delivery
from stat19.cli import main
from stat19.inputs import code_digest
from stat19.paths import PROJECT_DIR, SpecPathError, spec_files, spec_roots

CRISIS = Path(__file__).parent / "crisis_register"
START, DAYS = date(2026, 1, 5), 10
LAST = START + timedelta(days=DAYS - 1)
KEY = "spec path test key, not a secret, 32 bytes or more"
ICU_HEADER = ["stay_id", "fnr", "hospital", "icu_admission", "icu_discharge", "invasive_ventilation",
              "main_diagnosis", "updated_at"]

# under `make test` (pytest-xdist, --dist loadgroup) this file runs on one worker, which builds
# its module fixture (crisis) once
pytestmark = pytest.mark.xdist_group("test_spec_path")


def repository_state() -> str:
    """What git sees of the repository's files (empty when it is not a git checkout)."""
    done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=PROJECT_DIR,
                          capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


BAD_MANIFEST_DAY = START + timedelta(days=3)  # its manifest is not JSON: the delivery is rejected
BAD_ROW_DAY = START + timedelta(days=5)  # one stay discharged before its admission: quarantined


def icu_deliveries(landing: Path, fnrs: list[str], seed: int = 5) -> None:
    """A few ICU stays a day for persons the Folkeregister knows; a stay is delivered again with
    its discharge two days after admission (a new version). One delivery has a malformed manifest,
    one a stay that breaks the register's row rule (discharged before admitted)."""
    rng = np.random.default_rng(seed)
    stays: dict[str, dict] = {}
    for k in range(DAYS):
        day = START + timedelta(days=k)
        rows = []
        for j in range(int(rng.integers(3, 7))):
            stay = {"stay_id": f"icu-{k}-{j}", "fnr": str(rng.choice(fnrs)), "hospital": "Haukeland",
                    "icu_admission": f"{day - timedelta(days=1)}T{int(rng.integers(0, 23)):02d}:15:00+01:00",
                    "icu_discharge": "", "invasive_ventilation": str(int(rng.random() < 0.3)),
                    "main_diagnosis": str(rng.choice(["U071", "J189", "J960", "I219"])),
                    "updated_at": f"{day}T06:00:00+01:00"}
            stays[stay["stay_id"]] = stay
            rows.append(stay)
        for stay in list(stays.values()):  # discharged two days after admission
            admitted = date.fromisoformat(stay["icu_admission"][:10])
            if stay["icu_discharge"] == "" and admitted == day - timedelta(days=3):
                stay = {**stay, "icu_discharge": f"{day - timedelta(days=1)}T10:00:00+01:00",
                        "updated_at": f"{day}T07:00:00+01:00"}
                stays[stay["stay_id"]] = stay
                rows.append(stay)
        if day == BAD_ROW_DAY:
            rows.append({**rows[0], "stay_id": "icu-discharged-before-admitted",
                         "icu_admission": f"{day - timedelta(days=1)}T12:00:00+01:00",
                         "icu_discharge": f"{day - timedelta(days=2)}T12:00:00+01:00"})
        folder = write_delivery(landing, "icu", day, {"stays.csv": (csv_bytes(ICU_HEADER, [[r[c] for c in ICU_HEADER]
                                                                                        for r in rows]), len(rows))})
        if day == BAD_MANIFEST_DAY:
            manifest = folder / "_manifest.json"
            manifest.write_text(manifest.read_text()[:-20])  # cut short: not JSON


def delivered_stays(landing: Path) -> pl.DataFrame:
    """What the register should hold, computed from the delivered files alone (not by the engine):
    every delivery but the rejected one, without rows discharged before admission, the latest
    version of each stay."""
    frames = [pl.read_csv(f, separator=";", infer_schema=False) for f in sorted((landing / "icu").glob("*/stays.csv"))
              if f.parent.name != str(BAD_MANIFEST_DAY)]
    ts = "%Y-%m-%dT%H:%M:%S%:z"
    rows = pl.concat(frames).with_columns(
        admitted=pl.col("icu_admission").str.to_datetime(ts), discharged=pl.col("icu_discharge").str.to_datetime(ts),
        updated=pl.col("updated_at").str.to_datetime(ts))
    kept = rows.filter(pl.col("discharged").is_null() | (pl.col("discharged") >= pl.col("admitted")))
    latest = kept.sort("updated").group_by("stay_id").last()
    # the offsets are Oslo's winter time, so the local date is the written one
    return latest.with_columns(admission_date=pl.col("icu_admission").str.slice(0, 10).str.to_date(),
                               discharge_date=pl.col("icu_discharge").str.slice(0, 10).str.to_date())


@pytest.fixture(scope="module")
def crisis(tmp_path_factory):
    root = tmp_path_factory.mktemp("crisis")
    specs, landing, home = root / "specs", root / "landing", root / "home"
    shutil.copytree(CRISIS, specs)  # the team's own directory, outside the repository
    assert main(["synth", "--persons", "800", "--start", str(START), "--days", str(DAYS), "--out", str(landing),
                 "--seed", "31", "--no-delivery-faults", "--error-rate", "0"]) == 0  # every fnr valid: exact counts
    persons = pl.read_csv(landing / "freg" / str(START) / "persons.csv", separator=";", infer_schema=False)
    icu_deliveries(landing, persons.filter(pl.col("status") == "bosatt")["fnr"].to_list())
    before = repository_state()
    env = {**os.environ, "STAT19_PSEUDONYM_KEY": KEY, "STAT19_SPEC_PATH": str(specs)}
    done = subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", "run",
                           "--landing", str(landing), "--home", str(home), "--product", "icu_weekly"],
                          env=env, capture_output=True, text=True, timeout=1800)
    return landing, home, specs, done, before, env


def national(release: Path, measure: str) -> dict[str, int]:
    """The published national totals of a measure by week, hidden cells left out."""
    data = pl.read_csv(release / "data.csv", infer_schema_length=0)
    rows = data.filter((pl.col("geo_code") == "NO") & (pl.col("age_group") == "total") & (pl.col("sex") == "total"))
    return {r["iso_week"]: int(r[measure]) for r in rows.iter_rows(named=True) if r[measure] not in ("", None)}


def test_the_crisis_register_loads_links_passes_its_checks_and_its_product_is_published(crisis, monkeypatch):
    landing, home, specs, done, before, env = crisis
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    stays = delivered_stays(landing)

    # loaded with the landing protocol, every row accounted for; the malformed manifest rejects its
    # delivery only, the stay discharged before its admission is quarantined by the row rule
    with (home / "reports" / "deliveries.csv").open(newline="") as f:
        log = list(csv.DictReader(f))
    icu = {r["delivery_date"]: r for r in log if r["source"] == "icu"}
    assert sorted(icu) == [str(START + timedelta(days=k)) for k in range(DAYS)]
    assert icu[str(BAD_MANIFEST_DAY)]["status"] == "rejected" and "_manifest.json" in icu[str(BAD_MANIFEST_DAY)]["message"]
    assert all(r["status"] == "loaded" for d, r in icu.items() if d != str(BAD_MANIFEST_DAY)), icu
    assert {d: r["rows_quarantined"] for d, r in icu.items() if r["rows_quarantined"] not in ("", "0")} == {
        str(BAD_ROW_DAY): "1"}
    others = [r for r in log if r["source"] != "icu" and r["delivery_date"] >= str(BAD_MANIFEST_DAY)]
    assert {r["source"] for r in others} >= {"freg", "msis", "npr", "daar"}
    assert all(r["status"] == "loaded" for r in others), [r for r in others if r["status"] != "loaded"]
    with (home / "reports" / "quarantine.csv").open(newline="") as f:
        quarantined = [r for r in csv.DictReader(f) if r["source"] == "icu"]
    assert [(r["reason"], r["rows"], r["example_detail"]) for r in quarantined] == [
        ("bad_date", "1", "icu_discharge before icu_admission")], quarantined

    # linked: pseudonymised, the latest version of each stay, no identifier column
    with duckdb.connect(str(home / "linked" / "current.duckdb"), read_only=True) as con:
        columns = [c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'icu_stays'").fetchall()]
        current = con.execute("SELECT count(*), count(pid), count(icu_discharge) FROM icu_stays "
                              "WHERE _known_to IS NULL").fetchone()
    assert "fnr" not in columns and "pid" in columns
    assert current == (stays.height, stays.height, stays["discharged"].is_not_null().sum())

    # its checks ran on the last day and passed, each one
    report = json.loads((home / "reports" / "dq" / f"{LAST}.json").read_text())
    status = {c["checkName"]: c["status"] for c in report["CheckResults"] if c["suite"] == "icu"}
    for check in ("stay_id_present", "person_present", "admission_present", "delivery_volume", "quarantine_share"):
        assert status.get(check) == "pass", (check, status)
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "ok"

    # the product is published under disclosure control: its audit passed, the admissions and the
    # patients in intensive care add up to what the deliveries say
    release = home / "published" / "icu_weekly" / str(LAST)
    meta = json.loads((release / "metadata.json").read_text())
    assert meta["disclosure"]["hidden_cells"]["admissions"] > 0  # small counts of a small population
    audited = subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())",
                              "audit", "--home", str(home)], env=env, capture_output=True, text=True, timeout=600)
    assert audited.returncode == 0 and " 0 findings" in audited.stdout, audited.stdout + audited.stderr
    week = pl.col("admission_date").dt.strftime("%G-W%V")
    expected = dict(stays.group_by(week.alias("w")).len().iter_rows())
    shown = national(release, "admissions")
    assert shown and all(shown[w] == expected.get(w, 0) for w in shown), (shown, expected)

    # patients in intensive care on each week's census day (its Sunday, or R in R's week)
    weeks = pl.date_range(stays["admission_date"].min(), LAST, eager=True).to_frame("day").group_by(
        pl.col("day").dt.strftime("%G-W%V").alias("w")).agg(census=pl.col("day").max())
    census = {w: stays.filter((pl.col("admission_date") <= day)
                              & (pl.col("discharge_date").is_null() | (pl.col("discharge_date") > day)))["fnr"].n_unique()
              for w, day in weeks.iter_rows()}
    shown = national(release, "patients_in_icu")
    assert shown and all(shown[w] == census[w] for w in shown), (shown, census)

    # nothing of the repository changed, and the icu comes from the spec directory alone
    assert repository_state() == before
    monkeypatch.delenv("STAT19_SPEC_PATH", raising=False)
    assert "icu" not in [p.stem for p in spec_files("*.yaml", "assets", "sources")]
    monkeypatch.setenv("STAT19_SPEC_PATH", str(specs))
    assert "icu" in [p.stem for p in spec_files("*.yaml", "assets", "sources")]


def test_a_spec_directory_adds_and_never_replaces(tmp_path, monkeypatch):
    clash = tmp_path / "assets" / "sources"
    clash.mkdir(parents=True)
    (clash / "daar.yaml").write_text("name: daar\n")
    monkeypatch.setenv("STAT19_SPEC_PATH", str(tmp_path))
    assert spec_roots()[-1] == tmp_path.resolve()
    with pytest.raises(ValueError, match="both define assets/sources/daar.yaml"):
        spec_files("*.yaml", "assets", "sources")
    monkeypatch.setenv("STAT19_SPEC_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="do not exist"):
        spec_roots()


@pytest.mark.parametrize("template", ["sql/dq/count_shift.sql.j2", "sql/products/_macros.sql.j2",
                                      "sql/ingest/stage.sql.j2", "sql/linkage/linkable.sql.j2"])
def test_a_template_of_the_search_path_defined_again_is_an_error_naming_both_files(tmp_path, monkeypatch, template):
    # Templates reached through the Jinja search path would be shadowed by the repository's copy
    # without a word: the spec directory's file must be refused, not ignored.
    assert (PROJECT_DIR / template).is_file()
    mine = tmp_path / template
    mine.parent.mkdir(parents=True)
    mine.write_text("-- my own version\n")
    monkeypatch.setenv("STAT19_SPEC_PATH", str(tmp_path))
    with pytest.raises(SpecPathError) as raised:
        spec_roots()
    assert str(mine.resolve()) in str(raised.value) and str(PROJECT_DIR / template) in str(raised.value)


def test_two_spec_directories_defining_the_same_template_is_an_error(tmp_path, monkeypatch):
    for d in ("a", "b"):
        (tmp_path / d / "sql" / "products").mkdir(parents=True)
        (tmp_path / d / "sql" / "products" / "_mine.sql.j2").write_text("-- mine\n")
    monkeypatch.setenv("STAT19_SPEC_PATH", os.pathsep.join(str(tmp_path / d) for d in ("a", "b")))
    with pytest.raises(SpecPathError, match="both define sql/products/_mine.sql.j2"):
        spec_roots()
    monkeypatch.setenv("STAT19_SPEC_PATH", str(tmp_path / "a") + os.pathsep + str(tmp_path / "a"))
    assert spec_roots() == [PROJECT_DIR, (tmp_path / "a").resolve()]  # the same directory twice is once


def run_cli(*args: str, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    """`stat19 ARGS` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_a_misconfigured_spec_path_is_one_line_and_exit_code_2_not_a_traceback(tmp_path):
    nowhere = tmp_path / "nowhere"
    (tmp_path / "landing").mkdir()
    done = run_cli("run", "--landing", str(tmp_path / "landing"), "--home", str(tmp_path / "home"),
                   env={**os.environ, "STAT19_SPEC_PATH": str(nowhere)})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert str(nowhere) in done.stderr and "STAT19_SPEC_PATH" in done.stderr

    shadow = tmp_path / "specs" / "sql" / "dq" / "count_shift.sql.j2"  # a shadowed template, same treatment
    shadow.parent.mkdir(parents=True)
    shadow.write_text("-- mine\n")
    done = run_cli("run", "--landing", str(tmp_path / "landing"), "--home", str(tmp_path / "home"),
                   env={**os.environ, "STAT19_SPEC_PATH": str(tmp_path / "specs")})
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert str(shadow.resolve()) in done.stderr and "both define sql/dq/count_shift.sql.j2" in done.stderr



def test_a_second_population_register_stops_the_run_in_one_line_and_check_specs_names_it(tmp_path):
    specs = tmp_path / "specs"
    (specs / "assets" / "sources").mkdir(parents=True)
    second = specs / "assets" / "sources" / "freg2.yaml"
    second.write_text((PROJECT_DIR / "assets" / "sources" / "freg.yaml").read_text(encoding="utf-8")
                      .replace("name: freg\n", "name: freg2\n", 1), encoding="utf-8")
    (tmp_path / "landing").mkdir()
    env = {**os.environ, "STAT19_SPEC_PATH": str(specs)}
    done = run_cli("run", "--landing", str(tmp_path / "landing"), "--home", str(tmp_path / "home"), env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "role: population" in done.stderr and str(second) in done.stderr
    checked = run_cli("check-specs", env=env)
    assert checked.returncode == 1 and any(line.startswith("assets/sources: role: ") and str(second) in line
                                           for line in checked.stdout.splitlines()), checked.stdout


def test_check_specs_flags_a_register_that_does_not_list_its_suite(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(CRISIS, specs)
    icu = specs / "assets" / "sources" / "icu.yaml"
    text = icu.read_text(encoding="utf-8")
    assert "suites: [icu]" in text
    icu.write_text(text.replace("suites: [icu]", "suites: []"), encoding="utf-8")
    done = run_cli("check-specs", env={**os.environ, "STAT19_SPEC_PATH": str(specs)})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"{specs / 'dq_checks' / 'icu.yaml'}: suites: no source spec lists 'icu'") for line in lines), lines
    assert any(line.startswith(f"{icu}: suites: the suite") for line in lines), lines

def test_moving_a_spec_file_between_roots_changes_the_code_digest(tmp_path, monkeypatch):
    # The digest decides whether releases are recomputed; which root a file sits in decides which
    # file wins and what is an error, so the same file in another root is other code.
    first, second = tmp_path / "first", tmp_path / "second"
    for root in (first, second):
        (root / "assets" / "sources").mkdir(parents=True)
    shutil.copy(CRISIS / "assets" / "sources" / "icu.yaml", first / "assets" / "sources" / "icu.yaml")
    monkeypatch.setenv("STAT19_SPEC_PATH", f"{first}{os.pathsep}{second}")
    code_digest.cache_clear()
    try:
        before = code_digest()
        (first / "assets" / "sources" / "icu.yaml").rename(second / "assets" / "sources" / "icu.yaml")
        code_digest.cache_clear()
        assert code_digest() != before
    finally:
        code_digest.cache_clear()
