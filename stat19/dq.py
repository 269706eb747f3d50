"""Data-quality expectations: suites as data, run inside DuckDB by Great Expectations, guarded by
Dagster asset checks, reported like the OHDSI DataQualityDashboard.

Suites
------
One YAML file per suite in `dq_checks/` (format: `dq_checks/README.md`). A suite checks one table
on one day: the batch is `SELECT * FROM <table> WHERE <day_column> = <day>` (a source's record
table and `_delivery_date`, a linked table and `_known_from`; without `day_column`, the whole
table). Every expectation carries a Kahn category (conformance, completeness, plausibility), a
severity (blocking or warning) and a threshold: the share of the batch's rows allowed to violate
it. An expectation is either a GX expectation (`expect:` + `kwargs:`) or SQL that returns the
violating rows (`sql:` naming a template in `sql/dq/`, or an inline `query:`), which runs as GX's
`UnexpectedRowsExpectation`; `{batch}` in the SQL is the day's rows. Adding an expectation is
editing a file.

A check passes when violating rows <= threshold x rows; otherwise it fails (blocking) or warns
(warning). A check that cannot be evaluated is an `error`; a blocking one that errors blocks too,
since nobody can say the data is fine.

How GX talks to DuckDB
----------------------
GX 1.x runs through SQLAlchemy and duckdb_engine, in the database: every expectation becomes SQL
that DuckDB executes on the day's rows; no row is pulled into Python.

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
  zone are copied onto it.
* GX has no regular expressions or LIKE patterns for the duckdb dialect ("Regex is not supported
  for dialect duckdb"); code-form checks are SQL (`sql/dq/column_form.sql.j2`, DuckDB's
  `regexp_full_match`). GX fills `{batch}` with `str.format`, so other braces in rendered SQL are
  doubled for it.
* GX's own expectations are asked for counts only (BASIC, no unexpected values). For SQL checks
  GX also fetches a capped sample of the returned rows; the SQL returns `1` per violation, or a
  `detail` with aggregate figures for day-level checks (shown in the report), never row content.
* Measured (benchmarks/bench_dq.py, 2 cores): the 9-expectation SYSVAK suite on 4,000,000 rows
  in one partition takes 2.6 s; on the busiest day of a national year (44,000 rows) 1.1 s, most
  of it GX's fixed cost. Importing GX takes ~3 s once per process.

Entry points
------------
`run_dq(con_or_path, day, suites)` -> `DQResult`; `check_day(home, day, suites)` runs them on
the home's vault (linked suites: with the linked snapshot attached) and writes
`<home>/reports/dq/<day>.json` and `.html`; `dq_asset_checks()` -> one `@multi_asset_check` per
suite, each expectation a check (blocking ones with `blocking=True`); `DQBlocked` carries the
blocking failures (`DQResult.raise_if_blocked()`, `blocked_in_run(dagster_result)`).
"""

from __future__ import annotations

import json
import os
import re
import warnings
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

import duckdb
import jinja2
import yaml
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, PreviewWarning,
                     multi_asset_check)
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stat19.db import install_macros, sql_ident, sql_literal, warehouse
from stat19.faults import checkpoint
from stat19.paths import PACKAGE_DIR, Home, spec_dirs, spec_files, write_atomically
from stat19.progress import say
from stat19.specs import code_systems

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no telemetry from the pipeline

Category = Literal["conformance", "completeness", "plausibility"]
Severity = Literal["blocking", "warning"]
STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "waived": 3, "pass": 4}  # the report lists failures first
# A suite's declared false-alarm rate: the chance that a clean day fails one of its blocking checks.
DEFAULT_FALSE_ALARM_RATE = 0.0002
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Only counts leave the database; GX's sample of unexpected values stays empty.
_COUNTS_ONLY = {"result_format": "BASIC", "partial_unexpected_count": 0}
# SQL checks: the fetched rows (GX caps them at a few hundred) give the optional `detail` column.
_WITH_ROWS = {"result_format": "COMPLETE"}
MAX_DETAILS = 5


