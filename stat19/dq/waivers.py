"""Waivers: a person releases a blocking check for one delivery date, with a reason, recorded
in the vault (`stat19 waive`); a waived failure is reported but no longer blocks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from stat19.db import warehouse
from stat19.dq.gx import _table_missing
from stat19.dq.results import DQResult
from stat19.dq.suite import check_names
from stat19.paths import Home

WAIVERS_DDL = """CREATE TABLE IF NOT EXISTS dq_waivers (
    delivery_date DATE NOT NULL, check_name VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    waived_by VARCHAR NOT NULL, waived_at TIMESTAMPTZ NOT NULL)"""


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
