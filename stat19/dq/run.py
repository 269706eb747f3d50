"""The pipeline's entry: run suites for a day on a home's vault and linked snapshot, apply the
day's waivers and write the day's report."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Iterable, Iterator

import duckdb

from stat19.db import warehouse
from stat19.dq.gx import _table_missing, run_dq
from stat19.dq.report import write_dq_report
from stat19.dq.results import DQResult
from stat19.dq.suite import Suite, load_suites
from stat19.dq.waivers import apply_waivers, waivers_for
from stat19.faults import checkpoint
from stat19.paths import Home


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
