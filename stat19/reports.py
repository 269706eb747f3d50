"""Accounting reports in `<home>/reports/`: counts and rules only, never an identifier."""

from __future__ import annotations

import duckdb

from stat19.paths import Home, write_atomically

DELIVERY_COLUMNS = ["source", "delivery_date", "status", "rows_in", "rows_loaded", "rows_quarantined", "rows_duplicate", "message"]


def _csv(con: duckdb.DuckDBPyConnection, query: str) -> str:
    # polars writes CSV with proper quoting; the frames are small (one row per delivery or reason)
    return con.sql(query).pl().write_csv()


def write_delivery_reports(con: duckdb.DuckDBPyConnection, home: Home) -> None:
    """deliveries.csv: every attempt at every delivery, in processing order.
    quarantine.csv: quarantined rows by source, table and reason."""
    write_atomically(
        home.reports / "deliveries.csv",
        _csv(con, f"SELECT {', '.join(DELIVERY_COLUMNS)} FROM delivery_log ORDER BY processed_at, source"),
    )
    write_atomically(
        home.reports / "quarantine.csv",
        _csv(
            con,
            """SELECT source, table_name, reason, count(*) AS rows,
                      min(delivery_date) AS first_delivery, max(delivery_date) AS last_delivery,
                      any_value(detail) AS example_detail
               FROM quarantine GROUP BY ALL ORDER BY source, table_name, reason""",
        ),
    )
