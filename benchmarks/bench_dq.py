"""Benchmark the SYSVAK data-quality suite on a national-scale vaccination table.

Generates a year of SYSVAK record versions (~4 million, seasonal, ~2 % deletes) straight in DuckDB
SQL (range() and hashes, no Python rows) into an on-disk vault, with a year of DÅR deaths, the
delivery log and the reference tables the suite reads. Then runs the suite (GX in DuckDB) twice:

  * on the busiest day's partition (what the daily check sees), and
  * on all ~4 million rows loaded as one delivery (the worst case: a first full load).

    python benchmarks/bench_dq.py [--rows 4000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import duckdb

from stat19.db import configure
from stat19.dq import load_suites, run_dq
from stat19.ingest import ensure_schema
from stat19.reference import install_reference_tables

START = date(2025, 1, 1)
WHOLE_YEAR_DAY = date(2026, 1, 1)  # the day the whole table is re-labelled with, for the worst case

GENERATE = """
INSERT INTO sysvak_vaccinations
WITH r AS (
    SELECT i, hash(i) AS h, hash(i, 'fnr') AS p,
           -- delivery day: an autumn season peak (October-November) on top of a flat base
           CASE WHEN hash(i, 'season') % 100 < 60 THEN 273 + CAST(hash(i, 'day') % 61 AS INTEGER)
                ELSE CAST(hash(i, 'day') % 365 AS INTEGER) END AS dd
    FROM range({rows}) AS t(i)
)
SELECT
    'v' || i AS vaccination_id,
    CASE WHEN h % 50 = 0 THEN NULL ELSE lpad(CAST(p % 100000000000 AS VARCHAR), 11, '0') END AS fnr,
    CASE WHEN h % 50 = 0 THEN NULL
         ELSE ['J07BN01', 'J07BB02', 'J07AL02', 'J07CA02', 'J07BX03', 'J07BM01'][1 + CAST(h % 6 AS INTEGER)] END AS vaccine_code,
    CASE WHEN h % 50 = 0 THEN NULL ELSE 1 + CAST(h % 4 AS INTEGER) END AS dose_number,
    CASE WHEN h % 50 = 0 THEN NULL ELSE DATE '{start}' + dd - CAST(h % 3 AS INTEGER) END AS vaccination_date,
    (SELECT list(code) FROM ref_kommune_map)[1 + CAST(hash(i, 'k') % 400 AS INTEGER) % 380] AS kommune_nr,
    CAST(DATE '{start}' + dd AS TIMESTAMPTZ) + INTERVAL (8 + h % 10) HOUR AS registered_at,
    CASE WHEN h % 50 = 0 THEN 'delete' ELSE 'insert' END AS action,
    DATE '{start}' + dd AS _delivery_date,
    'part-0001.jsonl' AS _file,
    i AS _row,
    h % 50 = 0 AS _deleted
FROM r
"""

# Deaths of persons among the vaccinated (the same hash), so the after-death join does real work.
DEATHS = """
INSERT INTO daar_deaths
SELECT 'd' || i, lpad(CAST(hash(i * 89, 'fnr') % 100000000000 AS VARCHAR), 11, '0'),
       DATE '{start}' + CAST(hash(i, 'dd') % 365 AS INTEGER), 'I219', 'sykehus', '0301',
       CAST(DATE '{start}' + CAST(hash(i, 'dd') % 365 AS INTEGER) AS TIMESTAMPTZ),
       DATE '{start}' + CAST(hash(i, 'dd') % 365 AS INTEGER), 'd.csv', i, false
FROM range(45000) AS t(i)
"""

LOG = """
INSERT INTO delivery_log
SELECT 'sysvak', _delivery_date, 'loaded', count(*), count(*), 0, 0, '', 'sha', max(registered_at)
FROM sysvak_vaccinations GROUP BY _delivery_date
"""


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    print(f"{label:<58}{time.perf_counter() - started:8.2f} s")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--keep", type=Path, default=None, help="build the vault here and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        bench(args.keep, args.rows)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_dq-") as folder:
            bench(Path(folder), args.rows)


def bench(folder: Path, rows_wanted: int) -> None:
    path = folder / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    configure(con, folder)
    ensure_schema(con)
    install_reference_tables(con)
    timed(f"generate {rows_wanted:,} SYSVAK rows in DuckDB", lambda: con.execute(GENERATE.format(rows=rows_wanted, start=START)))
    con.execute(DEATHS.format(start=START))
    con.execute(LOG)
    con.execute("CHECKPOINT")

    suite = load_suites()["sysvak"]
    timed("warm-up (GX import, an empty day)", lambda: run_dq(con, date(2030, 1, 1), [suite]))

    busiest, rows = con.execute(
        "SELECT _delivery_date, count(*) FROM sysvak_vaccinations GROUP BY ALL ORDER BY 2 DESC LIMIT 1").fetchone()
    result = timed(f"suite on the busiest day {busiest} ({rows:,} rows)", lambda: run_dq(con, busiest, [suite]))
    day_seconds = (result.finished - result.started).total_seconds()

    con.execute("UPDATE sysvak_vaccinations SET _delivery_date = ?", [WHOLE_YEAR_DAY])
    total = con.execute("SELECT count(*) FROM sysvak_vaccinations").fetchone()[0]
    result = timed(f"suite on one partition of all {total:,} rows", lambda: run_dq(con, WHOLE_YEAR_DAY, [suite]))
    all_seconds = (result.finished - result.started).total_seconds()
    for c in result.checks:
        print(f"    {c.status:<5} {c.check:<30} {c.violated:>9,} of {c.denominator:>9,} {c.unit}")
    con.close()
    print(f"\nsysvak suite ({len(suite.expectations)} expectations, GX in DuckDB): "
          f"{rows:,} rows in {day_seconds:.2f} s (busiest day); {total:,} rows in {all_seconds:.2f} s "
          f"({total / all_seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
