"""Geography of the releases: national, fylke and kommune on 2024 borders, and the unknown units.

Codes: ``NO`` (national), two digits (fylke), four digits (kommune); a kommune's fylke is its first
two digits. ``99``/``9999`` hold what no 2024 unit can take.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

GEO_COLUMNS = ["geo_level", "geo_code", "geo_name"]
NATIONAL_CODE = "NO"
UNKNOWN_FYLKE, UNKNOWN_KOMMUNE = "99", "9999"


def geo_parent(code: str) -> str | None:
    """Parent of a geography code: kommune -> fylke (first two digits), fylke -> NO."""
    if code == NATIONAL_CODE:
        return None
    return NATIONAL_CODE if len(code) == 2 else code[:2]


def geo_parents(codes: Iterable[str]) -> dict[str, str]:
    """child -> parent of every code with a parent (the geography's hierarchy over these codes)."""
    return {c: p for c in codes if (p := geo_parent(c)) is not None}


def geo_names(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Names of the 2024 fylker and kommuner, by level and code (from the ref_* tables)."""
    fylker = dict(con.execute("SELECT fylke_nr, fylke_name FROM ref_fylker").fetchall())
    kommuner = dict(con.execute("SELECT kommune_nr, kommune_name FROM ref_kommuner").fetchall())
    return {"fylke": fylker, "kommune": kommuner}
