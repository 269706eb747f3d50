"""One daily-partitioned ingestion asset `vault/<source>` per source spec, with its
`delivery_accepted` check: it loads the delivery of each partition date into the vault."""

import time
from datetime import date
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from stat19.db import warehouse
from stat19.defs.resources import DUCKDB_POOL, Stat19, transient_retry
from stat19.ingest import ensure_schema, is_settled, load_delivery
from stat19.landing import Delivery
from stat19.progress import say
from stat19.reports import write_delivery_reports
from stat19.specs import SourceSpec


def ingest_asset(spec: SourceSpec, daily: DailyPartitionsDefinition) -> AssetsDefinition:
    """The asset that loads the source's delivery of the partition date into the vault."""
    key = AssetKey(["vault", spec.name])

    @asset(
        key=key,
        partitions_def=daily,
        group_name="ingest",
        description=f"{spec.title}: the delivery of the partition date, checked and loaded into the vault "
        f"({spec.delivery_kind}, {spec.format}).",
        retry_policy=transient_retry,
        backfill_policy=BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
        check_specs=[AssetCheckSpec("delivery_accepted", asset=key, description="The delivery was not rejected.")],
    )
    def _ingest(context: AssetExecutionContext, stat19: Stat19) -> MaterializeResult:
        # One partition (a sensor or schedule run) or a range of them (a backfill, `stat19 run`):
        # the deliveries of the range load in date order within this one step.
        home = stat19.home_dir
        single = len(context.partition_keys) == 1
        outcomes = []
        with warehouse(home) as con:
            ensure_schema(con)
            for key in context.partition_keys:
                day = date.fromisoformat(key)
                delivery = Delivery(spec.name, day, Path(stat19.landing) / spec.name / key)
                # each partition's materialization shows its own date's delivery, not the range's totals
                if not delivery.folder.is_dir():
                    context.add_asset_metadata({"status": "no delivery"}, partition_key=key)
                    continue
                if not single and is_settled(con, delivery):
                    # a backfill passes over what is already done without noise
                    context.add_asset_metadata({"status": "settled earlier, not read again"}, partition_key=key)
                    continue
                clock = time.perf_counter()
                outcome = load_delivery(con, home, delivery)
                outcomes.append(outcome)
                context.add_asset_metadata({
                    "status": outcome.status, "rows_in": outcome.rows_in, "rows_loaded": outcome.rows_loaded,
                    "rows_quarantined": outcome.rows_quarantined, "rows_duplicate": outcome.rows_duplicate,
                    "message": outcome.message, "seconds": round(time.perf_counter() - clock, 2)}, partition_key=key)
                context.log.info(outcome.describe())
                say(outcome.describe())
            write_delivery_reports(con, home)
        rejected = [f"{o.source}/{o.delivery_date}: {o.message}" for o in outcomes if o.status == "rejected"]
        return MaterializeResult(
            check_results=[
                AssetCheckResult(
                    check_name="delivery_accepted",
                    passed=not rejected,
                    severity=AssetCheckSeverity.WARN,
                    metadata={"rejected": "\n".join(rejected) or "none"},
                )
            ],
        )

    return _ingest
