"""DuckDB connections and the SQL templates in `sql/`.

Connections are short-lived and opened only when work starts (DuckDB allows one writing process
per file). Memory is bounded and spills into the vault's scratch folder, so national-scale work
fits a 2-core, 24 GB machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Iterator

import duckdb
import jinja2

from stat19.paths import Home, spec_dirs, spec_files
from stat19.specs import population

MEMORY_LIMIT = os.environ.get("STAT19_DUCKDB_MEMORY", "8GB")
# How long to wait for the vault while another process (a Dagster UI run) holds it.
LOCK_WAIT_SECONDS = float(os.environ.get("STAT19_LOCK_WAIT_SECONDS", "100"))
THREADS = int(os.environ.get("STAT19_DUCKDB_THREADS", "2"))


def sql_literal(value: object) -> str:
    """A SQL string literal (values in templates are spec names and paths, never row data)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(spec_dirs("sql")),  # the repository's first
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["lit"] = sql_literal
    env.filters["q"] = sql_ident
    env.globals["population"] = population  # the population register's names and codes, read when used
    return env


def render(template: str, **params: object) -> str:
    """Render `sql/<template>` with jinja2."""
    return _templates().get_template(template).render(**params)


def run_script(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> None:
    """Run every statement of a rendered script in order; named parameters ($name) go to the
    statements that use them (values never enter the SQL text)."""
    for statement in split_statements(sql):
        used = {k: v for k, v in (params or {}).items() if f"${k}" in statement}
        con.execute(statement, used) if used else con.execute(statement)


def split_statements(sql: str) -> list[str]:
    # Statements in our templates end with ';' at the end of a line; strings never do.
    return [s.strip() for s in re.split(r";\s*\n", sql + "\n") if s.strip() and not _only_comments(s)]


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())


_STAMP = "s19__macros_version"


@cache
def _macro_sql() -> tuple[str, str, str]:
    """The macros' SQL, TEMP and persistent, with a stamp macro naming their version (a hash)."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in spec_files("*.sql", "sql", "macros"))
    stamp = hashlib.sha256(text.encode()).hexdigest()[:16]
    text += f"\nCREATE MACRO {_STAMP}() AS {sql_literal(stamp)};\n"
    def as_(kind: str) -> str:
        return re.sub(r"CREATE\s+(OR\s+REPLACE\s+)?(TEMP\s+|TEMPORARY\s+)?MACRO", f"CREATE OR REPLACE {kind}MACRO",
                      text, flags=re.IGNORECASE)
    return as_("TEMP "), as_(""), stamp


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The SQL macros every Stat19 query may use (identifier checks, ...). Nothing to do where the
    connection's database holds this version already (the warehouse: `persist_macros`); elsewhere
    (read-only and in-memory databases, an older version) as TEMP macros of the connection."""
    if not _has_macros(con):
        con.execute(_macro_sql()[0])


def _has_macros(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection already sees this version of the macros (persisted in its database)."""
    try:
        return con.execute(f"SELECT {_STAMP}()").fetchone()[0] == _macro_sql()[2]
    except duckdb.Error:
        return False


def persist_macros(con: duckdb.DuckDBPyConnection) -> None:
    """The macros stored in the connection's (writable) database, unless this version is there:
    creating them costs about 0.1 s, and the daily run opens the warehouse a hundred times and more
    (each check, each step), so they are created once per version instead of on every connection."""
    if not _has_macros(con):
        con.execute(_macro_sql()[1])


def configure(con: duckdb.DuckDBPyConnection, scratch: Path | None) -> None:
    con.execute(f"SET memory_limit = {sql_literal(MEMORY_LIMIT)}")
    con.execute(f"SET threads = {THREADS}")
    con.execute("SET TimeZone = 'Europe/Oslo'")  # delivery dates are Norwegian calendar days
    con.execute("SET enable_progress_bar = false")  # our own progress lines say what happens
    if scratch is not None:
        con.execute(f"SET temp_directory = {sql_literal(scratch)}")
    install_macros(con)


@contextmanager
def warehouse(home: Home, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the vault's warehouse, closed on exit."""
    home.ensure()
    con = _connect_waiting(home.warehouse, read_only)
    try:
        if not read_only:
            persist_macros(con)
        configure(con, None if read_only else home.scratch)
        yield con
    finally:
        con.close()


def _connect_waiting(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Connect, waiting while another process holds the file: the one failure worth retrying,
    retried here so that no other failure (a permission, a full disk) is ever retried."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(1)
