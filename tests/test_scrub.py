"""No identifier outside the vault, whatever the field: every text column declares its kind, and
free text is scrubbed (identifier-shaped tokens masked) or kept in the vault on its way to the
linked zone."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import break_check_digit
from stat19 import identifiers as ids
from stat19.synth.ids import make_ids
from stat19.cli import main
from stat19.db import install_macros, render, run_script
from stat19.paths import SQL_DIR
from stat19.specs import SourceSpec, Table, population_source, source_specs
from test_privacy import duckdb_text

SEPARATORS = ["", " ", ".", "-", " - ", ". ", "\u00a0", "\u2013", "  "]
# Text around a token: no digits, so the token is exactly the identifier and its separators.
FILLER = st.text(st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="\x00"), max_size=30)


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    install_macros(c)
    yield c
    c.close()


def scrub(con, text):
    return con.execute("SELECT s19_scrub(?)", [text]).fetchone()[0]


def some_id(seed: int, kind: str, model: str) -> str:
    rng = np.random.default_rng(seed)
    birth = np.array([np.datetime64("1930-01-01") + int(rng.integers(0, 365 * 100))], dtype="datetime64[D]")
    return str(make_ids(rng, birth, np.array(["female"]), kind=kind, model=model)[0])


@st.composite
def separated(draw, digits: str) -> str:
    """The digits with a random separator (or none) between any two of them."""
    seps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(digits) - 1, max_size=len(digits) - 1))
    return digits[0] + "".join(s + d for s, d in zip(seps, digits[1:]))


@st.composite
def valid_ids(draw) -> str:
    return some_id(draw(st.integers(0, 2**32)), draw(st.sampled_from(ids.KINDS)), draw(st.sampled_from(ids.MODELS)))


# --- the macro -----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), before=FILLER, after=FILLER)
def test_a_valid_identifier_in_text_is_masked(con, data, before, after):
    fnr = data.draw(valid_ids())
    assert ids.is_valid(fnr)
    token = data.draw(separated(fnr))
    assert scrub(con, before + token + after) == before + "[fnr]" + after


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_record_key_the_scrubber_masks_is_one_the_record_key_rule_refuses(con, data):
    """identifier_in_key (sql/ingest/check.sql.j2) strips the scrubber's separators: no key with
    an identifier written in any way the scrubber knows reaches the linked zone unmasked."""
    key = data.draw(separated(data.draw(valid_ids())))
    masked, refused = con.execute("SELECT s19_scrub(?), s19_id_valid(s19_strip_separators(?))", [key, key]).fetchone()
    assert (masked, refused) == ("[fnr]", True), key


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), before=FILLER, after=FILLER)
def test_a_wrong_check_digit_is_not_masked(con, data, before, after):
    fnr = data.draw(valid_ids())
    wrong = break_check_digit(fnr)  # K2 off: invalid under both models
    assert not ids.is_valid(wrong)
    text = before + data.draw(separated(wrong)) + after
    assert scrub(con, text) == text


def _has_valid_window(text: str) -> bool:
    digits = re.sub(r"[^0-9]", "", text)
    return any(ids.is_valid(digits[i:i + 11]) for i in range(len(digits) - 10))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(st.sampled_from(list("0123456789 .-abc/;\u00a0\u2013")), max_size=60) | FILLER)
def test_text_without_a_valid_window_is_unchanged(con, text):
    # the scrubber's tokens are runs of the text's digits, so none can hold a valid window either
    if _has_valid_window(text):
        return
    assert scrub(con, text) == text


def test_examples(con):
    fnr = some_id(1, "fnr", "old")
    new = some_id(2, "fnr", "new")
    assert ids.check_model(new) in ("new", "old")
    assert scrub(con, f"ring {fnr[:6]} {fnr[6:]} i dag") == "ring [fnr] i dag"
    assert scrub(con, f"{fnr[:2]}.{fnr[2:4]}.{fnr[4:6]}-{fnr[6:]}, {new}") == "[fnr], [fnr]"
    assert scrub(con, f"x{fnr}y") == "x[fnr]y"  # glued to letters: still masked
    assert scrub(con, f"99{fnr}") == "[fnr]"  # a longer number holding an identifier: all of it
    assert scrub(con, fnr[:10]) == fnr[:10]  # 10 digits
    assert scrub(con, "Helse Møre og Romsdal HF") == "Helse Møre og Romsdal HF"
    assert scrub(con, None) is None and scrub(con, "") == ""
    assert con.execute("SELECT s19_scrub_list(?)", [[fnr, "2ad"]]).fetchone()[0] == ["[fnr]", "2ad"]


# --- the spec: every text column declares its kind -------------------------------------------

def _spec(**column) -> dict:
    return {"name": "demo", "title": "Demo", "delivery_kind": "incremental", "format": "parquet",
            "tables": [{"name": "demo_rows", "file": "*.parquet", "key": ["row_id"], "columns": [
                {"name": "row_id", "type": "string", "record_id": True},
                {"name": "fnr", "type": "person_id"},
                {"name": "note", **column}]}]}


@pytest.mark.parametrize("column, message", [
    ({"type": "string"}, "declared as none"),
    ({"type": "string_list"}, "declared as none"),
    ({"type": "string", "values": ["a"], "free_text": "scrub"}, "declared as a code (values or code_system) and free text"),
    ({"type": "string", "record_id": True, "free_text": "vault_only"}, "record key (record_id: true) and free text"),
])
def test_a_text_column_without_exactly_one_kind_is_refused(column, message):
    with pytest.raises(ValueError, match="source demo, table demo_rows, column note: a .* column must be declared") as err:
        SourceSpec.model_validate(_spec(**column))
    assert message in str(err.value)


def test_declared_kinds_are_accepted_and_only_on_text():
    for column in [{"type": "string", "free_text": "scrub"}, {"type": "string", "free_text": "vault_only"},
                   {"type": "string", "code_system": "icd10"}, {"type": "string_list", "free_text": "scrub"},
                   {"type": "string", "record_id": True}, {"type": "date"}]:
        SourceSpec.model_validate(_spec(**column))
    with pytest.raises(ValueError, match="column note: record_id and free_text are for string columns"):
        SourceSpec.model_validate(_spec(type="integer", free_text="scrub"))
    with pytest.raises(ValueError, match="free_text"):
        SourceSpec.model_validate(_spec(type="string", free_text="keep"))


def test_every_text_column_of_every_source_declares_its_kind():
    # (the validator already insists; this shows which columns are free text today)
    free = {(s.name, c.name): c.free_text for s in source_specs().values() for t in s.tables
            for c in t.columns if c.free_text}
    assert free == {("daar", "place_of_death"): "scrub", ("kpr", "takst"): "scrub", ("lmr", "prescriber_type"): "scrub",
                    ("msis_lab", "lab_id"): "scrub", ("npr", "health_trust"): "scrub"}


def test_linked_templates_read_the_vault_only_through_the_linkable_views():
    # the vault objects without free text, and the linked zone's own tables and macros
    allowed = re.compile(r"^(\w+_linkable|person_pids|person_facts|ref_kommune_map|residence_versions|residences_as_of)$")
    population = population_source().population  # names of the population register's tables
    for path in (SQL_DIR / "linked").glob("*.sql.j2"):
        # as written and as rendered (a template may take its table names from a spec)
        text = path.read_text() + ("" if path.name.startswith("_") else
                                   render(f"linked/{path.name}", population=population))
        names = re.findall(r"\b(?:FROM|JOIN)\s+\"?([a-z_][a-z0-9_]*)", text)
        assert names or path.name.startswith("_"), path.name
        assert [n for n in names if not allowed.match(n)] == [], path.name


def test_linkable_views_scrub_and_leave_out(con):
    """A vault_only column is not in the view the linked zone reads; a scrub column is masked."""
    table = Table.model_validate({"name": "demo_rows", "file": "*", "key": ["row_id"], "columns": [
        {"name": "row_id", "type": "string", "record_id": True},
        {"name": "note", "type": "string", "free_text": "scrub"},
        {"name": "secret_note", "type": "string", "free_text": "vault_only"},
        {"name": "tags", "type": "string_list", "free_text": "scrub"}]})
    fnr = some_id(3, "dnr", "new")
    con.execute("CREATE TABLE demo_rows AS SELECT 'r1' AS row_id, ? AS note, ? AS secret_note, [?, 'b'] AS tags, "
                "DATE '2026-01-05' AS _delivery_date, false AS _deleted", [f"see {fnr}", fnr, fnr])
    con.execute("CREATE VIEW demo_rows_versions AS SELECT * FROM demo_rows")
    run_script(con, render("linkage/linkable.sql.j2", tables=[("demo", table)]))
    view = con.execute("SELECT * FROM demo_rows_linkable")
    assert [d[0] for d in view.description] == ["row_id", "note", "tags", "_delivery_date", "_deleted"]
    assert view.fetchall() == [("r1", "see [fnr]", ["[fnr]", "b"], date(2026, 1, 5), False)]
    assert con.execute("SELECT source, table_name, delivery_date, masked_identifiers FROM masked_identifiers").fetchall() \
        == [("demo", "demo_rows", date(2026, 1, 5), 2)]


# --- end to end: plant identifiers in every text column of every source ----------------------

TOKEN = re.compile(rb"[0-9](?:[^0-9A-Za-z\n]{0,3}[0-9])*")


def planted_found(texts: list[bytes], planted: set[str]) -> set[str]:
    """The planted identifiers whose digits occur in a run of digits (separators allowed) of the texts."""
    found = set()
    for text in texts:
        for token in TOKEN.findall(text):
            digits = re.sub(rb"[^0-9]", b"", token).decode()
            found |= {digits[i:i + 11] for i in range(len(digits) - 10)} & planted
    return found


def _plant_value(value, column_type: str, token: str):
    if column_type == "string_list":
        return [*(value or []), f"nr {token}"]
    return f"{value or ''} ref {token}"


def plant(landing: Path, seed: int = 7) -> tuple[dict[tuple[str, str], set[str]], dict[str, int]]:
    """Write a valid identifier (random kind, model and separators) into every third row of every
    free-text column of every delivered file, and in place of about one record key in five (the
    same record gets the same one in every delivery, as a register would send it); returns the
    identifiers planted per source and column (keys under (source, "<key>")) and the rows whose
    key was replaced, per source."""
    rng = np.random.default_rng(seed)
    planted: dict[tuple[str, str], set[str]] = {}
    # the planted identifiers, drawn up front: every kind, both check-digit models
    n = 20_000
    births = np.datetime64("1940-01-01") + rng.integers(0, 365 * 80, n).astype("timedelta64[D]")
    sexes = rng.choice(np.array(["male", "female"]), n)
    pool = iter(rng.permutation(np.concatenate([make_ids(rng, births, sexes, kind=kind, model=model)
                                                for kind in ids.KINDS for model in ids.MODELS])).tolist())

    def token() -> tuple[str, str]:
        fnr = next(pool)
        seps = rng.choice(np.array(SEPARATORS), 10)
        return fnr, fnr[0] + "".join(s + d for s, d in zip(seps, fnr[1:]))

    as_key: dict[str, tuple[str, str]] = {}  # original record key -> its planted identifier
    keys_replaced: dict[str, int] = {}
    for spec in source_specs().values():
        for manifest_path in sorted((landing / spec.name).glob("*/_manifest.json")):
            manifest = json.loads(manifest_path.read_text())
            for entry in manifest["files"]:
                path = manifest_path.parent / entry["name"]
                table = spec.table_for(path.name)
                columns = [c for c in table.columns if c.free_text] if table else []
                keys = [c for c in table.columns if c.record_id] if table else []
                if not columns and not keys:
                    continue
                rows = _read(spec, path)
                if not rows:
                    continue
                for i, row in enumerate(rows):
                    for c in columns:
                        if i % 3 == 0:
                            fnr, text = token()
                            row[c.name] = _plant_value(row[c.name], c.type, text)
                            planted.setdefault((spec.name, c.name), set()).add(fnr)
                    for c in keys:
                        original = str(row[c.name])
                        if int(hashlib.sha256(original.encode()).hexdigest(), 16) % 5 == 1:
                            fnr, row[c.name] = as_key.setdefault(original, token())
                            planted.setdefault((spec.name, "<key>"), set()).add(fnr)
                            keys_replaced[spec.name] = keys_replaced.get(spec.name, 0) + 1
                _write(spec, path, rows)
                entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            manifest_path.write_text(json.dumps(manifest))
    return planted, keys_replaced


def _read(spec, path: Path) -> list[dict]:
    if spec.format == "parquet":
        return pq.read_table(path).to_pylist()
    text = path.read_bytes().decode(spec.encoding)
    if spec.format == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text), delimiter=spec.delimiter))


def _write(spec, path: Path, rows: list[dict]) -> None:
    if spec.format == "parquet":
        pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    elif spec.format == "jsonl":
        path.write_bytes("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode(spec.encoding))
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), delimiter=spec.delimiter, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        path.write_bytes(out.getvalue().encode(spec.encoding))


def test_planted_identifiers_never_leave_the_vault(tmp_path):
    landing, home = tmp_path / "landing", tmp_path / "home"
    # (3000 persons over 12 days: enough for a few deaths, whose place_of_death is free text)
    assert main(["synth", "--persons", "3000", "--start", "2026-01-05", "--days", "12", "--out", str(landing),
                 "--seed", "8", "--error-rate", "0", "--no-delivery-faults"]) == 0
    planted_by_column, keys_replaced = plant(landing)
    free_text = {(s.name, c.name) for s in source_specs().values() for t in s.tables for c in t.columns if c.free_text}
    # every free-text column of every source got some, and the record keys of every source with
    # more than a few rows (3,000 persons bring no birth and two msis cases in 12 days)
    assert set(planted_by_column) - {(s, "<key>") for s in keys_replaced} == free_text
    assert {"sysvak", "msis_lab", "npr", "kpr", "lmr"} <= set(keys_replaced)
    planted = set().union(*planted_by_column.values())
    assert len(planted) > 1000
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    # A record key holding an identifier is quarantined, every one (the key would pass unchanged)
    quarantine = pl.read_csv(home / "reports" / "quarantine.csv")
    refused = quarantine.filter(pl.col("reason") == "identifier_in_key").group_by("source").agg(pl.col("rows").sum())
    assert dict(refused.iter_rows()) == keys_replaced

    # The scan finds them where they may be: the vault keeps the delivered text as it came.
    vault = home / "vault" / "warehouse.duckdb"
    in_vault = planted_found([v.encode() for v in duckdb_text(vault)], planted)
    assert len(in_vault) > 0.9 * len(planted)
    for column, fnrs in planted_by_column.items():
        assert fnrs & in_vault, column

    # ... and nowhere else: every file and every text value of every DuckDB table outside the vault.
    leaks, scanned = {}, 0
    for path in home.rglob("*"):
        if not path.is_file() or path.is_relative_to(home / "vault") or path.is_relative_to(home / "secrets"):
            continue
        texts = [path.read_bytes()]
        if path.suffix == ".duckdb":
            texts += [v.encode() for v in duckdb_text(path)]
        scanned += 1
        if found := planted_found(texts, planted):
            leaks[str(path.relative_to(home))] = len(found)
    assert scanned >= 4 and (home / "linked" / "current.duckdb").exists()
    assert leaks == {}

    # The masked values reached the linked zone as [fnr], and the linkage report counts them.
    report = pl.read_csv(home / "reports" / "linkage.csv", try_parse_dates=True)
    per_table = report.unique(["source", "table_name", "delivery_date"])  # repeated per identifier column
    linked = duckdb.connect(str(home / "linked" / "current.duckdb"), read_only=True)
    try:
        for spec in source_specs().values():
            for t in spec.tables:
                columns = [c for c in t.columns if c.free_text == "scrub"]
                counted = per_table.filter((pl.col("source") == spec.name) & (pl.col("table_name") == t.name))
                if not columns:
                    assert counted["masked_identifiers"].sum() == 0, t.name
                    continue
                masked = 0
                for c in columns:
                    [(target,)] = linked.execute("SELECT table_name FROM information_schema.columns "
                                                 "WHERE column_name = ? AND table_schema = 'main'", [c.name]).fetchall()
                    expr = f"array_to_string({c.name}, ' ')" if c.type == "string_list" else c.name
                    masked += linked.execute(f"SELECT count(*) FROM {target} WHERE {expr} LIKE '%[fnr]%'").fetchone()[0]
                assert masked > 0, t.name
                assert counted["masked_identifiers"].sum() == masked, t.name
                assert (counted["masked_identifiers"] > 0).all(), t.name  # every delivery date had some
    finally:
        linked.close()


def test_the_scanner_sees_separated_identifiers():
    fnr = some_id(4, "fnr", "old")
    assert planted_found([f"a;{fnr[:6]} {fnr[6:]};b".encode()], {fnr}) == {fnr}
    assert planted_found([f"x{fnr[:2]}.{fnr[2:4]}.{fnr[4:]}".encode()], {fnr}) == {fnr}
    assert planted_found([b"nothing here", fnr[:10].encode()], {fnr}) == set()