# --- suites -------------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expectation(_Strict):
    """One check: what it expects, its Kahn category, severity and threshold."""

    name: str
    description: str
    category: Category
    subcategory: str | None = None  # Kahn: value, relational, computational, atemporal, temporal
    severity: Severity
    threshold: float = Field(0.0, ge=0.0, le=1.0)  # share of rows allowed to violate
    column: str | None = None  # for the report; defaults to the GX kwargs' column(s)
    expect: str | None = None  # a GX expectation type, e.g. expect_column_values_to_not_be_null
    kwargs: dict[str, Any] = Field(default_factory=dict)
    sql: str | None = None  # a template in sql/dq/ returning the violating rows
    query: str | None = None  # inline SQL returning the violating rows
    params: dict[str, Any] = Field(default_factory=dict)
    per: Literal["row", "day"] = "row"  # a SQL check counts rows, or the day as one unit
    priority: int = 0  # report order among checks that did not pass: lower first (rejections: -1)

    @model_validator(mode="after")
    def _one_kind(self) -> "Expectation":
        if not _NAME.match(self.name):
            raise ValueError(f"expectation name {self.name!r} must be lower_snake_case")
        if sum(x is not None for x in (self.expect, self.sql, self.query)) != 1:
            raise ValueError(f"{self.name}: give exactly one of expect, sql, query")
        if self.expect is None and self.kwargs:
            raise ValueError(f"{self.name}: kwargs are for GX expectations; SQL checks take params")
        if self.expect is not None and (self.params or self.per != "row"):
            raise ValueError(f"{self.name}: params and per are for SQL checks")
        return self

    @property
    def blocking(self) -> bool:
        return self.severity == "blocking"

    @property
    def is_sql(self) -> bool:
        return self.expect is None

    @property
    def column_name(self) -> str | None:
        if self.column:
            return self.column
        cols = [self.kwargs[k] for k in ("column", "column_A", "column_B") if k in self.kwargs]
        return ", ".join(cols) + (", ..." if "column_list" in self.kwargs else "") if cols else None


class Suite(_Strict):
    """The expectations on one table, checked on one day's rows; guards one Dagster asset."""

    name: str
    description: str
    asset: str  # Dagster asset key path: vault/<source> or linked/<table>
    database: Literal["vault", "linked"]  # where the table lives (the check opens it)
    table: str
    day_column: str | None = None  # rows of the day; None: the whole table
    expectations: list[Expectation]
    anchors: Any = None  # YAML anchors to reuse inside the file; ignored
    # Family-wise false-alarm rate per day: shared out (Bonferroni) over the blocking checks, each
    # statistical check gets `alpha` = false_alarm_rate / blocking checks (sql/dq/rate_shift.sql.j2).
    false_alarm_rate: float = Field(DEFAULT_FALSE_ALARM_RATE, gt=0.0, lt=1.0)

    @property
    def alpha(self) -> float:
        return self.false_alarm_rate / max(1, sum(e.blocking for e in self.expectations))

    @property
    def asset_path(self) -> list[str]:
        return self.asset.split("/")

    @property
    def source(self) -> str:
        return self.asset_path[-1]

    def batch_sql(self, day: date) -> str:
        where = f" WHERE {sql_ident(self.day_column)} = DATE '{day.isoformat()}'" if self.day_column else ""
        return f"SELECT * FROM {sql_ident(self.table)}{where}"


def load_suite(path: Path) -> Suite:
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    try:
        return Suite.model_validate({"name": path.stem, **doc})
    except Exception as exc:  # pydantic names the field; add the file
        raise ValueError(f"invalid DQ suite {path}: {exc}") from exc


@cache
def _load(paths: tuple[Path, ...]) -> dict[str, Suite]:
    suites = {p.stem: load_suite(p) for p in paths}
    seen: dict[tuple[str, str], str] = {}
    for s in suites.values():
        for e in s.expectations:
            other = seen.setdefault((s.asset, e.name), s.name)
            if other != s.name or sum(x.name == e.name for x in s.expectations) > 1:
                raise ValueError(f"DQ check name {e.name!r} is used twice on asset {s.asset} ({other}, {s.name})")
    return suites


