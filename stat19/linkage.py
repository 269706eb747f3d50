"""Linking the registers on the person, pseudonymising, and publishing the linked zone.

1. Identity resolution (sql/linkage/identity.sql.j2): every identifier any source delivered is
   followed through the id_changes chain to the person's current identifier; forks and cycles are
   reported, never fatal.
2. Pseudonyms: HMAC-SHA-256 of the current identifier under a secret key, computed in DuckDB and
   cached in the vault (recomputed for everyone if the key changes: another key, nothing links).
3. The linked model (sql/linked/*.sql.j2, one table per concept) reads the vault tables through
   sql/linkage/linkable.sql.j2 (free text scrubbed, vault-only columns left out) and is built into a fresh DuckDB file
   that replaces `<home>/linked/current.duckdb` atomically: readers never block a run and never
   see a half-written state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import yaml

from stat19.db import configure, render, run_script, sql_ident, sql_literal, warehouse
from stat19.faults import checkpoint
from stat19.ingest import ensure_schema
from stat19.inputs import code_digest, deliveries_digest, fingerprint
from stat19.paths import Home, each_spec_file, write_atomically
from stat19.progress import say
from stat19.reference import install_reference_tables
from stat19.specs import linked_template_names, population_source, source_specs

KEY_ENV = "STAT19_PSEUDONYM_KEY"
MIN_KEY_BYTES = 32  # HMAC-SHA-256 is only as strong as a key of at least its output size
_KEY_CHECK = b"stat19 pseudonym key check"
# Reference tables copied into the linked zone, for readers who want names of places.
REFERENCE_TABLES = ["ref_fylker", "ref_kommuner", "ref_kommune_map"]
SNAPSHOT_STORAGE_VERSION = "v1.5.0"


class LinkageError(Exception):
    pass


@dataclass(frozen=True)
class LinkageSummary:
    persons: int
    identity_problems: int
    tables: dict[str, int]
    snapshot: Path
    unchanged: bool = False  # nothing new since the last snapshot: it was kept, not rebuilt


def pseudonym_key(home: Home) -> bytes:
    """The secret key: STAT19_PSEUDONYM_KEY, else <home>/secrets/pseudonym.key (made, mode 0600,
    for the demo when missing). Never logged, printed or stored anywhere else."""
    if value := os.environ.get(KEY_ENV):
        return _long_enough(value.encode("utf-8"), KEY_ENV)
    path = home.root / "secrets" / "pseudonym.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    if path.stat().st_mode & 0o077:
        raise LinkageError(f"{path} must be readable by its owner only (chmod 600)")
    return _long_enough(path.read_text().strip().encode("utf-8"), str(path))


def _long_enough(key: bytes, origin: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        # the length only, never the key
        raise LinkageError(f"the pseudonym key from {origin} is {len(key)} bytes; at least {MIN_KEY_BYTES} "
                           "are required (e.g. 64 hex digits from `python -c \"import secrets; print(secrets.token_hex(32))\"`)")
    return key


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys, so DuckDB can compute HMAC-SHA-256 with two sha256 calls."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def person_columns(include_population: bool = True) -> list[tuple[str, str, str]]:
    """(source, table, column) of every person identifier column in the source specs (without
    the population register's, which the linkage report measures the others against)."""
    return [
        (spec.name, t.name, c)
        for spec in source_specs().values()
        for t in spec.tables
        for c in t.person_id_columns
        if include_population or spec.role != "population"
    ]


def absent_by_rule() -> dict[tuple[str, str], str]:
    """(table, column) -> SQL true where the source's rules let the identifier be absent: the
    column's `required_unless`, or every person column of a table that drops identities unless
    `keep_identity_when` holds. Such records are reported, never counted as linkage failures."""
    rules = {}
    for spec in source_specs().values():
        for t in spec.tables:
            for c in t.columns:
                if c.name not in t.person_id_columns:
                    continue
                conditions = [f"({c.required_unless})"] if c.required_unless else []
                if t.keep_identity_when:
                    conditions.append(f"NOT coalesce(({t.keep_identity_when}), false)")
                if conditions:
                    rules[(t.name, c.name)] = " OR ".join(conditions)
    return rules


def link(home: Home) -> LinkageSummary:
    """Resolve identities, pseudonymise, report linkage, and publish a new linked snapshot."""
    key = pseudonym_key(home)
    inner, outer = _hmac_pads(key)
    check = hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()
    with warehouse(home) as con:
        ensure_schema(con)
        install_reference_tables(con)
        con.execute("CREATE TABLE IF NOT EXISTS pseudonym_key_check (fingerprint VARCHAR)")
        known = con.execute("SELECT fingerprint FROM pseudonym_key_check").fetchall()
        if known != [(check,)]:
            if known:
                say("The pseudonym key has changed: every pid is made anew and links to nothing published "
                    "under the old key.")
            # a new key: every pseudonym is made again, so nothing links to the old ones
            con.execute("DROP TABLE IF EXISTS pseudonyms")
            con.execute("DELETE FROM pseudonym_key_check")
            con.execute("INSERT INTO pseudonym_key_check VALUES (?)", [check])
        # Nothing loaded since the last snapshot and the same key and code: the snapshot stands.
        inputs = fingerprint(deliveries_digest(con), check, code_digest())
        con.execute("CREATE TABLE IF NOT EXISTS linked_state (inputs_sha256 VARCHAR, persons BIGINT, "
                    "identity_problems BIGINT, tables JSON)")
        # which inputs made each release in place (stat19.products skips a release made from the same)
        con.execute("CREATE TABLE IF NOT EXISTS release_inputs (product VARCHAR, reference_date DATE, "
                    "inputs_sha256 VARCHAR, content_sha256 VARCHAR, PRIMARY KEY (product, reference_date))")
        built = con.execute("SELECT persons, identity_problems, tables FROM linked_state "
                            "WHERE inputs_sha256 = ?", [inputs]).fetchone()
        target = home.linked / "current.duckdb"
        if built is not None and target.exists():
            say("linkage: nothing loaded since the last snapshot, which stands")
            return LinkageSummary(built[0], built[1], json.loads(built[2]), target, unchanged=True)
        started = time.perf_counter()
        population = population_source().population  # the register's tables, columns and codes, by name
        run_script(con, render("linkage/identity.sql.j2", person_columns=[(t, c) for _, t, c in person_columns()],
                               population=population),
                   params={"inner_pad": inner, "outer_pad": outer})
        # free text scrubbed, vault-only columns left out: all the linked templates may read
        run_script(con, render("linkage/linkable.sql.j2",
                               tables=[(spec.name, t) for spec in source_specs().values() for t in spec.tables]))
        run_script(con, render("linkage/report.sql.j2", person_columns=person_columns(include_population=False),
                               absent_by_rule=absent_by_rule(), population=population))
        write_atomically(home.reports / "linkage.csv", con.sql("SELECT * FROM linkage_report ORDER BY ALL").pl().write_csv())
        write_atomically(home.reports / "identity_problems.csv",
                         con.sql("SELECT problem, detail, count(*) AS identifiers FROM identity_problems GROUP BY ALL ORDER BY ALL").pl().write_csv())
        problems = con.execute("SELECT count(*) FROM identity_problems").fetchone()[0]
        say(f"linkage: identities resolved, pseudonymised and reported ({time.perf_counter() - started:.1f} s)")
        snapshot, counts = _build_snapshot(con, home)
        persons = counts.get("persons", 0)
        say(f"linkage: snapshot of {persons:,} persons in {len(counts)} tables replaced "
            f"({time.perf_counter() - started:.1f} s)")
        # recorded after the snapshot is in place: a crash in between only means one more rebuild
        con.execute("DELETE FROM linked_state")
        con.execute("INSERT INTO linked_state VALUES (?, ?, ?, ?)", [inputs, persons, problems, json.dumps(counts)])
    return LinkageSummary(persons, problems, counts, snapshot)


def _build_snapshot(con: duckdb.DuckDBPyConnection, home: Home) -> tuple[Path, dict[str, int]]:
    home.linked.mkdir(parents=True, exist_ok=True)
    building = home.linked / f".building-{uuid.uuid4().hex}.duckdb"
    target = home.linked / "current.duckdb"
    vault_db = con.execute("SELECT current_database()").fetchone()[0]
    population = population_source().population
    # Written in the storage format of DuckDB 1.5 so that the readers' tools, which lag behind the
    # pipeline's DuckDB (the CLI from PyPI, DBeaver, R), open it too.
    con.execute(f"ATTACH {sql_literal(building)} AS build (STORAGE_VERSION '{SNAPSHOT_STORAGE_VERSION}')")
    try:
        counts = {}
        for name in linked_template_names():
            con.execute(f'CREATE TABLE build."{name}" AS ' + render(f"linked/{name}.sql.j2", population=population))
            counts[name] = con.execute(f'SELECT count(*) FROM build."{name}"').fetchone()[0]
        for name in REFERENCE_TABLES:
            con.execute(f'CREATE TABLE build."{name}" AS SELECT * FROM "{vault_db}"."{name}"')
        con.execute("USE build")
        run_script(con, render("linked/_views.sql.j2"))
        _comment(con)
        con.execute(f'USE "{vault_db}"')
        counts["residences"] = con.execute("SELECT count(*) FROM build.residences").fetchone()[0]
        con.execute("CHECKPOINT build")
        con.execute("DETACH build")
        checkpoint("link")
        os.replace(building, target)  # readers see the old snapshot or the new one, never a mix
    except BaseException:
        try:
            con.execute(f'USE "{vault_db}"')
            con.execute("DETACH DATABASE IF EXISTS build")
        finally:
            building.unlink(missing_ok=True)
            Path(str(building) + ".wal").unlink(missing_ok=True)
        raise
    return target, counts


def linked_model_spec() -> dict:
    """assets/linked.yaml: what each linked table and column means."""
    model: dict = {}
    for path in each_spec_file("assets", "linked.yaml"):  # a spec directory adds its tables
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not model:
            model = doc
            continue
        for name, table in (doc.get("tables") or {}).items():
            if name in model["tables"]:
                raise ValueError(f"{path}: linked table {name!r} is described already")
            model["tables"][name] = table
    return model


def _comment(con: duckdb.DuckDBPyConnection) -> None:
    """COMMENT ON every table and column of the snapshot being built (the current database) from
    assets/linked.yaml, so the DuckDB CLI, DBeaver or a notebook show what each one means."""
    spec = linked_model_spec()
    tables = con.execute("SELECT table_name, column_name FROM duckdb_columns() "
                         "WHERE database_name = current_database() ORDER BY table_name, column_index").fetchall()
    statements = []
    for table in dict.fromkeys(t for t, _ in tables):
        if info := spec["tables"].get(table):
            statements.append(f"COMMENT ON TABLE {sql_ident(table)} IS {sql_literal(info['description'])}")
    for table, column in tables:
        info = spec["tables"].get(table, {"columns": {}})
        if meaning := info["columns"].get(column) or spec["common"].get(column):
            statements.append(f"COMMENT ON COLUMN {sql_ident(table)}.{sql_ident(column)} IS {sql_literal(meaning)}")
    con.execute(";\n".join(statements))


@contextmanager
def linked_connection(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """The pipeline's view for products: the vault (person_birth_dates, ref_*) with the linked
    snapshot attached read-only; linked tables resolve by plain name."""
    with warehouse(home) as con:
        vault_db = con.execute("SELECT current_database()").fetchone()[0]
        con.execute(f"ATTACH {sql_literal(home.linked / 'current.duckdb')} AS linked (READ_ONLY)")
        con.execute(f"SET search_path = 'linked,{vault_db}'")
        try:
            yield con
        finally:
            con.execute("RESET search_path")
            con.execute("DETACH linked")


@contextmanager
def read_linked(home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the published linked snapshot (for epidemiologists)."""
    path = home.linked / "current.duckdb"
    if not path.exists():
        raise LinkageError(f"{path} does not exist yet: run `stat19 run` first")
    con = duckdb.connect(str(path), read_only=True)
    try:
        configure(con, None)
        yield con
    finally:
        con.close()
