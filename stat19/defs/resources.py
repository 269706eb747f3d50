"""The `stat19` resource (where deliveries land and where Stat19 keeps its zones), where the daily
partitions start (`first_date`), and what every Stat19 asset shares: the time zone, the DuckDB
pool, the retry policy, the in-process executor (`resource_defs`)."""

import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import ConfigurableResource, Definitions, in_process_executor

from stat19.landing import find_deliveries
from stat19.paths import Home
from stat19.specs import source_specs

TIMEZONE = "Europe/Oslo"
# All DuckDB work shares one pool of size 1 (DuckDB allows one writing process per file).
DUCKDB_POOL = "duckdb"

# No step is retried: the one transient failure, DuckDB held by another process, is waited for
# where the vault is opened (stat19.db.warehouse); anything else would fail again the same way.
transient_retry = None


def first_date(landing: Path) -> str:
    """Where the partitions start: STAT19_FIRST_DATE if set, else the landing's first delivery
    date (today when it has none yet), so the catalog shows no years of empty partitions."""
    if override := os.environ.get("STAT19_FIRST_DATE"):
        return override
    found = find_deliveries(Path(landing), list(source_specs()))
    return (found[0].delivery_date if found else datetime.now(ZoneInfo(TIMEZONE)).date()).isoformat()


class Stat19(ConfigurableResource):
    """Where deliveries land and where Stat19 keeps its zones."""

    landing: str = os.environ.get("STAT19_LANDING", "demo/landing")
    home: str = os.environ.get("STAT19_HOME", "demo/home")

    @property
    def home_dir(self) -> Home:
        return Home(Path(self.home)).ensure()


def resource_defs() -> Definitions:
    """The resource and the executor, once for the whole graph: everything runs in-process. (A
    function, so that no second Definitions object sits at module scope next to the one of
    stat19.defs.definitions, which Dagster's autodiscovery would refuse.)"""
    return Definitions(resources={"stat19": Stat19()}, executor=in_process_executor)
