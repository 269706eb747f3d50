"""Ingestion: the landing protocol, row rules, versioning, accounting, idempotence and crash safety."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from kit import break_check_digit, csv_bytes, fnrs, jsonl_bytes, parquet_bytes, write_delivery
from stat19.db import warehouse
from stat19.ingest import ensure_schema, load_delivery
from stat19.landing import Delivery
from stat19.paths import Home

IDS = fnrs(40, seed=7)
MFR_HEADER = ["birth_id", "mother_fnr", "child_fnr", "birth_date", "gestational_age_days", "birth_weight_g",
              "plurality", "stillborn", "mother_kommune_nr"]
NPR_HEADER = ["episode_id", "fnr", "health_trust", "admission_date", "discharge_date", "care_level",
              "main_diagnosis", "secondary_diagnoses", "icu", "emergency"]


def mfr_row(i: int, **change) -> list:
    row = dict(birth_id=f"b{i}", mother_fnr=IDS[i], child_fnr=IDS[20 + i], birth_date="2026-01-03",
               gestational_age_days=280, birth_weight_g=3500, plurality=1, stillborn=0, mother_kommune_nr="0301")
    row.update(change)
    return [row[c] for c in MFR_HEADER]


def npr_row(i: int, **change) -> list:
    row = dict(episode_id=f"e{i}", fnr=IDS[i], health_trust="Helse Møre og Romsdal HF", admission_date="2026-01-02",
               discharge_date="", care_level=1, main_diagnosis="J189", secondary_diagnoses="J449|I10", icu=0, emergency=1)
    row.update(change)
    return [row[c] for c in NPR_HEADER]


def vacc(i: int, **change) -> dict:
    rec = dict(vaccination_id=f"v{i}", fnr=IDS[i], vaccine_code="J07BB02", dose_number=1,
               vaccination_date="2026-01-02", kommune_nr="0301", registered_at="2026-01-02T10:00:00+01:00",
               action="insert")
    rec.update(change)
    return rec


class Env:
    def __init__(self, root: Path):
        self.landing = root / "landing"
        self.home = Home(root / "home")

    def load(self, source: str, day: str, force: bool = False):
        with warehouse(self.home) as con:
            ensure_schema(con)
            return load_delivery(con, self.home, Delivery(source, date.fromisoformat(day), self.landing / source / day), force)

    def query(self, sql: str, params=None) -> list[tuple]:
        with warehouse(self.home, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def state(self) -> dict[str, list[tuple]]:
        """Everything the vault holds, in a comparable form."""
        tables = ["sysvak_vaccinations", "npr_episodes", "mfr_births", "quarantine", "loaded_deliveries"]
        return {t: sorted(map(repr, self.query(f"SELECT * {'EXCLUDE (loaded_at)' if t == 'loaded_deliveries' else ''} FROM {t}")))
                for t in tables}


@pytest.fixture
def env(tmp_path: Path) -> Env:
    e = Env(tmp_path)
    with warehouse(e.home) as con:
        ensure_schema(con)
    return e


def mfr_delivery(env: Env, day: str, rows: list[list], **kw) -> None:
    write_delivery(env.landing, "mfr", day, {"births.csv": (csv_bytes(MFR_HEADER, rows, delimiter=","), len(rows))}, **kw)


def quarantined(env: Env) -> list[tuple]:
    return env.query("SELECT file, row_number, reason, detail FROM quarantine ORDER BY file, row_number")


def assert_accounts(outcome) -> None:
    assert outcome.status == "loaded", outcome.message
    assert outcome.rows_in == outcome.rows_loaded + outcome.rows_quarantined + outcome.rows_duplicate


# --- row-level rules: each bad row is quarantined with its reason, the rest loads ---------------

@pytest.mark.parametrize(
    ("bad_row", "reason", "detail_mentions"),
    [
        (mfr_row(1, mother_fnr=break_check_digit(IDS[1])), "invalid_identifier", "mother_fnr"),
        (mfr_row(1, mother_fnr="1234567890"), "invalid_identifier", "mother_fnr"),
        (mfr_row(1, mother_fnr=""), "missing_field", "mother_fnr"),
        (mfr_row(1, child_fnr=""), "missing_field", "child_fnr"),  # only a stillbirth may lack a child
        (mfr_row(1, birth_date="2026-02-30"), "bad_date", "birth_date"),
        (mfr_row(1, birth_date="03.01.2026"), "bad_date", "birth_date"),
        (mfr_row(1, birth_date="2026-01-06"), "future_date", "birth_date"),
        (mfr_row(1, mother_kommune_nr="301"), "unknown_code", "mother_kommune_nr"),
        (mfr_row(1, stillborn=2), "unknown_code", "stillborn"),
        (mfr_row(1, gestational_age_days="forty"), "bad_value", "gestational_age_days"),
        # a record key goes to the linked zone as it is: a person's identifier there would leak
        (mfr_row(1, birth_id=IDS[5]), "identifier_in_key", "birth_id"),
        (mfr_row(1, birth_id=f"{IDS[5][:6]} {IDS[5][6:]}"), "identifier_in_key", "birth_id"),
        (mfr_row(1, birth_id=f"{IDS[5][:6]}\u00a0{IDS[5][6:]}"), "identifier_in_key", "birth_id"),  # no-break space
        (mfr_row(1, birth_id=f"{IDS[5][:6]}\u2013{IDS[5][6:]}"), "identifier_in_key", "birth_id"),  # en dash
    ],
)
def test_a_bad_row_is_quarantined_with_its_rule_and_the_rest_loads(env, bad_row, reason, detail_mentions):
    mfr_delivery(env, "2026-01-05", [mfr_row(0), bad_row, mfr_row(2)])
    outcome = env.load("mfr", "2026-01-05")
    assert_accounts(outcome)
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (2, 1)
    [(file, row, got_reason, detail)] = quarantined(env)
    assert (file, row, got_reason) == ("births.csv", 2, reason)
    assert detail_mentions in detail
    assert env.query("SELECT birth_id FROM mfr_births ORDER BY 1") == [("b0",), ("b2",)]


def test_a_record_key_of_eleven_digits_that_is_no_identifier_loads(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0), mfr_row(1, birth_id=break_check_digit(IDS[5]))])
    assert env.load("mfr", "2026-01-05").rows_loaded == 2


def test_a_stillbirth_may_lack_a_child_identifier(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0, child_fnr="", stillborn=1)])
    assert env.load("mfr", "2026-01-05").rows_loaded == 1


def test_identical_rows_count_as_duplicates_and_a_repeated_id_with_other_content_is_quarantined(env):
    rows = [mfr_row(0), mfr_row(0), mfr_row(0), mfr_row(1), mfr_row(1, birth_weight_g=2900), mfr_row(2)]
    mfr_delivery(env, "2026-01-05", rows)
    outcome = env.load("mfr", "2026-01-05")
    assert_accounts(outcome)
    assert (outcome.rows_loaded, outcome.rows_duplicate, outcome.rows_quarantined) == (2, 2, 2)
    assert [(r[1], r[2]) for r in quarantined(env)] == [(4, "duplicate_id"), (5, "duplicate_id")]


def test_a_malformed_csv_row_is_quarantined_with_its_line(env):
    data = csv_bytes(MFR_HEADER, [mfr_row(0), mfr_row(1)], delimiter=",") + b"b9,too,few\n"
    write_delivery(env.landing, "mfr", "2026-01-05", {"births.csv": (data, 3)})
    outcome = env.load("mfr", "2026-01-05")
    assert_accounts(outcome)
    assert [(r[1], r[2]) for r in quarantined(env)] == [(3, "malformed_row")]


def test_a_malformed_json_line_is_quarantined(env):
    data = jsonl_bytes([vacc(0)]) + b'{"vaccination_id": "v1", \n' + jsonl_bytes([vacc(2)])
    write_delivery(env.landing, "sysvak", "2026-01-05", {"part-1.jsonl": (data, 3)})
    outcome = env.load("sysvak", "2026-01-05")
    assert_accounts(outcome)
    assert [(r[1], r[2]) for r in quarantined(env)] == [(2, "malformed_row")]


def test_codes_inside_list_columns_are_checked(env):
    table = pa.table({
        "claim_id": ["c1", "c2"], "fnr": IDS[:2], "contact_date": pa.array([date(2026, 1, 2)] * 2, pa.date32()),
        "practitioner_type": ["fastlege", "nettlege"], "contact_mode": ["oppmote", "video"],
        "icpc2": pa.array([["R74", "R991"], ["R74", "bad code"]], pa.list_(pa.string())),
        "takst": pa.array([["2ad"], []], pa.list_(pa.string())), "kommune_nr": ["0301", "0301"],
    })
    write_delivery(env.landing, "kpr", "2026-01-05", {"claims.parquet": (parquet_bytes(table), 2)})
    outcome = env.load("kpr", "2026-01-05")
    assert_accounts(outcome)
    assert [(r[1], r[2]) for r in quarantined(env)] == [(2, "unknown_code")]
    assert env.query("SELECT icpc2, fnr FROM kpr_claims") == [(["R74", "R991"], IDS[0])]


def test_discharge_before_admission_is_quarantined(env):
    rows = [npr_row(0), npr_row(1, discharge_date="2026-01-01")]
    write_delivery(env.landing, "npr", "2026-01-05", {"npr.csv": (csv_bytes(NPR_HEADER, rows, encoding="windows-1252"), 2)})
    assert_accounts(env.load("npr", "2026-01-05"))
    assert [(r[2], r[3]) for r in quarantined(env)] == [("bad_date", "discharge_date before admission_date")]


def test_identifiers_keep_leading_zeros(env):
    zero_led = next(i for i in fnrs(200, seed=3) if i.startswith("0"))
    mfr_delivery(env, "2026-01-05", [mfr_row(0, mother_fnr=zero_led)])
    env.load("mfr", "2026-01-05")
    assert env.query("SELECT mother_fnr FROM mfr_births") == [(zero_led,)]


# --- delivery-level faults: the whole delivery is rejected, named, and nothing of it loads -----

def _npr(rows):
    return csv_bytes(NPR_HEADER, rows, encoding="windows-1252")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda l: write_delivery(l, "npr", "2026-01-05", {"npr.csv": (_npr([npr_row(0)]), 1)},
                                  manifest_sha={"npr.csv": "0" * 64}), "npr/2026-01-05/npr.csv: sha256"),
        (lambda l: write_delivery(l, "npr", "2026-01-05", {"npr.csv": (_npr([npr_row(0)]), 1)},
                                  manifest_rows={"npr.csv": 2}), "1 data rows, but the manifest says 2"),
        (lambda l: write_delivery(l, "npr", "2026-01-05", {"npr.csv": (csv_bytes(NPR_HEADER[:-1], [npr_row(0)[:-1]], encoding="windows-1252"), 1)}),
         "missing required column emergency"),
        (lambda l: write_delivery(l, "npr", "2026-01-05", {"npr.csv": (_npr([npr_row(0)]).replace(b"J189", b"J1\x819"), 1)}),
         "byte 0x81 at offset"),
        (lambda l: write_delivery(l, "npr", "2026-01-05", {"npr.csv": (_npr([npr_row(0)]), 1)}, unlisted={"extra.csv": b"x"}),
         "file extra.csv is not listed in the manifest"),
        (lambda l: write_delivery(l, "mfr", "2026-01-05", {"births.csv": (csv_bytes(MFR_HEADER, [mfr_row(0)], ",").replace(b"0301", b"03\xff1"), 1)}),
         "bytes that do not decode as UTF-8"),
        (lambda l: write_delivery(l, "sysvak", "2026-01-05", {"v.jsonl": (jsonl_bytes([vacc(0)]).replace(b"J07BB02", b"J07\xc3B02"), 1)}),
         "bytes that do not decode as UTF-8"),
    ],
    ids=["checksum", "row_count", "missing_column", "undecodable_1252", "unlisted_file", "undecodable_utf8_csv", "undecodable_jsonl"],
)
def test_a_broken_delivery_is_rejected_whole_and_later_ones_still_load(env, make, message):
    make(env.landing)
    source = next(p.name for p in env.landing.iterdir())
    outcome = env.load(source, "2026-01-05")
    assert outcome.status == "rejected"
    assert message in outcome.message
    assert env.query("SELECT count(*) FROM loaded_deliveries") == [(0,)]
    table = {"npr": "npr_episodes", "mfr": "mfr_births", "sysvak": "sysvak_vaccinations"}[source]
    assert env.query(f"SELECT count(*) FROM {table}") == [(0,)]
    assert env.query("SELECT count(*) FROM quarantine") == [(0,)]
    # the next delivery of the same source still loads
    mfr_delivery(env, "2026-01-06", [mfr_row(0)])
    assert env.load("mfr", "2026-01-06").status == "loaded"


def test_a_folder_without_manifest_is_not_touched(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0)], manifest=False)
    outcome = env.load("mfr", "2026-01-05")
    assert outcome.status == "ignored"
    assert env.query("SELECT count(*) FROM mfr_births") == [(0,)]



def test_a_manifest_missing_a_field_is_rejected_naming_the_field_and_the_form(env):
    """A manifest written from a loose description ("each file's rows and sha256") lacks source
    and delivery_date: the rejection says which field and what a manifest holds."""
    folder = write_delivery(env.landing, "mfr", "2026-01-05", {"births.csv": (csv_bytes(MFR_HEADER, [mfr_row(0)], ","), 1)})
    manifest = json.loads((folder / "_manifest.json").read_text())
    (folder / "_manifest.json").write_text(json.dumps({"files": manifest["files"]}))
    outcome = env.load("mfr", "2026-01-05")
    assert outcome.status == "rejected"
    assert "mfr/2026-01-05/_manifest.json: not a valid manifest" in outcome.message
    assert "no field 'source'" in outcome.message and '"delivery_date": "YYYY-MM-DD"' in outcome.message

def test_a_rejection_message_never_quotes_row_content(env):
    # a ragged line containing an identifier inside an undecodable file
    data = csv_bytes(MFR_HEADER, [mfr_row(0)], ",") + f"b1,{IDS[5]},\xff\n".encode("latin-1")
    write_delivery(env.landing, "mfr", "2026-01-05", {"births.csv": (data, 2)})
    outcome = env.load("mfr", "2026-01-05")
    assert outcome.status == "rejected"
    assert IDS[5] not in outcome.message and IDS[0] not in outcome.message


# --- versions, idempotence, order ----------------------------------------------------------------

def test_the_same_delivery_twice_changes_nothing(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0), mfr_row(1, birth_date="bad")])
    assert env.load("mfr", "2026-01-05").status == "loaded"
    before = env.state()
    assert env.load("mfr", "2026-01-05").status == "already_loaded"
    assert env.load("mfr", "2026-01-05", force=True).status == "loaded"  # even a forced reload
    assert env.state() == before


def _sysvak_deliveries(landing: Path) -> list[str]:
    write_delivery(landing, "sysvak", "2026-01-05", {"a.jsonl": (jsonl_bytes([vacc(0), vacc(1), vacc(2)]), 3)})
    write_delivery(landing, "sysvak", "2026-01-06", {"a.jsonl": (jsonl_bytes([
        vacc(1, action="delete", registered_at="2026-01-06T09:00:00+01:00"),
        vacc(9, action="delete", fnr=None, vaccine_code=None, vaccination_date=None),  # never seen: recorded
        vacc(2, dose_number=2, registered_at="2026-01-06T08:00:00+01:00"),
        vacc(2, dose_number=3, registered_at="2026-01-06T08:30:00+01:00"),  # a later version, same day
    ]), 4)})
    write_delivery(landing, "sysvak", "2026-01-07", {"a.jsonl": (jsonl_bytes([
        vacc(1, registered_at="2026-01-07T09:00:00+01:00"),  # registered again after the delete
    ]), 1)})
    return ["2026-01-05", "2026-01-06", "2026-01-07"]


def test_versions_deletes_and_order_of_arrival(tmp_path):
    results = {}
    for order in itertools.permutations(range(3)):
        env = Env(tmp_path / "".join(map(str, order)))
        days = _sysvak_deliveries(env.landing)
        for i in order:
            assert env.load("sysvak", days[i]).status == "loaded"
        results[order] = (
            env.query("SELECT vaccination_id, dose_number FROM sysvak_vaccinations_current ORDER BY 1"),
            env.query("SELECT vaccination_id FROM sysvak_vaccinations_as_of('2026-01-06') ORDER BY 1"),
        )
    current, as_of_6 = results[(0, 1, 2)]
    assert current == [("v0", 1), ("v1", 1), ("v2", 3)]
    assert as_of_6 == [("v0",), ("v2",)]  # v1 deleted on the 6th, v9 never existed
    assert all(r == results[(0, 1, 2)] for r in results.values())


def _npr_deliveries(landing: Path) -> list[str]:
    d1 = [npr_row(0), npr_row(1), npr_row(2)]
    d2 = [npr_row(0, discharge_date="2026-01-05"), npr_row(2), npr_row(3, admission_date="2026-01-06")]  # e1 deleted
    d3 = [npr_row(0, discharge_date="2026-01-05", main_diagnosis="J209"), npr_row(2),
          npr_row(3, admission_date="2026-01-06"), npr_row(1)]  # e1 back, e0 corrected again
    days = ["2026-01-05", "2026-01-06", "2026-01-07"]
    for day, rows in zip(days, [d1, d2, d3]):
        write_delivery(landing, "npr", day, {"npr.csv": (_npr(rows), len(rows))})
    return days


def test_npr_cumulative_corrections_and_deletions_in_any_order(tmp_path):
    views = {}
    for order in itertools.permutations(range(3)):
        env = Env(tmp_path / "".join(map(str, order)))
        days = _npr_deliveries(env.landing)
        for i in order:
            assert_accounts(env.load("npr", days[i]))
        views[order] = {
            day: env.query(f"SELECT episode_id, discharge_date, main_diagnosis FROM npr_episodes_as_of('{day}') ORDER BY 1")
            for day in days
        }
        views[order]["stored"] = env.query("SELECT count(*) FROM npr_episodes")
    v = views[(0, 1, 2)]
    assert [e[0] for e in v["2026-01-05"]] == ["e0", "e1", "e2"]
    assert v["2026-01-06"] == [("e0", date(2026, 1, 5), "J189"), ("e2", None, "J189"), ("e3", None, "J189")]
    assert v["2026-01-07"][0] == ("e0", date(2026, 1, 5), "J209")
    assert [e[0] for e in v["2026-01-07"]] == ["e0", "e1", "e2", "e3"]
    # only changes are stored: 3 + (e0 corrected, e1 deleted, e3 new) + (e0 corrected, e1 back)
    assert v["stored"] == [(3 + 3 + 2,)]
    assert all(x == v for x in views.values())


def test_a_quarantined_npr_row_is_not_a_deletion(env):
    write_delivery(env.landing, "npr", "2026-01-05", {"npr.csv": (_npr([npr_row(0), npr_row(1)]), 2)})
    write_delivery(env.landing, "npr", "2026-01-06", {"npr.csv": (_npr([npr_row(0), npr_row(1, main_diagnosis="?")]), 2)})
    env.load("npr", "2026-01-05")
    env.load("npr", "2026-01-06")
    assert env.query("SELECT episode_id FROM npr_episodes_current ORDER BY 1") == [("e0",), ("e1",)]


def test_a_resent_delivery_with_new_content_replaces_the_earlier_load(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0), mfr_row(1)])
    env.load("mfr", "2026-01-05")
    mfr_delivery(env, "2026-01-05", [mfr_row(0, birth_weight_g=3000)])
    assert env.load("mfr", "2026-01-05").status == "loaded"
    assert env.query("SELECT birth_id, birth_weight_g FROM mfr_births") == [("b0", 3000)]


def test_msis_lab_drops_identity_of_negative_results_before_anything_else(env):
    header = ["lab_result_id", "fnr", "lab_id", "pathogen", "method", "sampling_date", "result", "kommune_nr"]
    rows = [["l1", IDS[0], "lab1", "rsv", "pcr", "2026-01-04", "positive", "0301"],
            ["l2", IDS[1], "lab1", "rsv", "pcr", "2026-01-04", "negative", "0301"],
            ["l3", IDS[2], "lab1", "rsv", "pcr", "not a date", "inconclusive", "0301"],   # quarantined
            ["l4", break_check_digit(IDS[3]), "lab1", "rsv", "pcr", "2026-01-04", "negative", "0301"]]  # not for its id
    write_delivery(env.landing, "msis_lab", "2026-01-05", {"lab.csv": (csv_bytes(header, rows), 4)})
    outcome = env.load("msis_lab", "2026-01-05")
    assert (outcome.rows_loaded, outcome.rows_quarantined) == (3, 1)
    assert env.query("SELECT lab_result_id, fnr FROM msis_lab_results ORDER BY 1") == [("l1", IDS[0]), ("l2", None), ("l4", None)]
    [(record,)] = env.query("SELECT record FROM quarantine")
    assert IDS[2] not in record and '"fnr":null' in record.replace(" ", "")


# --- crash safety -----------------------------------------------------------------------------

def test_a_killed_load_leaves_the_previous_state(env):
    mfr_delivery(env, "2026-01-05", [mfr_row(0)])
    env.load("mfr", "2026-01-05")
    before = env.state()
    mfr_delivery(env, "2026-01-06", [mfr_row(i) for i in range(1, 10)])
    # The child is killed with SIGKILL after the rows are inserted, before the commit.
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import stat19.ingest as ingest
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        ingest._log = die
        from test_ingest import Env
        Env(__import__('pathlib').Path({str(env.landing.parent)!r})).load("mfr", "2026-01-06")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert env.state() == before
    assert env.load("mfr", "2026-01-06").status == "loaded"  # and the next run completes it
    assert env.query("SELECT count(*) FROM mfr_births") == [(10,)]
