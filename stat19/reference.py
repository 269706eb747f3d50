"""Reference data (2024 geography, old-code correspondence, population) as DuckDB tables.

    ref_fylker(fylke_nr, fylke_name)                       15 fylker, 2024 borders
    ref_kommuner(kommune_nr, kommune_name, fylke_nr)       357 kommuner, 2024 borders
    ref_kommune_map(code, kommune_2024)                    every code valid 2018-2024 -> 2024 code;
        a split old code goes to its largest-weight new code, ties to the lowest new code
    ref_population_2024(kommune_nr, age, sex, population)  1 January 2024 (SSB)

The CSV files ship with the package (stat19/reference/, sources in SOURCES.md).
"""

from __future__ import annotations

import duckdb

from stat19.db import sql_literal
from stat19.paths import REFERENCE_DIR



def _csv(name: str) -> str:
    # every column as text: codes keep their leading zeros
    return f"read_csv({sql_literal(REFERENCE_DIR / name)}, header = true, all_varchar = true)"


def install_reference_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create (or replace) the ref_* tables in the connection's current database."""
    con.execute(f"CREATE OR REPLACE TABLE ref_fylker AS SELECT fylke_nr, fylke_name FROM {_csv('fylker_2024.csv')} ORDER BY 1")
    con.execute(
        f"CREATE OR REPLACE TABLE ref_kommuner AS SELECT kommune_nr, kommune_name, fylke_nr FROM {_csv('kommuner_2024.csv')} ORDER BY 1"
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE ref_kommune_map AS
            SELECT old_code AS code, arg_max(new_code, (CAST(weight AS DOUBLE), -CAST(new_code AS INTEGER))) AS kommune_2024
            FROM {_csv('kommune_correspondence.csv')}
            GROUP BY old_code
            UNION ALL  -- 2024 codes map to themselves even where the correspondence lacks an identity row
            SELECT kommune_nr, kommune_nr FROM ref_kommuner
            WHERE kommune_nr NOT IN (SELECT old_code FROM {_csv('kommune_correspondence.csv')})
            ORDER BY 1"""
    )
    con.execute(
        f"""CREATE OR REPLACE TABLE ref_population_2024 AS
            SELECT kommune_nr, CAST(age AS INTEGER) AS age, sex, CAST(population AS BIGINT) AS population
            FROM {_csv('kommune_population_age_sex_2024.csv')}"""
    )
