"""No identifier outside the vault; no identifier of a negative lab result anywhere."""

from __future__ import annotations

import hashlib
import json
import os
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


# under `make test` (pytest-xdist, --dist loadgroup) the tests of pipeline_home stay on one
# worker, which builds it once
PIPELINE_HOME = pytest.mark.xdist_group("privacy_pipeline_home")


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("privacy")
    landing, home = root / "landing", root / "home"
    generate(landing, persons=1500, start=date(2026, 1, 5), days=4, seed=5, error_rate=0.01)
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    return landing, home


@PIPELINE_HOME
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


@PIPELINE_HOME
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


@PIPELINE_HOME
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


# --- stat19 query is read-only, whatever the SQL ---------------------------------------------

def _writing_statements(home: Path, target: Path) -> list[str]:
    snapshot = home / "linked" / "current.duckdb"
    vault = home / "vault" / "warehouse.duckdb"
    return [
        f"COPY (SELECT 'x') TO '{snapshot}' (FORMAT csv, USE_TMP_FILE false)",  # the attack
        f"COPY persons TO '{target}'",
        f"COPY persons FROM '{target}'",
        f"EXPORT DATABASE '{target.parent / 'export'}'",
        f"IMPORT DATABASE '{target.parent / 'export'}'",
        f"ATTACH '{vault}' AS vault",
        f"ATTACH '{target}.duckdb' AS other",
        "DETACH current",
        "USE system",
        "INSTALL httpfs",
        "LOAD httpfs",
        "UPDATE EXTENSIONS",
        "SET enable_external_access = true",
        "SET GLOBAL lock_configuration = false",
        "RESET threads",
        "PRAGMA enable_profiling",
        "CALL pragma_version()",
        "CHECKPOINT",
        "VACUUM",
        "ANALYZE",
        "BEGIN TRANSACTION",
        "CREATE TABLE t AS SELECT * FROM persons",
        "CREATE TEMP TABLE t AS SELECT 1 AS x",
        "CREATE VIEW v AS SELECT 1 AS x",
        "CREATE OR REPLACE TEMP MACRO m(x) AS x",
        "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')",
        "CREATE SEQUENCE q",
        "CREATE TYPE mood AS ENUM ('a')",
        "CREATE INDEX i ON persons (pid)",
        "INSERT INTO persons (pid) VALUES ('x')",
        "UPDATE persons SET sex = 'x'",
        "DELETE FROM persons",
        "TRUNCATE persons",
        "MERGE INTO persons USING persons AS p ON persons.pid = p.pid WHEN MATCHED THEN DELETE",
        "ALTER TABLE persons ADD COLUMN leak VARCHAR",
        "COMMENT ON TABLE persons IS 'x'",
        "DROP TABLE persons",
        "PREPARE p AS SELECT 1",
        "EXECUTE p",
        "DEALLOCATE p",
        "EXPLAIN ANALYZE SELECT 1",
        "PIVOT persons ON sex",  # creates an ENUM type first: two statements in one
        f"SELECT 1; COPY (SELECT 1) TO '{target}'",
        "SELECT 1; DROP TABLE persons",
        # single SELECTs that would reach other files: refused by the connection itself
        f"SELECT * FROM read_csv('{home / 'reports' / 'deliveries.csv'}')",
        f"SELECT * FROM read_blob('{vault}')",
        f"SELECT * FROM query('COPY (SELECT 1) TO ''{target}''')",
        f"SELECT * FROM glob('{home}/*')",
    ]


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "dagster" not in p.parts}


@PIPELINE_HOME
def test_stat19_query_refuses_every_writing_statement(pipeline_home, tmp_path, capsys):
    _, home = pipeline_home
    target = tmp_path / "out.csv"
    before = _digests(home)
    for sql in _writing_statements(home, target):
        code = main(["query", "--home", str(home), sql])
        err = capsys.readouterr().err
        assert code != 0, sql
        assert "stat19 query:" in err and "Traceback" not in err, (sql, err)
    assert list(tmp_path.iterdir()) == []  # nothing written, exported or attached
    assert _digests(home) == before  # the snapshot, the vault and everything else unchanged
    # and it still answers a read
    assert main(["query", "--home", str(home), "SELECT count(*) AS n FROM persons"]) == 0
    assert int(capsys.readouterr().out.splitlines()[1]) > 1000


@PIPELINE_HOME
def test_reads_of_every_kind_are_allowed(pipeline_home, capsys):
    _, home = pipeline_home
    for sql in ["WITH p AS (SELECT * FROM persons) SELECT count(*) FROM p", "FROM persons LIMIT 1",
                "VALUES (1)", "DESCRIBE persons", "SHOW TABLES", "SUMMARIZE persons",
                "SELECT count(*) FROM residences_as_of(DATE '2026-01-06')",
                "SELECT 1 UNION ALL SELECT 2", "SELECT 1;"]:
        assert main(["query", "--home", str(home), sql]) == 0, sql
    capsys.readouterr()


