"""Running suites inside DuckDB: GX's own expectations through Great Expectations, SQL checks
straight on the caller's connection, and `run_dq`, which turns a day's results into CheckResults.

GX 1.x runs through SQLAlchemy and duckdb_engine, in the database: every expectation becomes SQL
that DuckDB executes on the day's rows; no row is pulled into Python.

* SQL checks (`sql:`/`query:`) return the violating rows. GX would run them as its
  `UnexpectedRowsExpectation`, which adds nothing to the query but costs a validation of its own
  (about 0.1 s of fixed cost each, every suite every day, whatever the rows). They run here
  instead: `{batch}` becomes the day's rows as a subquery, one `count(*)` per check, the distinct
  `detail` values fetched only when the check found something. An error in one is that check's
  error; the others still run. A suite without GX expectations never creates a GX context.
* GX hands the engine a fresh pooled connection per metric and closes it before fetching, so
  every expectation ends in `IndexError` in `resolve_metric_bundle` (upstream issue #11579; a
  test shows it). GX keeps
  one persistent connection for the dialects in
  `sqlalchemy_execution_engine._PERSISTED_CONNECTION_DIALECTS`; `_patch_gx_for_duckdb` adds
  `duckdb`. The entry must compare equal to the string "duckdb" *and* have a `.value` (GX calls
  both), hence the small `str` subclass. `tests/test_dq.py` proves bad rows make checks fail.
* GX is given the caller's DuckDB connection, never a path: the engine is
  `duckdb:///:memory:` with `creator=` returning `duckdb_engine.ConnectionWrapper(con.cursor())`.
  The URL only selects the dialect. A cursor is a second connection to the *same* database
  instance, so GX sees the caller's tables, macros and ATTACHed databases and no second writer
  exists. Opening the same file by URL while it is open in the process fails with "Can't open a
  connection to same database file with a different configuration" (duckdb_engine adds a
  `custom_user_agent` to the config); by URL it works only once every other connection to the
  file in the process is closed, and another process cannot open it at all while it is held.
  A cursor does not inherit session settings, so `search_path`, the current database and the time
  zone are copied onto it (`_session_cursor`; the SQL checks run on such a cursor too).
* GX has no regular expressions or LIKE patterns for the duckdb dialect ("Regex is not supported
  for dialect duckdb"); code-form checks are SQL (`sql/dq/column_form.sql.j2`, DuckDB's
  `regexp_full_match`).
* GX's own expectations are asked for counts only (BASIC, no unexpected values). SQL checks
  return `1` per violation, or a `detail` with aggregate figures for day-level checks (shown in
  the report), never row content.
* Measured (benchmarks/bench_dq.py, 2 cores): the 9-expectation SYSVAK suite on 4,000,000 rows
  in one partition takes 2.6 s; on the busiest day of a national year (44,000 rows) 1.1 s, most
  of it GX's fixed cost. Importing GX takes ~3 s once per process.
"""

from __future__ import annotations

import os
import re
from contextlib import ExitStack, closing, contextmanager
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import jinja2

from stat19.db import install_macros, sql_ident, sql_literal
from stat19.dq.results import MAX_DETAILS, CheckResult, DQResult
from stat19.dq.suite import Expectation, Suite, load_suites
from stat19.paths import spec_dirs
from stat19.specs import code_systems, population

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry from the pipeline

# Only counts leave the database; GX's sample of unexpected values stays empty.
_COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}


@cache
def _sql_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(spec_dirs("sql", "dq")), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["lit"], env.filters["q"] = sql_literal, sql_ident
    env.globals["population"] = population  # the population register's names and codes, as in sql/
    return env


def check_sql(suite: Suite, e: Expectation, day: date) -> str:
    """The SQL of a SQL check for a day, `{batch}` left as written (`_sql_check` fills it in).
    String params are templates too, so a param can say `daar_deaths_as_of({{ day }})`."""
    env = _sql_env()
    context = {"day": f"DATE '{day.isoformat()}'", "table": suite.table, "source": suite.source, "suite": suite.name,
               "code_systems": code_systems(), "alpha": f"{suite.alpha:.3g}"}
    params = {k: env.from_string(v).render(context) if isinstance(v, str) else v for k, v in e.params.items()}
    template = env.get_template(f"{e.sql}.sql.j2") if e.sql else env.from_string(e.query or "")
    return template.render({**params, **context})


class _DuckDBDialectName(str):
    """Stands in the tuple of GXSqlDialect members: equal to "duckdb" and with a `.value`."""

    @property
    def value(self) -> str:
        return str(self)


def _patch_gx_for_duckdb() -> None:
    """Keep one connection per GX engine for duckdb, as GX does for sqlite (see module doc)."""
    from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_sql

    if "duckdb" not in [str(getattr(d, "value", d)) for d in gx_sql._PERSISTED_CONNECTION_DIALECTS]:
        gx_sql._PERSISTED_CONNECTION_DIALECTS = (*gx_sql._PERSISTED_CONNECTION_DIALECTS, _DuckDBDialectName("duckdb"))


