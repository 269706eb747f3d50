"""The synthetic landing zone keeps the interface contract (sources.md), and its ground truth
(_synth_truth.json) accounts for every fault it injected."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stat19.identifiers import is_valid
from stat19.synth import generate, rates
from stat19.synth import births as births_module
from stat19.synth import freg as freg_module
from stat19.synth import timeutil
from stat19.synth.world import World

START = dt.date(2026, 1, 5)
FIXTURE = Path(__file__).resolve().parent.parent / "data_fixtures" / "landing"

COLUMNS = {
    "freg": ["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"],
    "freg_id_changes": ["old_id", "new_id", "change_date", "reason"],
    "msis": ["msis_id", "fnr", "disease", "sampling_date", "diagnosis_date", "notification_date", "kommune_nr",
             "infected_abroad", "status", "updated_at"],
    "msis_lab": ["lab_result_id", "fnr", "lab_id", "pathogen", "method", "sampling_date", "result", "kommune_nr"],
    "sysvak": ["vaccination_id", "fnr", "vaccine_code", "dose_number", "vaccination_date", "kommune_nr",
               "registered_at", "action"],
    "npr": ["episode_id", "fnr", "health_trust", "admission_date", "discharge_date", "care_level", "main_diagnosis",
            "secondary_diagnoses", "icu", "emergency"],
    "kpr": ["claim_id", "fnr", "contact_date", "practitioner_type", "contact_mode", "icpc2", "takst", "kommune_nr"],
    "mfr": ["birth_id", "mother_fnr", "child_fnr", "birth_date", "gestational_age_days", "birth_weight_g",
            "plurality", "stillborn", "mother_kommune_nr"],
    "daar": ["death_id", "fnr", "death_date", "underlying_cause", "place_of_death", "kommune_nr", "updated_at"],
    "lmr": ["dispensing_id", "fnr", "dispense_date", "atc_code", "ddd", "prescriber_type", "kommune_nr"],
}
ARROW_TYPES = {
    "kpr": {"claim_id": pa.string(), "fnr": pa.string(), "contact_date": pa.date32(), "practitioner_type": pa.string(),
            "contact_mode": pa.string(), "icpc2": pa.list_(pa.string()), "takst": pa.list_(pa.string()),
            "kommune_nr": pa.string()},
    "lmr": {"dispensing_id": pa.string(), "fnr": pa.string(), "dispense_date": pa.date32(), "atc_code": pa.string(),
            "ddd": pa.float64(), "prescriber_type": pa.string(), "kommune_nr": pa.string()},
}
ID_COLUMNS = {"mfr": ["mother_fnr", "child_fnr"]}
# event dates (and timestamps) that must not lie after the delivery date
EVENT_DATES = {
    "freg": ["birth_date", "status_date"], "msis": ["sampling_date", "diagnosis_date", "notification_date", "updated_at"],
    "msis_lab": ["sampling_date"], "sysvak": ["vaccination_date", "registered_at"],
    "npr": ["admission_date", "discharge_date"], "kpr": ["contact_date"], "mfr": ["birth_date"],
    "daar": ["death_date", "updated_at"], "lmr": ["dispense_date"],
}
CSV = {"freg": ";", "msis_lab": ";", "npr": ";", "mfr": ",", "daar": ";"}
# the contract's rules, restated to audit the ground truth (required fields; codes by form or list)
REQUIRED = {
    "freg": COLUMNS["freg"],
    "msis": ["msis_id", "fnr", "disease", "diagnosis_date", "notification_date", "status", "updated_at"],
    "msis_lab": ["lab_result_id", "lab_id", "pathogen", "method", "sampling_date", "result"],
    "sysvak": ["vaccination_id", "fnr", "vaccine_code", "vaccination_date", "registered_at", "action"],
    "npr": ["episode_id", "fnr", "health_trust", "admission_date", "care_level", "main_diagnosis", "icu", "emergency"],
    "kpr": ["claim_id", "fnr", "contact_date", "practitioner_type", "contact_mode"],
    "mfr": ["birth_id", "mother_fnr", "birth_date", "gestational_age_days", "plurality", "stillborn"],
    "daar": ["death_id", "fnr", "death_date", "underlying_cause", "updated_at"],
    "lmr": ["dispensing_id", "fnr", "dispense_date", "atc_code"],
}
ICD10, ICPC2, ATC, KOMMUNE = (r"^[A-Z][0-9]{2}[0-9A-Z]{0,2}$", r"^[A-Z][0-9]{2}[0-9]?$",
                              r"^[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}$", r"^[0-9]{4}$")
CODES = {
    "freg": {"kjoenn": ["mann", "kvinne"], "kommune_nr": KOMMUNE,
             "status": ["bosatt", "utflyttet", "doed", "forsvunnet", "ikkeBosatt", "opphoert"]},
    "msis": {"disease": list(rates.MSIS_DISEASES), "status": ["active", "retracted"], "kommune_nr": KOMMUNE},
    "msis_lab": {"pathogen": list(rates.LAB_PATHOGENS), "method": ["pcr", "antigen", "culture"],
                 "result": ["positive", "negative", "inconclusive"], "kommune_nr": KOMMUNE},
    "sysvak": {"vaccine_code": ATC, "action": ["insert", "delete"], "kommune_nr": KOMMUNE},
    "npr": {"care_level": ["1", "2", "3"], "main_diagnosis": ICD10, "secondary_diagnoses": ICD10,
            "icu": ["0", "1"], "emergency": ["0", "1"]},
    "kpr": {"practitioner_type": ["fastlege", "legevakt", "nettlege"], "icpc2": ICPC2, "kommune_nr": KOMMUNE,
            "contact_mode": ["oppmote", "video", "tekst", "telefon", "sykebesok"]},
    "mfr": {"stillborn": ["0", "1"], "mother_kommune_nr": KOMMUNE},
    "daar": {"underlying_cause": ICD10, "kommune_nr": KOMMUNE},
    "lmr": {"atc_code": ATC, "kommune_nr": KOMMUNE},
}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


# --------------------------------------------------------------------------- helpers


def read_file(path: Path, source: str) -> pl.DataFrame:
    """A data file as the contract describes it (CSV/JSONL values as strings, Parquet typed)."""
    if path.suffix == ".parquet":
        return pl.from_arrow(pq.read_table(path))
    encoding = "windows-1252" if source == "npr" else "utf-8"
    text = path.read_bytes().decode(encoding)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line]
        return pl.DataFrame(rows, schema={c: pl.Object for c in COLUMNS[source]}, orient="row") if rows else \
            pl.DataFrame(schema={c: pl.Utf8 for c in COLUMNS[source]})
    return pl.read_csv(text.encode(), separator=CSV[source], infer_schema=False)


def delivery(root: Path, source: str, day: str) -> pl.DataFrame:
    folder = root / source / day
    if source == "freg":
        return read_file(folder / "persons.csv", "freg")
    manifest = json.loads((folder / "_manifest.json").read_text())
    frames = [read_file(folder / f["name"], source) for f in manifest["files"]]
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]


def clean_deliveries(root: Path, truth: dict, source: str) -> list[str]:
    faulted = {(f["source"], f["delivery_date"]) for f in truth["delivery_faults"]}
    return sorted(p.name for p in (root / source).iterdir() if (source, p.name) not in faulted)


def count_rows(path: Path, source: str) -> int:
    if path.suffix == ".parquet":
        return pq.ParquetFile(path).metadata.num_rows
    lines = path.read_bytes().count(b"\n")
    return lines - 1 if path.suffix == ".csv" else lines


def iso_date(value: str) -> dt.date | None:
    """The date of an ISO date or timestamp; None when it does not parse."""
    try:
        return dt.date.fromisoformat(value[:10]) if ISO_DATE.match(value) else None
    except ValueError:
        return None


def as_text(value) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> tuple[Path, dict]:
    """A short run with a high error rate, so every fault kind occurs."""
    root = tmp_path_factory.mktemp("synth") / "landing"
    generate(root, persons=10_000, start=START, days=10, seed=7, error_rate=0.01)
    return root, json.loads((root / "_synth_truth.json").read_text())


# --------------------------------------------------------------------------- tests


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    def digests(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, persons=1_500, start=START, days=3, seed=seed)
        runs.append(digests(tmp_path / name))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert any(name.endswith(".parquet") for name in runs[0])


def test_refuses_to_overwrite_a_landing_zone(landing):
    root, _ = landing
    with pytest.raises(FileExistsError):
        generate(root, persons=1_000, start=START, days=1)


def test_every_manifest_matches_its_files_except_injected_faults(landing):
    root, truth = landing
    faults = {(f["source"], f["delivery_date"]): f["kind"] for f in truth["delivery_faults"]}
    assert sorted(set(faults.values())) == sorted(rates.DELIVERY_FAULT_KINDS)
    assert all(day != START.isoformat() for _, day in faults)
    for source in rates.SOURCES:
        days = sorted(p.name for p in (root / source).iterdir())
        assert len(days) == 10
        for day in days:
            folder = root / source / day
            kind = faults.get((source, day))
            if kind == "missing_manifest":
                assert not (folder / "_manifest.json").exists()
                continue
            manifest = json.loads((folder / "_manifest.json").read_text())
            assert manifest["source"] == source and manifest["delivery_date"] == day
            listed = {f["name"]: f for f in manifest["files"]}
            present = {p.name for p in folder.iterdir() if p.name != "_manifest.json"}
            if source == "freg":
                assert set(listed) == {"persons.csv", "id_changes.csv"}
            if kind == "unlisted_file":
                assert len(present - set(listed)) == 1
            else:
                assert present == set(listed)
            problems = set()
            for name, entry in listed.items():
                path = folder / name
                if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
                    problems.add("sha256_mismatch")
                    continue
                if count_rows(path, source) != entry["rows"]:
                    problems.add("row_count_mismatch")
                if path.suffix != ".parquet":
                    try:
                        path.read_bytes().decode("windows-1252" if source == "npr" else "utf-8")
                    except UnicodeDecodeError:
                        problems.add("undecodable_bytes")
                        continue
                expected = COLUMNS["freg_id_changes"] if name == "id_changes.csv" else COLUMNS[source]
                if set(read_file(path, source).columns) != set(expected):
                    problems.add("missing_column")
            expected_problems = {kind} if kind in ("sha256_mismatch", "row_count_mismatch", "undecodable_bytes",
                                                   "missing_column") else set()
            assert problems == expected_problems, (source, day)


def test_schema_and_types_per_source(landing):
    root, truth = landing
    for source in rates.SOURCES:
        day = clean_deliveries(root, truth, source)[-1]
        folder = root / source / day
        manifest = json.loads((folder / "_manifest.json").read_text())
        for entry in manifest["files"]:
            path = folder / entry["name"]
            if path.suffix == ".parquet":
                schema = pq.read_schema(path)
                assert schema.names == COLUMNS[source]
                assert {f.name: f.type for f in schema} == ARROW_TYPES[source]
            elif path.suffix == ".jsonl":
                first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
                assert list(first) == COLUMNS[source]
            else:
                header = path.read_bytes().split(b"\n", 1)[0].decode("ascii").split(CSV[source])
                assert header == (COLUMNS["freg_id_changes"] if entry["name"] == "id_changes.csv" else COLUMNS[source])
    # identifiers are strings with leading zeros
    persons = delivery(root, "freg", START.isoformat())
    assert persons["fnr"].str.starts_with("0").any()
    assert (persons["fnr"].drop_nulls().str.len_chars() == 11).mean() > 0.99
    kpr = pq.read_table(next((root / "kpr" / START.isoformat()).glob("*.parquet")))
    assert any(v.startswith("0") for v in kpr["fnr"].to_pylist() if v)
    sysvak = (root / "sysvak" / START.isoformat() / "part-0001.jsonl").read_text().splitlines()
    assert all(isinstance(json.loads(line)["fnr"], str) for line in sysvak[:50])
    assert all(isinstance(json.loads(line)["dose_number"], int) for line in sysvak[:50])


def test_npr_is_windows_1252_with_norwegian_letters(landing):
    root, truth = landing
    day = clean_deliveries(root, truth, "npr")[-1]
    raw = (root / "npr" / day / "part-0001.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("windows-1252")
    assert "Helse Møre og Romsdal HF" in text or "Sørlandet sykehus HF" in text or "Helse Førde HF" in text
    assert any(ch in text for ch in "æøåÆØÅ")


def test_timestamps_have_an_oslo_offset(landing):
    root, truth = landing
    day = clean_deliveries(root, truth, "sysvak")[-1]
    stamps = delivery(root, "sysvak", day)["registered_at"].to_list()
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0[12]:00", str(s)) for s in stamps if s)
    assert timeutil.oslo_offset(timeutil.day_number(dt.date(2026, 7, 1))) == "+02:00"


def test_npr_deliveries_are_cumulative(landing):
    root, truth = landing
    days = clean_deliveries(root, truth, "npr")
    snapshots = {day: delivery(root, "npr", day) for day in days}
    gone_before: set[str] = set()
    filled_later = corrected = 0
    for earlier, later in zip(days, days[1:]):
        a, b = snapshots[earlier], snapshots[later]
        ids_a, ids_b = set(a["episode_id"].drop_nulls()), set(b["episode_id"].drop_nulls())
        gone = ids_a - ids_b
        assert len(gone) <= max(3, 0.02 * len(ids_a)), "only a few episodes are deleted"
        assert not (gone_before & ids_b), "a deleted episode never comes back"
        gone_before |= gone
        assert len(ids_b) > len(ids_a)
        both = a.unique("episode_id", keep="none").join(b.unique("episode_id", keep="none"), on="episode_id")
        filled_later += both.filter(pl.col("discharge_date").is_null() & pl.col("discharge_date_right").is_not_null()).height
        corrected += both.filter(pl.col("main_diagnosis") != pl.col("main_diagnosis_right")).height
    assert filled_later > 0 and corrected > 0
    last = snapshots[days[-1]]
    admitted = last["admission_date"].drop_nulls().filter(last["admission_date"].drop_nulls().str.contains(r"^\d{4}-\d{2}-\d{2}$"))
    assert admitted.min() >= "2026-01-01"
    assert admitted.min() < START.isoformat(), "the first deliveries hold the year from 1 January"


def test_injected_bad_rows_are_counted_exactly(landing):
    """Invalid identifiers and future dates in the files are exactly those the truth lists."""
    root, truth = landing
    for source in rates.SOURCES:
        for day in clean_deliveries(root, truth, source):
            frame = delivery(root, source, day)
            counts = truth["row_faults"][source][day]
            if not frame.height:
                assert not any(counts.values())
                continue
            invalid = 0
            for column in ID_COLUMNS.get(source, ["fnr"]):
                values = [as_text(v) for v in frame[column].to_list()]
                invalid += sum(1 for v in values if v and not is_valid(v))
            assert invalid == counts.get("invalid_identifier", 0), (source, day)
            future = np.zeros(frame.height, dtype=bool)
            for column in EVENT_DATES[source]:
                values = [as_text(v) for v in frame[column].to_list()]
                future |= np.array([bool(v and iso_date(v) and v[:10] > day) for v in values])
            assert int(future.sum()) == counts.get("future_date", 0), (source, day)


def _code_ok(value, rule) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return all(_code_ok(v, rule) for v in value)
    if isinstance(rule, list):
        return value in rule
    if rule == ICD10 and "|" in value:  # secondary_diagnoses
        return all(re.match(rule, v) for v in value.split("|"))
    return re.match(rule, str(value)) is not None


def test_missing_fields_bad_dates_and_unknown_codes_are_counted_exactly(landing):
    root, truth = landing
    for source in rates.SOURCES:
        date_columns = [c for c in EVENT_DATES[source] if not c.endswith("_at")]
        for day in clean_deliveries(root, truth, source):
            rows = delivery(root, source, day).to_dicts()
            counts = truth["row_faults"][source][day]
            missing = bad_date = unknown = 0
            for row in rows:
                if any(as_text(row[c]) in (None, "") for c in REQUIRED[source]):
                    missing += 1
                elif any(row[c] is not None and not iso_date(as_text(row[c])) for c in date_columns):
                    bad_date += 1
                elif not all(_code_ok(row[c], rule) for c, rule in CODES[source].items()):
                    unknown += 1
            assert (missing, bad_date, unknown) == (
                counts.get("missing_field", 0), counts.get("bad_date", 0), counts.get("unknown_code", 0)), (source, day)


def test_every_bad_input_kind_occurs(landing):
    _, truth = landing
    totals = {kind: 0 for kind in rates.ROW_FAULT_KINDS}
    for source, per_day in truth["row_faults"].items():
        for counts in per_day.values():
            for kind, n in counts.items():
                totals[kind] += n
        if source in ("msis", "daar", "sysvak"):  # timestamped: repeated ids are versions
            assert not any(c.get("duplicate_id") or c.get("duplicate_row") for c in per_day.values())
    assert all(totals.values()), totals
    for source in ("freg", "msis_lab", "npr", "kpr", "lmr", "sysvak"):
        kinds = {k for counts in truth["row_faults"][source].values() for k, n in counts.items() if n}
        assert len(kinds) >= 5, (source, kinds)


def test_duplicates_are_exact_copies_or_same_id_with_other_content(landing):
    root, truth = landing
    key = {"kpr": "claim_id", "lmr": "dispensing_id", "msis_lab": "lab_result_id", "npr": "episode_id"}
    for source, column in key.items():
        exact = other = 0
        for day in clean_deliveries(root, truth, source):
            frame = delivery(root, source, day)
            if source in ("kpr",):
                frame = frame.with_columns(pl.col("icpc2").list.join("|"), pl.col("takst").list.join("|"))
            repeated = frame.filter(pl.col(column).is_not_null() & pl.col(column).is_duplicated())
            exact += repeated.height - repeated.unique().height
            other += repeated.unique().height - repeated[column].n_unique()
            counts = truth["row_faults"][source][day]
            assert repeated.height - repeated.unique().height == counts.get("duplicate_row", 0)
            assert 2 * (repeated.unique().height - repeated[column].n_unique()) == counts.get("duplicate_id", 0)
        assert exact and other, source


def test_negative_lab_results_never_carry_an_invalid_identifier(landing):
    root, truth = landing
    for day in clean_deliveries(root, truth, "msis_lab"):
        frame = delivery(root, "msis_lab", day).filter(pl.col("result") != "positive")
        assert all(is_valid(v) for v in frame["fnr"].drop_nulls().to_list())
        assert frame["fnr"].is_not_null().any(), "the raw file still holds the identity"


def test_freg_first_delivery_is_the_population_then_changes(landing):
    root, truth = landing
    first = delivery(root, "freg", START.isoformat())
    assert first.height >= 10_000
    statuses = set(first["status"].drop_nulls())
    assert {"bosatt", "ikkeBosatt", "utflyttet", "doed", "opphoert"} <= statuses
    assert (first["status"] == "bosatt").sum() >= 9_500
    changes = read_file(root / "freg" / START.isoformat() / "id_changes.csv", "freg")
    assert set(changes["reason"]) == {"d_to_f", "correction"}
    # chains A -> B -> C: some new_id is also an old_id
    assert set(changes["new_id"]) & set(changes["old_id"])
    later = [delivery(root, "freg", d) for d in clean_deliveries(root, truth, "freg")[1:]]
    assert all(0 < f.height < 500 for f in later)
    codes = set(pl.concat(later)["kommune_nr"].drop_nulls()) | set(first["kommune_nr"].drop_nulls())
    assert "9999" in codes and "0301" in codes
    assert codes & {"1507", "0101", "5001", "3001", "1201"} or len(codes) > 400  # pre-2024 codes


def test_linked_events_make_the_products_interesting(landing):
    root, truth = landing
    days = {s: clean_deliveries(root, truth, s) for s in rates.SOURCES}
    lab = pl.concat([delivery(root, "msis_lab", d) for d in days["msis_lab"]])
    positives = lab.filter(pl.col("result") == "positive").select("fnr", sampling=pl.col("sampling_date").str.to_date(strict=False))
    npr = delivery(root, "npr", days["npr"][-1]).filter(
        (pl.col("care_level") == "1") & (pl.col("emergency") == "1")
        & pl.col("main_diagnosis").str.contains(r"^(J(09|1\d|2[0-2])|U071)")
    ).select("fnr", admission=pl.col("admission_date").str.to_date(strict=False))
    linked = npr.join(positives, on="fnr").filter(
        (pl.col("sampling") - pl.col("admission")).dt.total_days().is_between(-14, 3))
    assert linked.height > 0, "SARI admissions with positive tests around admission"

    kpr = pl.concat([pl.from_arrow(pq.read_table(p)) for d in days["kpr"] for p in (root / "kpr" / d).glob("*.parquet")])
    lmr = pl.concat([pl.from_arrow(pq.read_table(p)) for d in days["lmr"] for p in (root / "lmr" / d).glob("*.parquet")])
    respiratory = kpr.filter(pl.col("icpc2").list.eval(pl.element().str.starts_with("R")).list.any())
    j01 = lmr.filter(pl.col("atc_code").str.starts_with("J01"))
    followed = respiratory.join(j01, on="fnr").filter(
        (pl.col("dispense_date") - pl.col("contact_date")).dt.total_days().is_between(0, 3))
    assert followed.height > 0
    assert {"fastlege", "legevakt", "nettlege"} <= set(kpr["practitioner_type"].drop_nulls())

    sysvak = pl.concat([delivery(root, "sysvak", d) for d in days["sysvak"]])
    assert {"insert", "delete"} <= set(sysvak["action"].drop_nulls())
    codes = set(sysvak["vaccine_code"].drop_nulls())
    assert {"J07BB02", "J07CA02", "J07CA09"} <= codes and codes & {"J07BN01", "J07BX03"}


def test_pregnancies_are_planned_before_the_period_with_pertussis_doses():
    world = World(seed=5, persons=60_000, start_day=timeutil.day_number(START), days=60, error_rate=0.0)
    freg_module.build_population(world)
    plan = births_module.plan_births(world)
    assert (plan["plurality"] == 2).any()
    vaccinated = plan.filter(pl.col("pertussis_day") >= 0)
    share = vaccinated.height / plan.height
    assert 0.45 < share < 0.75
    start = vaccinated["birth_day"] - vaccinated["ga"]
    in_pregnancy = (vaccinated["pertussis_day"] >= start) & (vaccinated["pertussis_day"] <= vaccinated["birth_day"])
    assert 0.85 < in_pregnancy.mean() < 1.0
    in_period = plan.filter(pl.col("birth_day").is_between(world.start_day, world.end_day))
    assert (in_period["birth_day"] - in_period["ga"] < world.start_day).all()


def test_committed_fixture_is_what_the_generator_writes(tmp_path):
    if not FIXTURE.exists():
        pytest.skip("data_fixtures/landing not generated")
    arguments = json.loads((FIXTURE / "_synth_truth.json").read_text())["arguments"]
    arguments["start"] = dt.date.fromisoformat(arguments["start"])
    generate(tmp_path / "landing", **arguments)
    for manifest in sorted(FIXTURE.rglob("_manifest.json")):
        again = tmp_path / "landing" / manifest.relative_to(FIXTURE)
        assert again.read_bytes() == manifest.read_bytes(), manifest
    assert (tmp_path / "landing" / "_synth_truth.json").read_bytes() == (FIXTURE / "_synth_truth.json").read_bytes()
