"""`stat19 new-source` drafts a register's specs from a sample delivery, and `stat19 check-specs`
validates every spec the engine would read. The strongest proof: a source drafted from an icu
sample delivery loads through `stat19 run` as it is."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kit import break_check_digit, fnrs
from stat19.dq import load_suite
from stat19.paths import PROJECT_DIR
from stat19.scaffold import sniff
from stat19.specs import load_source_spec
from test_spec_path import BAD_MANIFEST_DAY, CRISIS, DAYS, KEY, START, icu_deliveries

N = 40


def cli(*args: str, spec_path: Path | None = None, cwd: Path | None = None, timeout: int = 600):
    """`stat19 ARGS` in a fresh process, with STAT19_SPEC_PATH set or unset."""
    env = {k: v for k, v in os.environ.items() if k != "STAT19_SPEC_PATH"}
    if spec_path is not None:
        env["STAT19_SPEC_PATH"] = str(spec_path)
    return subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", *args],
                          env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def sample_frame() -> pl.DataFrame:
    """A register's delivery: an identifier (one in twenty with a bad check digit), a key, a date,
    a timestamp, kommune, ICD-10 and ATC codes, a short list of values, free text."""
    ids = fnrs(N, seed=7)
    ids[3] = break_check_digit(ids[3])
    return pl.DataFrame({
        "visit_id": [f"v{k:04d}" for k in range(N)],
        "patient_fnr": ids,
        "visit_date": [date(2026, 1, 1) + timedelta(days=k % 9) for k in range(N)],
        "kommune_nr": [["0301", "4601", "5001", "1103"][k % 4] for k in range(N)],
        "diagnosis": [["J189", "U071", "A09", "J960"][k % 4] for k in range(N)],
        "drug": [["J01CA04", "J01FA10", "N02BE01"][k % 3] for k in range(N)],
        "setting": [["inpatient", "outpatient"][k % 2] for k in range(N)],
        "note": [f"seen by doctor {k} at ward {k * 7 % 13}" for k in range(N)],
        "doses": [k % 5 for k in range(N)],
    })


def write_sample(tmp_path: Path, fmt: str) -> Path:
    frame = sample_frame()
    path = tmp_path / f"visits.{fmt}"
    if fmt == "csv":
        frame.write_csv(path, separator=";")
    elif fmt == "jsonl":
        frame.write_ndjson(path)
    else:
        table = frame.to_arrow()
        stamps = pa.array([1767600000000000 + k for k in range(N)], pa.timestamp("us", tz="UTC"))
        pq.write_table(table.append_column("updated_at", stamps), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_new_source_proposes_types_the_person_column_and_codes(tmp_path, fmt):
    draft = sniff("clinic", write_sample(tmp_path, fmt))
    got = {c.name: c.spec for c in draft.columns}
    assert draft.table == "clinic_visits" and draft.format == fmt and draft.rows == N
    assert got["patient_fnr"]["type"] == "person_id"  # 39 of 40 valid: mostly
    assert got["visit_date"]["type"] == "date"
    assert got["kommune_nr"] == {"name": "kommune_nr", "type": "string", "required": True, "code_system": "kommune"}
    assert got["diagnosis"]["code_system"] == "icd10" and got["drug"]["code_system"] == "atc"
    assert got["setting"]["values"] == ["inpatient", "outpatient"]
    assert got["visit_id"].get("record_id") and draft.key == ["visit_id"]
    assert got["note"]["free_text"] == "vault_only"  # free text never leaves the vault unless the author says so
    assert got["doses"]["type"] == "integer"
    if fmt == "csv":
        assert draft.delimiter == ";"
    if fmt == "parquet":
        assert got["updated_at"]["type"] == "timestamp" and draft.version_order == ["updated_at"]


def test_an_identifier_shaped_column_with_bad_check_digits_is_not_proposed_as_a_person(tmp_path):
    frame = sample_frame().with_columns(patient_fnr=pl.col("patient_fnr").map_elements(break_check_digit, pl.String))
    frame.write_csv(tmp_path / "visits.csv", separator=";")
    draft = sniff("clinic", tmp_path / "visits.csv")
    fnr = next(c for c in draft.columns if c.name == "patient_fnr")
    assert fnr.type != "person_id" and any("check digits" in t for t in fnr.todo)



@pytest.mark.parametrize("stamp, warned", [("2026-01-04 16:08:00", True), ("2026-01-04T16:08:00+01:00", False)])
def test_timestamps_without_an_offset_are_flagged_before_every_row_is_quarantined(tmp_path, stamp, warned):
    """The landing contract needs ISO 8601 timestamps with an offset; a sample without one gets a
    TODO on the column (a newcomer's first run otherwise quarantined every row as bad_date)."""
    frame = sample_frame().with_columns(pl.lit(stamp).alias("visit_time"))
    frame.write_csv(tmp_path / "visits.csv", separator=";")
    visit_time = next(c for c in sniff("clinic", tmp_path / "visits.csv").columns if c.name == "visit_time")
    assert visit_time.spec["type"] == "timestamp"
    assert any("UTC offset" in t for t in visit_time.todo) == warned, visit_time.todo

@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_drafts_load_and_pass_check_specs_and_are_never_overwritten(tmp_path, fmt, monkeypatch):
    sample, specs = write_sample(tmp_path, fmt), tmp_path / "specs"
    done = cli("new-source", "clinic", "--sample", str(sample), "--into", str(specs))
    assert done.returncode == 0, done.stderr
    source = specs / "assets" / "sources" / "clinic.yaml"
    text = source.read_text()
    assert "# TODO" in text and "person_id" in text
    monkeypatch.setenv("STAT19_SPEC_PATH", str(specs))  # the parts it lists are found beside it
    spec = load_source_spec(source)
    assert spec.format == fmt and spec.tables[0].person_id_columns == ["patient_fnr"]
    assert (spec.role, spec.linked, spec.suites) == ("health", ["clinic_visits"], ["clinic"])  # its parts, listed
    suite = load_suite(specs / "dq_checks" / "clinic.yaml")
    assert suite.table == "clinic_visits" and "patient_fnr_present" in [e.name for e in suite.expectations]
    linked = (specs / "sql" / "linked" / "clinic_visits.sql.j2").read_text()
    assert "clinic_visits_linkable" in linked and "s.patient_fnr" not in linked.split("FROM")[0]  # pid, not the fnr
    assert "s.note" not in linked  # vault_only text is not selected

    checked = cli("check-specs", spec_path=specs)
    assert checked.returncode == 0 and "no problems" in checked.stdout, checked.stdout + checked.stderr

    again = cli("new-source", "clinic", "--sample", str(sample), "--into", str(specs))
    assert again.returncode == 2 and "refusing to overwrite" in again.stderr and str(source) in again.stderr
    assert source.read_text() == text


def test_new_source_writes_into_the_current_directory_by_default_and_adds_to_a_linked_yaml(tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(CRISIS, specs)  # a spec directory with a linked.yaml of its own already
    sample = write_sample(tmp_path, "csv")
    done = cli("new-source", "clinic", "--sample", str(sample), cwd=specs)
    assert done.returncode == 0, done.stderr
    model = (specs / "assets" / "linked.yaml").read_text()
    assert "icu_stays:" in model and "clinic_visits:" in model
    checked = cli("check-specs", spec_path=specs)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_source_drafted_from_an_icu_delivery_loads_through_stat19_run(tmp_path):
    landing, home, specs = tmp_path / "landing", tmp_path / "home", tmp_path / "specs"
    assert cli("synth", "--persons", "300", "--start", str(START), "--days", str(DAYS), "--out", str(landing),
               "--seed", "31", "--no-delivery-faults", "--error-rate", "0").returncode == 0  # every fnr valid
    persons = pl.read_csv(landing / "freg" / str(START) / "persons.csv", separator=";", infer_schema=False)
    icu_deliveries(landing, persons.filter(pl.col("status") == "bosatt")["fnr"].to_list())
    sample = landing / "icu" / str(START + timedelta(days=5)) / "stays.csv"  # with discharges and admissions
    assert cli("new-source", "icu", "--sample", str(sample), "--into", str(specs)).returncode == 0
    assert "type: person_id" in (specs / "assets" / "sources" / "icu.yaml").read_text()

    env = {**os.environ, "STAT19_PSEUDONYM_KEY": KEY}
    done = subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", "run",
                           "--landing", str(landing), "--home", str(home), "--product", "mortality_weekly"],
                          env={**env, "STAT19_SPEC_PATH": str(specs)}, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with (home / "reports" / "deliveries.csv").open(newline="") as f:
        icu = [r for r in csv.DictReader(f) if r["source"] == "icu" and r["delivery_date"] != str(BAD_MANIFEST_DAY)]
    assert len(icu) == DAYS - 1 and all(r["status"] == "loaded" for r in icu), icu
    assert all(int(r["rows_in"]) == int(r["rows_loaded"]) > 0 for r in icu), icu  # none lost, none quarantined
    with duckdb.connect(str(home / "linked" / "current.duckdb"), read_only=True) as con:
        columns = {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'icu_stays'").fetchall()}
        linked = con.execute("SELECT count(*), count(pid) FROM icu_stays").fetchone()
    assert "pid" in columns and "fnr" not in columns
    assert linked[0] == linked[1] == sum(int(r["rows_loaded"]) for r in icu)


def broken_spec_dir(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    shutil.copytree(CRISIS, specs)
    source = specs / "assets" / "sources" / "icu.yaml"
    source.write_text(source.read_text().replace("{name: hospital, type: string,", "{name: hospital, type: text,")
                      .replace("code_system: icd10", "code_system: icd11"))
    (specs / "sql" / "products" / "icu_weekly.sql.j2").unlink()
    shutil.copy(PROJECT_DIR / "assets" / "sources" / "daar.yaml", specs / "assets" / "sources" / "daar.yaml")
    (specs / "sql" / "linked" / "icu_stays.sql.j2").write_text("{% if x %}\nSELECT 1\n")
    return specs


def test_check_specs_reports_every_problem_naming_file_and_field(tmp_path):
    specs = broken_spec_dir(tmp_path)
    done = cli("check-specs", spec_path=specs)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    icu, product = specs / "assets" / "sources" / "icu.yaml", specs / "assets" / "products" / "icu_weekly.yaml"
    expected = [
        (f"{icu}: tables[icu_stays].columns[hospital].type: ", "'text'"),
        (f"{icu}: tables[icu_stays].columns[main_diagnosis].code_system: ", "unknown code system 'icd11'"),
        (f"{product}: sql: ", "sql/products/icu_weekly.sql.j2 does not exist"),
        (f"{specs / 'assets' / 'sources' / 'daar.yaml'}: name: ", str(PROJECT_DIR / "assets" / "sources" / "daar.yaml")),
        (f"{specs / 'sql' / 'linked' / 'icu_stays.sql.j2'}: line 2: ", "Jinja syntax error"),
    ]
    for start, part in expected:
        assert any(line.startswith(start) and part in line for line in lines), (start, part, lines)


def test_check_specs_passes_the_repository_and_the_crisis_register(tmp_path):
    done = cli("check-specs")
    assert done.returncode == 0 and "no problems" in done.stdout, done.stdout + done.stderr
    done = cli("check-specs", spec_path=CRISIS)
    assert done.returncode == 0 and "2 spec roots" in done.stdout, done.stdout + done.stderr