def _session_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor of `con` with its session settings and the SQL macros (see module doc)."""
    database, search_path, tz = con.execute(
        "SELECT current_database(), current_setting('search_path'), current_setting('TimeZone')").fetchone()
    cur = con.cursor()
    cur.execute(f"USE {sql_ident(database)}")
    cur.execute(f"SET search_path = {sql_literal(search_path)}")
    cur.execute(f"SET TimeZone = {sql_literal(tz)}")
    install_macros(cur)  # the statistics checks need them (a no-op where the warehouse holds them)
    return cur


def _cursor_factory(con: duckdb.DuckDBPyConnection, opened: list):
    """Connections for GX: cursors of the caller's connection with its session settings."""
    import duckdb_engine

    def connect():
        cur = _session_cursor(con)
        opened.append(cur)
        return duckdb_engine.ConnectionWrapper(cur)

    return connect


def _table_missing(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    try:
        con.execute(f"SELECT * FROM {sql_ident(table)} LIMIT 0")
        return None
    except duckdb.CatalogException:
        return f"table {table} does not exist in this database"


def _safe_message(text: str) -> str:
    # Database errors can quote a value; keep the rule, never a value (an identifier, maybe).
    first = (text or "unknown error").strip().splitlines()[0]
    return re.sub(r"\d{6,}", "…", re.sub(r"'[^']*'", "'…'", first))[:300]


def _gx_error(res) -> str | None:
    info = res.exception_info or {}
    infos = [info] if "raised_exception" in info else list(info.values())
    for i in infos:
        if isinstance(i, dict) and i.get("raised_exception"):
            return _safe_message(i.get("exception_message") or "")
    return None


def _outcome(suite: Suite, e: Expectation, rows: int, res=None, error: str | None = None,
             found: tuple[int, tuple[str, ...]] | None = None) -> CheckResult:
    """A check's result from GX's (`res`) or a SQL check's (`found`: violations, details)."""
    violated, denominator, unit, details = 0, rows, "rows", ()
    if error is None and res is not None:
        error = _gx_error(res)
    if error is None and found is not None:
        n, details = found
        violated, denominator, unit = (min(n, 1), 1, "days") if e.per == "day" else (n, rows, "rows")
    elif error is None and res is not None:
        r = res.result or {}
        if "unexpected_count" in r:  # GX's own denominator: rows in the domain, nulls excluded
            violated = int(r["unexpected_count"] or 0)
            denominator = int(r.get("element_count") or 0) - int(r.get("missing_count") or 0)
        else:  # table-level GX expectations: the day holds or not
            violated, denominator, unit = (0 if res.success else 1), 1, "days"
    if error is not None:
        status = "error"
    elif denominator and violated / denominator > e.threshold:
        status = "fail" if e.blocking else "warn"
    else:
        status = "pass"
    return CheckResult(suite.name, suite.asset, e.name, e.description, e.category, e.subcategory, e.severity,
                       suite.table, e.column_name, violated, denominator, e.threshold, status, unit, details, error,
                       e.priority)


def _sql_check(cur: duckdb.DuckDBPyConnection, suite: Suite, e: Expectation, day: date, rows: int) -> CheckResult:
    """A SQL check on the day's rows: how many rows it returns, and their distinct `detail`s."""
    try:
        sql = check_sql(suite, e, day).replace("{batch}", f"({suite.batch_sql(day)})")
        n = cur.execute(f"SELECT count(*) FROM ({sql})").fetchone()[0]
        details: tuple[str, ...] = ()
        if n and "detail" in cur.sql(sql).columns:
            found = cur.execute(f"SELECT DISTINCT detail::VARCHAR FROM ({sql}) WHERE detail IS NOT NULL ORDER BY 1 "
                                f"LIMIT {MAX_DETAILS}").fetchall()
            details = tuple(sorted(d for (d,) in found))
    except Exception as exc:  # SQL that cannot run here: this check is an error, the others run
        return _outcome(suite, e, rows, error=_safe_message(f"{type(exc).__name__}: {exc}"))
    return _outcome(suite, e, rows, found=(int(n), details))


def _run_suite(datasource, cur: duckdb.DuckDBPyConnection, suite: Suite, day: date) -> list[CheckResult]:
    """A suite's checks on the day: SQL checks on `cur`, GX's expectations in one GX validation
    (`datasource`: a GX datasource on `cur`'s database, or None when the suite has none)."""
    missing = _table_missing(cur, suite.table)
    if missing:
        return [_outcome(suite, e, 0, error=missing) for e in suite.expectations]
    rows = cur.execute(f"SELECT count(*) FROM ({suite.batch_sql(day)})").fetchone()[0]
    results = {e.name: _sql_check(cur, suite, e, day, rows) for e in suite.expectations if e.is_sql}
    gx_expectations = [e for e in suite.expectations if not e.is_sql]
    if gx_expectations:
        results |= _gx_validation(datasource, suite, gx_expectations, day, rows)
    return [results[e.name] for e in suite.expectations]


def _gx_validation(datasource, suite: Suite, expectations: list[Expectation], day: date,
                   rows: int) -> dict[str, CheckResult]:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    built, results = [], {}
    for e in expectations:
        try:
            config = ExpectationConfiguration(type=e.expect, kwargs=dict(e.kwargs), meta={"check": e.name})
            built.append(config.to_domain_obj())
        except Exception as exc:  # a suite file GX cannot read: report it, run the rest
            results[e.name] = _outcome(suite, e, rows, error=_safe_message(f"{type(exc).__name__}: {exc}"))
    if not built:
        return results
    by_name = {e.name: e for e in expectations}
    try:
        asset = datasource.add_query_asset(f"{suite.name}_{day.isoformat()}", query=suite.batch_sql(day))
        batch = asset.add_batch_definition_whole_table("day").get_batch()
        validation = batch.validate(gx.ExpectationSuite(suite.name, expectations=built), result_format=_COUNTS_ONLY)
        for res in validation.results:
            name = res.expectation_config.meta["check"]
            results[name] = _outcome(suite, by_name[name], rows, res)
    except Exception as exc:  # GX could not run the suite at all: every check left is an error
        error = _safe_message(f"{type(exc).__name__}: {exc}")
        results = {e.name: _outcome(suite, e, rows, error=error) for e in expectations} | results
    return results


@contextmanager
def _gx_datasource(con: duckdb.DuckDBPyConnection):
    """A GX SQL datasource (in an ephemeral context) whose connections are cursors of `con`."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _patch_gx_for_duckdb()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    opened: list = []
    datasource = context.data_sources.add_sql(
        "stat19", connection_string="duckdb:///:memory:", kwargs={"creator": _cursor_factory(con, opened)})
    try:
        yield datasource
    finally:  # hand GX's connections back and close them, then any cursor left
        gx_engine = datasource.get_execution_engine()
        if getattr(gx_engine, "_connection", None) is not None:
            gx_engine._connection.close()
        for engine in (gx_engine.engine, datasource.get_engine()):
            engine.dispose()
        for cur in opened:
            cur.close()


@contextmanager
def _connected(con_or_path: duckdb.DuckDBPyConnection | str | Path) -> Iterator[duckdb.DuckDBPyConnection]:
    if isinstance(con_or_path, duckdb.DuckDBPyConnection):
        yield con_or_path
        return
    con = duckdb.connect(str(con_or_path), read_only=True)
    try:
        yield con
    finally:
        con.close()


def run_dq(con_or_path: duckdb.DuckDBPyConnection | str | Path, day: date | str,
           suites: Iterable[Suite | str] | None = None) -> DQResult:
    """Run suites on the day's rows inside DuckDB.

    `con_or_path`: an open connection (GX works on cursors of it; use this inside the pipeline)
    or the path of a DuckDB file not open in this process (opened read-only). `suites`: Suite
    objects or names; default every suite whose table exists in the database.
    """
    day = date.fromisoformat(day) if isinstance(day, str) else day
    started = datetime.now(timezone.utc)
    all_suites = load_suites()
    with _connected(con_or_path) as con:
        if suites is None:
            chosen = [s for s in all_suites.values() if not _table_missing(con, s.table)]
        else:
            chosen = [all_suites[s] if isinstance(s, str) else s for s in suites]
        checks: list[CheckResult] = []
        with ExitStack() as stack:
            cur = stack.enter_context(closing(_session_cursor(con)))
            datasource = None  # GX's, made when the first suite with GX expectations needs it
            for suite in chosen:
                if datasource is None and any(not e.is_sql for e in suite.expectations):
                    datasource = stack.enter_context(_gx_datasource(con))
                checks.extend(_run_suite(datasource, cur, suite, day))
        volumes = delivery_volumes(con, day)
    return DQResult(day, checks, started, datetime.now(timezone.utc), volumes)


def delivery_volumes(con: duckdb.DuckDBPyConnection, day: date, days: int = 120) -> dict[str, list[tuple[str, int]]] | None:
    """Rows delivered per source and loaded delivery date up to `day` (the latest load of a date)."""
    if _table_missing(con, "delivery_log"):
        return None
    rows = con.execute(
        """SELECT source, strftime(delivery_date, '%Y-%m-%d'), arg_max(rows_in, processed_at)
           FROM delivery_log
           WHERE status = 'loaded' AND delivery_date <= ? AND delivery_date > ? - INTERVAL (?) DAY
           GROUP BY ALL ORDER BY ALL""", [day, day, days]).fetchall()
    volumes: dict[str, list[tuple[str, int]]] = {}
    for source, d, n in rows:
        volumes.setdefault(source, []).append((d, int(n)))
    return volumes