def load_suites(directory: Path | None = None) -> dict[str, Suite]:
    """Every suite in dq_checks/ of every spec root (or in `directory`), by name."""
    if directory is not None:
        return _load(tuple(sorted(Path(directory).resolve().glob("*.yaml"))))
    return _load(tuple(spec_files("*.yaml", "dq_checks")))


# --- results ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckResult:
    """The outcome of one expectation on one day: counts and rules only."""

    suite: str
    asset: str
    check: str
    description: str
    category: str
    subcategory: str | None
    severity: str
    table: str
    column: str | None
    violated: int
    denominator: int
    threshold: float
    status: str  # pass | fail | warn | error | waived (a blocking failure released by a waiver)
    unit: str = "rows"
    details: tuple[str, ...] = ()
    error: str | None = None
    priority: int = 0  # the check's report order among checks that did not pass

    @property
    def share(self) -> float:
        return self.violated / self.denominator if self.denominator else 0.0

    @property
    def blocks(self) -> bool:
        return self.severity == "blocking" and self.status in ("fail", "error")

    def summary(self) -> str:
        head = f"{self.asset} {self.table}.{self.check} [{self.category}, {self.severity}]"
        if self.status == "error":
            return f"{head}: could not be evaluated ({self.error})"
        text = (f"{head}: {self.violated:,} of {self.denominator:,} {self.unit} violate "
                f"({self.share:.2%}), threshold {self.threshold:.2%}")
        return text + (" — " + "; ".join(self.details) if self.details else "")

    def dqd(self) -> dict[str, Any]:
        """One entry of CheckResults, as the DataQualityDashboard names it (threshold in %)."""
        return {
            "checkName": self.check, "checkDescription": self.description, "suite": self.suite,
            "asset": self.asset, "category": self.category, "subcategory": self.subcategory,
            "severity": self.severity, "tableName": self.table, "columnName": self.column,
            "numViolatedRows": self.violated, "pctViolatedRows": round(self.share, 6),
            "numDenominatorRows": self.denominator, "thresholdValue": round(100 * self.threshold, 4),
            "unit": self.unit, "status": self.status, "details": list(self.details), "error": self.error,
            "priority": self.priority,
        }

    @classmethod
    def from_dqd(cls, d: dict[str, Any]) -> "CheckResult":
        return cls(d["suite"], d["asset"], d["checkName"], d.get("checkDescription", ""), d["category"],
                   d.get("subcategory"), d["severity"], d["tableName"], d.get("columnName"),
                   int(d["numViolatedRows"]), int(d["numDenominatorRows"]), float(d["thresholdValue"]) / 100,
                   d["status"], d.get("unit", "rows"), tuple(d.get("details") or ()), d.get("error"),
                   int(d.get("priority") or 0))


class DQBlocked(Exception):
    """Blocking checks failed: the day's downstream work is withheld. `checks` names them."""

    def __init__(self, day: date | str, checks: list[CheckResult]):
        self.day, self.checks = day, list(checks)
        lines = [f"data quality blocks delivery date {day}: {len(self.checks)} blocking check(s) failed"]
        super().__init__("\n".join(lines + ["  - " + c.summary() for c in self.checks]))


@dataclass
class DQResult:
    day: date
    checks: list[CheckResult]
    started: datetime
    finished: datetime
    volumes: dict[str, list[tuple[str, int]]] | None = None  # source -> [(date, rows_in)], for the chart
    waivers: list[dict[str, str]] | None = None  # the date's waivers (stat19 waive)

    @property
    def blocked(self) -> list[CheckResult]:
        return [c for c in self.checks if c.blocks]

    @property
    def suites(self) -> set[str]:
        return {c.suite for c in self.checks}

    def by_name(self, check: str) -> CheckResult:
        return next(c for c in self.checks if c.check == check)

    def raise_if_blocked(self) -> None:
        if self.blocked:
            raise DQBlocked(self.day, self.blocked)