@PIPELINE_HOME
def test_the_connection_refuses_writes_even_without_the_statement_check(pipeline_home, tmp_path):
    """Defence in depth: were the statement check to let something through, the connection itself
    (read-only, no external access, locked configuration) still refuses to write, attach, load or
    set. Not COPY ... TO the snapshot's own path, which DuckDB allows a connection whatever its
    settings (tried): that is why the statement check exists, and why the snapshot file is
    read-only by mode (see test_zone_modes)."""
    from stat19.linkage import read_linked
    from stat19.paths import Home
    from stat19.query import _lock_down

    _, home = pipeline_home
    before = _digests(home)
    harmless = ("SELECT 1;", "EXPLAIN", "PREPARE", "DEALLOCATE", "EXECUTE", "CALL", "CHECKPOINT", "VACUUM",
                "ANALYZE", "BEGIN", "PIVOT", "CREATE TEMP", "CREATE OR REPLACE TEMP", "DETACH", "USE")
    for sql in _writing_statements(home, tmp_path / "out.csv")[1:]:
        if sql.startswith(harmless):
            continue  # on a read-only connection these change nothing, or only this connection's memory
        with read_linked(Home(home)) as con:
            _lock_down(con)
            with pytest.raises(duckdb.Error):
                con.execute(sql)
    assert list(tmp_path.iterdir()) == []
    assert _digests(home) == before


@PIPELINE_HOME
def test_query_binds_parameters(pipeline_home):
    from stat19.query import linked

    _, home = pipeline_home
    total = linked(home, "SELECT count(*) FROM persons").item()
    after = linked(home, "SELECT count(*) FROM persons WHERE birth_year >= ?", [1980]).item()
    named = linked(home, "SELECT count(*) FROM persons WHERE birth_year >= $year", {"year": 1980}).item()
    assert 0 < after == named < total
    hostile = "x' OR '1'='1"  # a value is never SQL
    assert linked(home, "SELECT count(*) FROM persons WHERE pid = ?", [hostile]).item() == 0


# --- zone modes and the pseudonym key ----------------------------------------------------------

@PIPELINE_HOME
def test_zone_modes(pipeline_home):
    """After `stat19 run`: vault 0700; nothing outside it world-readable; the snapshot read-only."""
    import stat

    _, home = pipeline_home
    assert stat.S_IMODE((home / "vault").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "linked" / "current.duckdb").stat().st_mode) == 0o440
    for zone, dir_mode, file_mode in [("linked", 0o750, 0o440), ("published", 0o750, 0o640), ("reports", 0o750, 0o640)]:
        paths = [home / zone, *(home / zone).rglob("*")]
        assert len(paths) > 1, zone
        for path in paths:
            assert stat.S_IMODE(path.stat().st_mode) == (dir_mode if path.is_dir() else file_mode), path


def test_zone_modes_are_configurable(tmp_path, monkeypatch):
    import stat

    from stat19.paths import Home
    from stat19.zones import ZoneConfigError, apply_zone_modes

    home = Home(tmp_path / "home").ensure()
    (home.published / "p").mkdir()
    (home.published / "p" / "data.csv").write_text("x")
    monkeypatch.setenv("STAT19_PUBLISHED_MODE", "0755")
    monkeypatch.setenv("STAT19_PUBLISHED_FILE_MODE", "0644")
    monkeypatch.setenv("STAT19_STATS_GROUP", str(os.getgid()))
    apply_zone_modes(home)
    assert stat.S_IMODE((home.published / "p").stat().st_mode) == 0o755
    assert stat.S_IMODE((home.published / "p" / "data.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE(home.vault.stat().st_mode) == 0o700
    monkeypatch.setenv("STAT19_VAULT_MODE", "rwx")
    with pytest.raises(ZoneConfigError, match="STAT19_VAULT_MODE"):
        apply_zone_modes(home)
    monkeypatch.setenv("STAT19_VAULT_MODE", "0700")
    monkeypatch.setenv("STAT19_LINKED_GROUP", "no-such-group-here")
    with pytest.raises(ZoneConfigError, match="no such group"):
        apply_zone_modes(home)


def test_short_key_refused_and_changed_key_announced(tmp_path, monkeypatch, capsys):
    landing, home = tmp_path / "landing", tmp_path / "home"
    generate(landing, persons=300, start=date(2026, 3, 2), days=1, seed=23, error_rate=0.0, delivery_faults=False)
    args = ["run", "--landing", str(landing), "--home", str(home)]
    first, second = "k" * 32, "another key of enough length, 40 bytes."
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", first)
    assert main(args) == 0
    assert "key has changed" not in capsys.readouterr().out
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", second)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "The pseudonym key has changed" in out and second not in out
    assert main(args) == 0
    assert "key has changed" not in capsys.readouterr().out  # announced once, not on every run
    short = "thirty-one bytes is not enough."
    assert len(short) == 31
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", short)
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "31 bytes; at least 32 are required" in captured.err
    assert short not in captured.out + captured.err
