"""No identifier outside the vault; no identifier of a negative lab result anywhere."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from stat19.cli import main
from stat19.specs import source_specs
from stat19.synth import generate

ELEVEN_DIGITS = re.compile(rb"(?<![0-9])[0-9]{11}(?![0-9])")


def _read_rows(spec, path: Path) -> pl.DataFrame:
    """A delivered file as text columns, tolerating the bad input the generator injects."""
    if spec.format == "parquet":
        try:
            return pl.read_parquet(path)
        except Exception:  # a deliberately corrupted file: rejected, so none of it is stored
            return pl.DataFrame()
    text = path.read_bytes().decode(spec.encoding, errors="replace")
    if spec.format == "jsonl":
        rows = []
        for line in text.splitlines():
            try:
                rows.append({k: (None if v is None else str(v)) for k, v in json.loads(line).items()})
            except (ValueError, AttributeError):
                continue
        return pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame()
    return pl.read_csv(text.encode(), separator=spec.delimiter, infer_schema=False, truncate_ragged_lines=True)


def landing_identifiers(landing: Path) -> tuple[set[str], set[str]]:
    """All person identifiers delivered, and those that occur only in negative or inconclusive results."""
    everywhere: set[str] = set()
    positive_or_elsewhere: set[str] = set()
    negative: set[str] = set()
    for spec in source_specs().values():
        for path in sorted((landing / spec.name).glob("*/*")):
            table = spec.table_for(path.name)
            if table is None or path.name == "_manifest.json":
                continue
            frame = _read_rows(spec, path)
            for column in table.person_id_columns:
                if column not in frame.columns:
                    continue
                values = frame[column].cast(pl.String)
                ids = {v for v in values.drop_nulls() if v}
                everywhere |= ids
                if table.keep_identity_when and "result" in frame.columns:
                    hidden = frame.filter(pl.col("result").is_in(["negative", "inconclusive"]))[column].drop_nulls()
                    negative |= set(hidden)
                    positive_or_elsewhere |= set(frame.filter(pl.col("result") == "positive")[column].drop_nulls())
                else:
                    positive_or_elsewhere |= ids
    return everywhere, negative - positive_or_elsewhere


def duckdb_text(path: Path) -> set[str]:
    """Every text value (list elements included) in every table of a DuckDB file."""
    found: set[str] = set()
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'VARCHAR[]', 'JSON') AND table_schema = 'main'"
        ).fetchall()
        for table, column, dtype in columns:
            expr = f'unnest("{column}")' if dtype.endswith("[]") else f'CAST("{column}" AS VARCHAR)'
            found |= {r[0] for r in con.execute(f'SELECT DISTINCT {expr} FROM "{table}"').fetchall() if r[0]}
    finally:
        con.close()
    return found


def tokens(text_values: set[str]) -> set[str]:
    """Every run of exactly 11 digits inside the values (catches identifiers inside JSON or messages)."""
    return {m.decode() for v in text_values for m in ELEVEN_DIGITS.findall(v.encode())}


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("privacy")
    landing, home = root / "landing", root / "home"
    generate(landing, persons=1500, start=date(2026, 1, 5), days=4, seed=5, error_rate=0.01)
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    return landing, home


def test_no_identifier_outside_the_vault(pipeline_home, monkeypatch):
    landing, home = pipeline_home
    identifiers, _ = landing_identifiers(landing)
    assert len(identifiers) > 1000
    leaks: dict[str, set[str]] = {}
    scanned = 0
    for path in home.rglob("*"):
        if not path.is_file() or path.is_relative_to(home / "vault") or path.is_relative_to(home / "secrets"):
            continue
        if path.suffix == ".duckdb":
            found = tokens(duckdb_text(path)) | duckdb_text(path)
        else:
            found = {m.decode() for m in ELEVEN_DIGITS.findall(path.read_bytes())}
        scanned += 1
        if found & identifiers:
            leaks[str(path.relative_to(home))] = found & identifiers
    assert scanned >= 4  # reports, the linked snapshot, the Dagster instance
    assert (home / "linked" / "current.duckdb").exists()
    assert leaks == {}


def lab_identifiers(landing: Path) -> tuple[set[str], set[str]]:
    """Identifiers delivered with positive results, and with negative or inconclusive ones."""
    spec = source_specs()["msis_lab"]
    positive, hidden = set(), set()
    for path in sorted((landing / "msis_lab").glob("*/*.csv")):
        frame = _read_rows(spec, path)
        if {"fnr", "result"} <= set(frame.columns):
            positive |= set(frame.filter(pl.col("result") == "positive")["fnr"].drop_nulls())
            hidden |= set(frame.filter(pl.col("result") != "positive")["fnr"].drop_nulls())
    return positive, hidden


def test_no_identifier_of_a_negative_lab_result_anywhere(pipeline_home):
    landing, home = pipeline_home
    positive, hidden = lab_identifiers(landing)
    assert len(hidden) > 20, "the generator delivers negative results with identifiers"
    con = duckdb.connect(str(home / "vault" / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM msis_lab_results WHERE result <> 'positive'").fetchone()[0] > 20
        assert con.execute("SELECT count(*) FROM msis_lab_results WHERE result <> 'positive' AND fnr IS NOT NULL").fetchone()[0] == 0
        stored = {r[0] for r in con.execute("SELECT fnr FROM msis_lab_results WHERE fnr IS NOT NULL").fetchall()}
        records = [r[0] for r in con.execute("SELECT CAST(record AS VARCHAR) FROM quarantine WHERE source = 'msis_lab'").fetchall()]
    finally:
        con.close()
    in_quarantine = tokens(set(records))
    # every identifier the lab tables keep came with a positive result
    assert stored | in_quarantine <= positive
    assert not (hidden - positive) & (stored | in_quarantine)
    for record in map(json.loads, records):
        if record.get("result") != "positive":
            assert record.get("fnr") is None
    linked = duckdb.connect(str(home / "linked" / "current.duckdb"), read_only=True)
    try:
        assert linked.execute("SELECT count(*) FROM lab_results WHERE result <> 'positive' AND pid IS NOT NULL").fetchone()[0] == 0
    finally:
        linked.close()


def test_the_scan_would_see_a_leak(pipeline_home, tmp_path):
    """The scanner itself finds an identifier placed in a DuckDB table and in a text file."""
    landing, _ = pipeline_home
    identifiers, _ = landing_identifiers(landing)
    planted = sorted(identifiers)[0]
    db = tmp_path / "x.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT ? AS note, [?] AS l", [f"row of {planted}", planted])
    con.close()
    assert planted in tokens(duckdb_text(db))
    assert planted.encode() in ELEVEN_DIGITS.findall(f"x;{planted};y".encode())