# --- running suites in DuckDB -------------------------------------------------------------------

@cache
def _sql_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(spec_dirs("sql", "dq")), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["lit"], env.filters["q"] = sql_literal, sql_ident
    return env


def check_sql(suite: Suite, e: Expectation, day: date) -> str:
    """The SQL of a SQL check for a day, `{batch}` left for GX. String params are templates too,
    so a param can say `daar_deaths_as_of({{ day }})`."""
    env = _sql_env()
    context = {"day": f"DATE '{day.isoformat()}'", "table": suite.table, "source": suite.source, "suite": suite.name,
               "code_systems": code_systems(), "alpha": f"{suite.alpha:.3g}"}
    params = {k: env.from_string(v).render(context) if isinstance(v, str) else v for k, v in e.params.items()}
    template = env.get_template(f"{e.sql}.sql.j2") if e.sql else env.from_string(e.query or "")
    return template.render({**params, **context})


def _for_gx(sql: str) -> str:
    # GX substitutes {batch} with str.format: every other brace (regex quantifiers, struct
    # literals) must be doubled.
    sql = sql.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")
    # Day-level checks read the source's history, not the batch; GX prints a warning when {batch}
    # is absent (and joins the query into one line, so a comment would swallow the rest).
    return sql if "{batch}" in sql else f"SELECT * FROM ({sql}) WHERE NOT EXISTS (SELECT 1 FROM {{batch}} WHERE false)"


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


def _cursor_factory(con: duckdb.DuckDBPyConnection, opened: list):
    """Connections for GX: cursors of the caller's connection with its session settings."""
    import duckdb_engine

    database, search_path, tz = con.execute(
        "SELECT current_database(), current_setting('search_path'), current_setting('TimeZone')").fetchone()

    def connect():
        cur = con.cursor()
        cur.execute(f"USE {sql_ident(database)}")
        cur.execute(f"SET search_path = {sql_literal(search_path)}")
        cur.execute(f"SET TimeZone = {sql_literal(tz)}")
        install_macros(cur)  # TEMP macros belong to a connection; the statistics checks need them
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


def _details(res) -> tuple[str, ...]:
    rows = ((res.result or {}).get("details") or {}).get("unexpected_rows") or []
    if hasattr(rows, "to_dict"):  # some GX versions give a DataFrame
        rows = rows.to_dict("records")
    found = [str(r["detail"]) for r in rows if isinstance(r, dict) and r.get("detail") is not None]
    return tuple(dict.fromkeys(found))[:MAX_DETAILS]


def _outcome(suite: Suite, e: Expectation, rows: int, res=None, error: str | None = None) -> CheckResult:
    violated, denominator, unit, details = 0, rows, "rows", ()
    if error is None and res is not None:
        error = _gx_error(res)
    if error is None and res is not None:
        r = res.result or {}
        if e.is_sql:
            n = int(r.get("observed_value") or 0)
            violated, denominator, unit = (min(n, 1), 1, "days") if e.per == "day" else (n, rows, "rows")
            details = _details(res) if n else ()
        elif "unexpected_count" in r:  # GX's own denominator: rows in the domain, nulls excluded
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


