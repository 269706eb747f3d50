"""The Dagster graph of Stat19, assembled from the modules of this package: one ingestion asset per
source spec (`ingest`), the linked model (`linked`), one asset per product spec (`products`), the
data-quality suites as asset checks, the jobs `daily` and `backfill`, a 06:00 schedule and a sensor
on the landing folder (`automation`), and the `stat19` resource (`resources`), with daily
partitions (the delivery date) from the landing's first delivery.

Everything here is generic: the assets are made from the specs in `assets/`, so adding a source
adds its asset without touching this package. All DuckDB work shares one pool of size 1 (DuckDB
allows one writing process per file) and runs in-process. `graph(first_date)` builds it all for
partitions starting on that date (`stat19 run` builds it for its landing). Importing this package
builds nothing: the graph of `STAT19_LANDING`, which `make ui` (workspace.yaml) and
`[tool.dagster]` load, is `stat19.defs.definitions.defs`.
"""

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from dagster import AssetsDefinition, BetaWarning, DailyPartitionsDefinition, Definitions

from stat19.defs.automation import automation_defs
from stat19.defs.ingest import ingest_asset
from stat19.defs.linked import linked_asset
from stat19.defs.products import product_assets
from stat19.defs.resources import DUCKDB_POOL, TIMEZONE, Stat19, first_date, resource_defs, transient_retry
from stat19.defs.checks import dq_asset_checks
from stat19.linkage import linked_connection
from stat19.specs import source_specs

__all__ = ["Graph", "Stat19", "first_date", "graph"]


@contextmanager
def _quietly():
    """Without Dagster's BetaWarning for `backfill_policy`: single-run backfills are what ingestion
    needs; the parameter is marked beta, one warning per asset at every start."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")
        yield


@dataclass(frozen=True)
class Graph:
    """Everything Dagster knows about Stat19, for partitions from `first_date`."""

    first_date: str
    daily: DailyPartitionsDefinition
    ingest_assets: list
    linked_model: AssetsDefinition
    product_assets: list
    dq_checks: list
    defs: Definitions

    @property
    def all_assets(self) -> list:
        return [*self.ingest_assets, self.linked_model, *self.product_assets]


@cache
def graph(first: str) -> Graph:
    """The assets, checks, jobs, schedule and sensor with daily partitions from `first` to tomorrow."""
    daily = DailyPartitionsDefinition(start_date=first, timezone=TIMEZONE, end_offset=1)
    with _quietly():
        ingest_assets = [ingest_asset(spec, daily) for spec in source_specs().values()]
        linked_model = linked_asset([a.key for a in ingest_assets], daily)
    # One asset per product spec in assets/products/: computed as known on the partition date R,
    # disclosure-controlled, audited (the blocking check disclosure_audit) and published.
    product_assets_ = product_assets([linked_model.key], connect=linked_connection, partitions_def=daily,
                                     retry_policy=transient_retry, pool=DUCKDB_POOL)
    all_assets = [*ingest_assets, linked_model, *product_assets_]

    # Data-quality suites (dq_checks/*.yaml) as asset checks next to the assets they guard; a blocking
    # failure withholds everything downstream for that day.
    dq_checks = dq_asset_checks(assets=[a.key for a in all_assets], linked_asset="linked/model",
                                partitions_def=daily, retry_policy=transient_retry)

    defs = Definitions.merge(
        Definitions(assets=all_assets, asset_checks=dq_checks),
        automation_defs(first, all_assets, ingest_assets, dq_checks),
        resource_defs(),
    )
    with warnings.catch_warnings():
        # Resolved here, once: products take one date at a time while ingestion takes ranges, and
        # Dagster warns at every resolution that `daily` therefore runs one date (as it should).
        warnings.filterwarnings("ignore", category=UserWarning, message="Asset job .* varying BackfillPolicies")
        defs.get_repository_def().get_all_jobs()
    return Graph(first, daily, ingest_assets, linked_model, product_assets_, dq_checks, defs)
