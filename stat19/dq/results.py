"""The outcome of checks on a day: one CheckResult per expectation, a day's DQResult, and
DQBlocked, the exception that withholds the day's downstream work when blocking checks fail.

A check passes when violating rows <= threshold x rows; otherwise it fails (blocking) or warns
(warning). A check that cannot be evaluated is an `error`; a blocking one that errors blocks too,
since nobody can say the data is fine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

STATUS_ORDER = {"fail": 0, "error": 1, "warn": 2, "waived": 3, "pass": 4}  # the report lists failures first
MAX_DETAILS = 5  # details of a check kept in its result, failing checks named per day in the index


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