def _run_suite(datasource, con: duckdb.DuckDBPyConnection, suite: Suite, day: date) -> list[CheckResult]:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    missing = _table_missing(con, suite.table)
    if missing:
        return [_outcome(suite, e, 0, error=missing) for e in suite.expectations]
    rows = con.execute(f"SELECT count(*) FROM ({suite.batch_sql(day)})").fetchone()[0]

    built, results = {False: [], True: []}, {}
    for e in suite.expectations:
        try:
            kwargs = {"unexpected_rows_query": _for_gx(check_sql(suite, e, day))} if e.is_sql else dict(e.kwargs)
            config = ExpectationConfiguration(type=e.expect or "unexpected_rows_expectation", kwargs=kwargs, meta={"check": e.name})
            built[e.is_sql].append(config.to_domain_obj())
        except Exception as exc:  # a suite file GX cannot read: report it, run the rest
            results[e.name] = _outcome(suite, e, rows, error=_safe_message(f"{type(exc).__name__}: {exc}"))

    by_name = {e.name: e for e in suite.expectations}
    try:
        asset = datasource.add_query_asset(f"{suite.name}_{day.isoformat()}", query=suite.batch_sql(day))
        batch = asset.add_batch_definition_whole_table("day").get_batch()
        # two passes: SQL checks return their rows (for `detail`), the others counts only
        for is_sql, expectations in built.items():
            if expectations:
                validation = batch.validate(gx.ExpectationSuite(f"{suite.name}_{int(is_sql)}", expectations=expectations),
                                            result_format=_WITH_ROWS if is_sql else _COUNTS_ONLY)
                for res in validation.results:
                    name = res.expectation_config.meta["check"]
                    results[name] = _outcome(suite, by_name[name], rows, res)
    except Exception as exc:  # GX could not run the suite at all: every check left is an error
        error = _safe_message(f"{type(exc).__name__}: {exc}")
        results = {e.name: _outcome(suite, e, rows, error=error) for e in suite.expectations} | results
    return [results[e.name] for e in suite.expectations]


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
        if chosen:
            with _gx_datasource(con) as datasource:
                for suite in chosen:
                    checks.extend(_run_suite(datasource, con, suite, day))
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


# --- the pipeline's entry: a home, a day --------------------------------------------------------

