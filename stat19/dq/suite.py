"""The suite model: expectations and suites as data, read from the YAML files in `dq_checks/`.

One YAML file per suite in `dq_checks/` (format: `dq_checks/README.md`). A suite checks one table
on one day: the batch is `SELECT * FROM <table> WHERE <day_column> = <day>` (a source's record
table and `_delivery_date`, a linked table and `_known_from`; without `day_column`, the whole
table). Every expectation carries a Kahn category (conformance, completeness, plausibility), a
severity (blocking or warning) and a threshold: the share of the batch's rows allowed to violate
it. An expectation is either a GX expectation (`expect:` + `kwargs:`) or SQL that returns the
violating rows (`sql:` naming a template in `sql/dq/`, or an inline `query:`), which runs in
DuckDB as it stands (`stat19.dq.gx`); `{batch}` in the SQL is the day's rows. Adding an
expectation is editing a file.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from stat19.db import sql_ident
from stat19.paths import SpecError, spec_files
from stat19.spec_base import NamedSpec, SpecModel, load_spec

Category = Literal["conformance", "completeness", "plausibility"]
Severity = Literal["blocking", "warning"]
# A suite's declared false-alarm rate: the chance that a clean day fails one of its blocking checks.
DEFAULT_FALSE_ALARM_RATE = 0.0002


class Expectation(NamedSpec):
    """One check: what it expects, its Kahn category, severity and threshold."""

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


class Suite(SpecModel):
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
    return load_spec(path, Suite, "DQ suite", defaults={"name": path.stem})


@cache
def _load(paths: tuple[Path, ...]) -> dict[str, Suite]:
    suites = {p.stem: load_suite(p) for p in paths}
    seen: dict[tuple[str, str], str] = {}
    for s in suites.values():
        for e in s.expectations:
            other = seen.setdefault((s.asset, e.name), s.name)
            if other != s.name or sum(x.name == e.name for x in s.expectations) > 1:
                raise SpecError(f"DQ check name {e.name!r} is used twice on asset {s.asset} ({other}, {s.name})")
    return suites


def load_suites(directory: Path | None = None) -> dict[str, Suite]:
    """Every suite in dq_checks/ of every spec root (or in `directory`), by name."""
    if directory is not None:
        return _load(tuple(sorted(Path(directory).resolve().glob("*.yaml"))))
    return _load(tuple(spec_files("*.yaml", "dq_checks")))


def check_names() -> set[str]:
    return {e.name for s in load_suites().values() for e in s.expectations}
