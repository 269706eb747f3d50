"""Data-quality expectations: suites as data, run inside DuckDB (GX's own expectations by Great
Expectations, SQL checks directly), reported like the OHDSI DataQualityDashboard. The Dagster asset checks that guard the assets with them
live in `stat19.defs.checks`; this package does not import Dagster.

Modules
-------
* `suite`: the suite model (Expectation, Suite) and the YAML files in `dq_checks/`.
* `results`: CheckResult, DQResult, DQBlocked and `blocked_in_run` (a Dagster run's blocking
  failures, read from its events).
* `gx`: running suites in DuckDB, SQL checks directly and GX's expectations through GX (`run_dq`,
  `check_sql`, `delivery_volumes`), and how GX is made to work on the caller's DuckDB connection.
* `waivers`: releasing a blocking check for one date (`waive`, `waivers_for`, `apply_waivers`).
* `report`: the day's JSON and HTML reports and the index of dates.
* `run`: `check_day`, the pipeline's entry (a home, a day).

A check passes when violating rows <= threshold x rows; otherwise it fails (blocking) or warns
(warning). A check that cannot be evaluated is an `error`; a blocking one that errors blocks too,
since nobody can say the data is fine.

Entry points
------------
`run_dq(con_or_path, day, suites)` -> `DQResult`; `check_day(home, day, suites)` runs them on
the home's vault (linked suites: with the linked snapshot attached) and writes
`<home>/reports/dq/<day>.json` and `.html`; `stat19.defs.checks.dq_asset_checks()` -> one
`@multi_asset_check` per suite, each expectation a check (blocking ones with `blocking=True`);
`DQBlocked` carries the blocking failures (`DQResult.raise_if_blocked()`,
`blocked_in_run(dagster_result)`).
"""

from __future__ import annotations

from stat19.dq.gx import check_sql, delivery_volumes, run_dq
from stat19.dq.report import day_status, dqd_document, render_html, write_dq_report, write_index
from stat19.dq.results import MAX_DETAILS, STATUS_ORDER, CheckResult, DQBlocked, DQResult, blocked_in_run
from stat19.dq.run import check_day
from stat19.dq.suite import (DEFAULT_FALSE_ALARM_RATE, Category, Expectation, Severity, Suite, check_names, load_suite,
                             load_suites)
from stat19.dq.waivers import WAIVERS_DDL, apply_waivers, waive, waivers_for

__all__ = [
    "DEFAULT_FALSE_ALARM_RATE", "MAX_DETAILS", "STATUS_ORDER", "WAIVERS_DDL", "Category", "CheckResult", "DQBlocked",
    "DQResult", "Expectation", "Severity", "Suite", "apply_waivers", "blocked_in_run", "check_day", "check_names",
    "check_sql", "day_status", "delivery_volumes", "dqd_document", "load_suite", "load_suites", "render_html",
    "run_dq", "waive", "waivers_for", "write_dq_report", "write_index",
]