@contextmanager
def _home_connection(home: Home, database: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """The vault; for linked suites the vault with the published linked snapshot attached, so
    linked tables and vault tables (linkage_report, reference) resolve by plain name."""
    if database == "linked" and (home.linked / "current.duckdb").exists():
        from stat19.linkage import linked_connection

        with linked_connection(home) as con:
            yield con
        return
    with warehouse(home) as con:
        if _table_missing(con, "ref_kommune_map"):
            from stat19.reference import install_reference_tables

            install_reference_tables(con)  # the kommune checks need the reference
        yield con


def check_day(home: Home, day: date | str, suites: Iterable[Suite | str] | None = None) -> DQResult:
    """Run suites (default all) for a day against the home's vault and linked snapshot, and
    write `<home>/reports/dq/<day>.json` and `.html` (merged with other suites' results of the day)."""
    day = date.fromisoformat(day) if isinstance(day, str) else day
    checkpoint("dq")
    all_suites = load_suites()
    chosen = [all_suites[s] if isinstance(s, str) else s for s in (suites if suites is not None else all_suites.values())]
    results: list[DQResult] = []
    for database in ("vault", "linked"):
        mine = [s for s in chosen if s.database == database]
        if mine:
            with _home_connection(home, database) as con:
                results.append(run_dq(con, day, mine))
    result = DQResult(day, [c for r in results for c in r.checks],
                      min((r.started for r in results), default=datetime.now(timezone.utc)),
                      max((r.finished for r in results), default=datetime.now(timezone.utc)),
                      next((r.volumes for r in results if r.volumes is not None), None))
    result = apply_waivers(result, waivers_for(home, day))
    write_dq_report(home, result)
    return result


# --- waivers ------------------------------------------------------------------------------------

WAIVERS_DDL = """CREATE TABLE IF NOT EXISTS dq_waivers (
    delivery_date DATE NOT NULL, check_name VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    waived_by VARCHAR NOT NULL, waived_at TIMESTAMPTZ NOT NULL)"""


def check_names() -> set[str]:
    return {e.name for s in load_suites().values() for e in s.expectations}


def waive(home: Home, day: date, check: str, reason: str, who: str) -> dict[str, str]:
    """Record in the vault that `who` released the blocking check `check` for `day`, and why."""
    if check not in check_names():
        raise ValueError(f"no data-quality check is named {check!r} (see dq_checks/)")
    if not reason.strip():
        raise ValueError("a waiver needs a reason")
    with warehouse(home) as con:
        con.execute(WAIVERS_DDL)
        con.execute("INSERT INTO dq_waivers VALUES (?, ?, ?, ?, now())", [day, check, reason.strip(), who])
    return waivers_for(home, day)[-1]


def waivers_for(home: Home, day: date) -> list[dict[str, str]]:
    """The waivers recorded for a date, oldest first (names and reasons only, no data)."""
    if not home.warehouse.exists():
        return []
    with warehouse(home, read_only=True) as con:
        if _table_missing(con, "dq_waivers"):
            return []
        rows = con.execute("""SELECT check_name, reason, waived_by, strftime(waived_at, '%Y-%m-%dT%H:%M:%S%z')
                              FROM dq_waivers WHERE delivery_date = ? ORDER BY waived_at""", [day]).fetchall()
    return [{"date": day.isoformat(), "check": c, "reason": r, "by": b, "at": t} for c, r, b, t in rows]


def apply_waivers(result: DQResult, waivers: list[dict[str, str]]) -> DQResult:
    """A blocking failure of a waived check becomes `waived`: reported, no longer blocking."""
    by_check = {w["check"]: w for w in waivers}
    checks = [replace(c, status="waived", details=(*c.details, f"waived by {w['by']} at {w['at']}: {w['reason']}"))
              if c.blocks and (w := by_check.get(c.check)) else c for c in result.checks]
    return replace(result, checks=checks, waivers=waivers)


# --- the report ---------------------------------------------------------------------------------

def dqd_document(day: date | str, checks: list[CheckResult], started: str, finished: str,
                 volumes: dict | None, waivers: list[dict] | None = None) -> dict[str, Any]:
    """The day's report, shaped like the OHDSI DataQualityDashboard's results JSON."""
    status = Counter(c.status for c in checks)
    by_category: dict[str, dict[str, int]] = {}
    for c in checks:
        by_category.setdefault(c.category, Counter())[c.status] += 1
    ordered = sorted(checks, key=lambda c: (c.status == "pass", c.priority, STATUS_ORDER[c.status],
                                            c.severity != "blocking", -c.share, c.suite, c.check))
    return {
        "startTimestamp": started,
        "endTimestamp": finished,
        "Metadata": {
            "deliveryDate": str(day),
            "generator": "stat19.dq",
            "suites": sorted({c.suite for c in checks}),
            "notes": "pctViolatedRows is a fraction, thresholdValue a percentage (as in the DQD); "
                     "counts and rules only, no identifiers.",
        },
        "Overview": {
            "countTotal": len(checks), "countPassed": status["pass"], "countFailed": status["fail"],
            "countWarned": status["warn"], "countErrored": status["error"], "countWaived": status["waived"],
            "countBlocking": sum(c.blocks for c in checks),
            "byCategory": {k: dict(v) for k, v in sorted(by_category.items())},
        },
        "CheckResults": [c.dqd() for c in ordered],
        "Waivers": waivers or [],
        "Volumes": {s: [list(p) for p in series] for s, series in (volumes or {}).items()},
    }


def write_dq_report(home: Home, result: DQResult) -> tuple[Path, Path]:
    """Write the day's JSON and HTML reports; results of suites not in `result` are kept from the
    previous report of the same day (each Dagster check writes its own suite's part)."""
    folder = home.reports / "dq"
    json_path, html_path = folder / f"{result.day}.json", folder / f"{result.day}.html"
    previous = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    kept = [CheckResult.from_dqd(d) for d in previous.get("CheckResults", []) if d["suite"] not in result.suites]
    volumes = result.volumes if result.volumes is not None else {
        s: [tuple(p) for p in series] for s, series in previous.get("Volumes", {}).items()}
    waivers = result.waivers if result.waivers is not None else previous.get("Waivers", [])
    doc = dqd_document(result.day, kept + result.checks, previous.get("startTimestamp", result.started.isoformat()),
                       result.finished.isoformat(), volumes, waivers)
    write_atomically(json_path, json.dumps(doc, indent=1, ensure_ascii=False))
    write_atomically(html_path, render_html(doc))
    write_index(home)
    return json_path, html_path


def day_status(doc: dict[str, Any]) -> str:
    """blocked | waived | warnings | passed, from a day's report."""
    o = doc["Overview"]
    if o["countBlocking"]:
        return "blocked"
    return "waived" if o.get("countWaived") else "warnings" if o["countWarned"] + o["countFailed"] + o["countErrored"] else "passed"


def write_index(home: Home) -> Path:
    """reports/dq/index.html: every reported date, newest first, with its status and links."""
    folder = home.reports / "dq"
    days = []
    for path in sorted(folder.glob("????-??-??.json"), reverse=True):
        doc = json.loads(path.read_text(encoding="utf-8"))
        failing = [c["checkName"] for c in doc["CheckResults"] if c["status"] != "pass"]
        days.append({"day": path.stem, "status": day_status(doc), "overview": doc["Overview"],
                     "failing": failing[:MAX_DETAILS], "more": max(0, len(failing) - MAX_DETAILS),
                     "waivers": doc.get("Waivers", [])})
    index = folder / "index.html"
    write_atomically(index, _html_env().get_template("dq_index.html.j2").render(days=days))
    return index


def _chart(series: list[list], day: str, width: int = 220, height: int = 48) -> dict[str, Any]:
    """Geometry of a small line chart of daily volumes; the report's day is marked. The scale
    stops at 10x the median, so one huge delivery (a first full load) does not flatten the rest."""
    values = sorted(n for _, n in series)
    median = values[len(values) // 2]
    top = max(min(values[-1], 10 * median) if median else values[-1], 1)
    step = width / max(len(series) - 1, 1)
    points = [(round(i * step, 1), round(height - min(n, top) * height / top, 1)) for i, (_, n) in enumerate(series)]
    marked = next((p for p, (d, _) in zip(points, series) if d == day), None)
    return {"points": " ".join(f"{x},{y}" for x, y in points), "marked": marked, "top": top, "cut": values[-1] > top,
            "first": series[0][0], "last": series[-1][0], "today": dict(map(tuple, series)).get(day),
            "width": width, "height": height}


@cache
def _html_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: f"{x:.2%}"
    return env


def render_html(doc: dict[str, Any]) -> str:
    day = doc["Metadata"]["deliveryDate"]
    charts = {s: _chart(series, day) for s, series in sorted(doc["Volumes"].items()) if series}
    return _html_env().get_template("dq_report.html.j2").render(doc=doc, day=day, charts=charts)


# --- Dagster ------------------------------------------------------------------------------------

def _day_of(context) -> date:
    op = context.op_execution_context
    key = op.partition_key if op.has_partition_key else context.run.tags.get("dagster/partition")
    if not key:
        raise ValueError("a data-quality check needs the day: run it for a partition (delivery date)")
    return date.fromisoformat(key)


def _check_metadata(c: CheckResult, day: date) -> dict[str, Any]:
    figures = {k: v for k, v in c.dqd().items() if v is not None and k != "details"}
    return {"deliveryDate": day.isoformat(), **figures, **({"details": "; ".join(c.details)} if c.details else {})}


def dq_asset_checks(suites: Iterable[Suite] | None = None, *, assets: Iterable[Any] | None = None,
                    linked_asset: str | None = None, partitions_def=None, pool: str | None = "duckdb",
                    retry_policy=None, resource_key: str = "stat19") -> list:
    """One Dagster `@multi_asset_check` per suite, next to the asset it guards; every expectation
    is a check, blocking ones with `blocking=True`. A blocking failure also fails the step with a
    message naming each check, its figures and threshold (`DQBlocked`), so the run ends saying why.

    `assets`: only suites whose asset is among these keys (suites for assets not built yet are
    left out). `linked_asset`: put the linked suites (asset linked/<table>) on this one asset
    instead, while the linked tables are built as one (e.g. "linked/model"). `partitions_def`:
    the guarded assets' partitions, for per-partition check results (the day is the partition key
    either way). `pool`, `retry_policy`: as for the DuckDB assets (a held database is worth a
    retry; a blocking failure is not retried). The resource `resource_key` must have a `home`
    attribute (the Stat19 resource).
    """
    chosen = list(suites) if suites is not None else list(load_suites().values())
    if linked_asset:
        chosen = [s.model_copy(update={"asset": linked_asset}) if s.asset_path[0] == "linked" else s for s in chosen]
    keys = {a if isinstance(a, AssetKey) else AssetKey.from_coercible(a) for a in assets} if assets is not None else None
    with warnings.catch_warnings():  # partitioned check specs are a Dagster preview we opt into
        warnings.simplefilter("ignore", PreviewWarning)
        return [_suite_check(s, partitions_def, pool, retry_policy, resource_key)
                for s in chosen if keys is None or AssetKey(s.asset_path) in keys]


def _suite_check(suite: Suite, partitions_def, pool: str | None, retry_policy, resource_key: str):
    key = AssetKey(suite.asset_path)
    specs = [AssetCheckSpec(e.name, asset=key, blocking=e.blocking, partitions_def=partitions_def,
                            description=f"{e.description} ({e.category}, {e.severity}, threshold {e.threshold:.2%})",
                            metadata={"suite": suite.name, "table": suite.table, "category": e.category,
                                      "severity": e.severity, "threshold": e.threshold})
             for e in suite.expectations]

    @multi_asset_check(name=f"dq_{suite.name}", specs=specs, description=suite.description,
                       required_resource_keys={resource_key}, pool=pool, retry_policy=retry_policy)
    def _check(context):  # an AssetCheckExecutionContext (no annotation: this module defers them)
        day = _day_of(context)
        home = Home(Path(getattr(context.resources, resource_key).home)).ensure()
        started = time.perf_counter()
        result = check_day(home, day, [suite])
        failed = sum(c.status in ("fail", "error") for c in result.checks)
        say(f"data quality {day} {suite.name}: {len(result.checks)} checks, {failed} failed "
            f"({time.perf_counter() - started:.1f} s)")
        for c in result.checks:
            yield AssetCheckResult(
                asset_key=key, check_name=c.check, passed=c.status in ("pass", "waived"), description=c.summary(),
                severity=AssetCheckSeverity.ERROR if c.severity == "blocking" else AssetCheckSeverity.WARN,
                metadata=_check_metadata(c, day))
        if result.blocked:
            blocked = DQBlocked(day, result.blocked)
            raise Failure(description=str(blocked), allow_retries=False,
                          metadata={"report": str(home.reports / "dq" / f"{day}.html")})

    return _check


def blocked_in_run(result) -> DQBlocked | None:
    """The blocking DQ failures of a Dagster run (an ExecuteInProcessResult or its events), as a
    DQBlocked to raise, or None. Lets `stat19 run` exit with its own code for data quality."""
    failed, day = [], "?"
    for e in getattr(result, "all_events", result):
        if e.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        ev = e.event_specific_data
        meta = {k: getattr(v, "value", v) for k, v in (ev.metadata or {}).items()}
        if ev.passed or not ev.blocking or "suite" not in meta:
            continue
        failed.append(CheckResult.from_dqd({**meta, "checkName": ev.check_name,
                                            "details": [meta["details"]] if meta.get("details") else []}))
        day = meta.get("deliveryDate", day)
    return DQBlocked(day, failed) if failed else None


__all__ = [
    "CheckResult", "DQBlocked", "DQResult", "Expectation", "Suite", "blocked_in_run", "check_day",
    "check_sql", "dq_asset_checks", "dqd_document", "load_suites", "run_dq", "waive", "waivers_for",
    "write_dq_report", "write_index",
]
