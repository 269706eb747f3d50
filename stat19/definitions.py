"""The Dagster graph: one ingestion asset per source spec, daily partitions (the delivery date),
a 06:00 schedule, and a sensor on the landing folder.

Everything here is generic: the assets are made from the specs in `assets/`, so adding a source
adds its asset without touching this file. All DuckDB work shares one pool of size 1 (DuckDB
allows one writing process per file) and runs in-process.
"""


import os
from datetime import date, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetsDefinition,
    BackfillPolicy,
    ConfigurableResource,
    DailyPartitionsDefinition,
    Definitions,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MaterializeResult,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    asset,
    define_asset_job,
    in_process_executor,
    schedule,
    sensor,
)

from stat19.db import warehouse
from stat19.dq import dq_asset_checks
from stat19.ingest import ensure_schema, is_settled, load_delivery
from stat19.landing import Delivery, find_deliveries
from stat19.linkage import link, linked_connection
from stat19.products import product_assets
from stat19.paths import Home
from stat19.progress import say
from stat19.reports import write_delivery_reports
from stat19.specs import SourceSpec, source_specs

# The first delivery date the pipeline knows; partitions run from here to tomorrow.
FIRST_DATE = os.environ.get("STAT19_FIRST_DATE", "2025-01-01")
TIMEZONE = "Europe/Oslo"
DUCKDB_POOL = "duckdb"

daily = DailyPartitionsDefinition(start_date=FIRST_DATE, timezone=TIMEZONE, end_offset=1)

# No step is retried: the one transient failure, DuckDB held by another process, is waited for
# where the vault is opened (stat19.db.warehouse); anything else would fail again the same way.
transient_retry = None


class Stat19(ConfigurableResource):
    """Where deliveries land and where Stat19 keeps its zones."""

    landing: str = os.environ.get("STAT19_LANDING", "demo/landing")
    home: str = os.environ.get("STAT19_HOME", "demo/home")

    @property
    def home_dir(self) -> Home:
        return Home(Path(self.home)).ensure()


def ingest_asset(spec: SourceSpec) -> AssetsDefinition:
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
                if not delivery.folder.is_dir():
                    continue
                if not single and is_settled(con, delivery):
                    continue  # a backfill passes over what is already done without noise
                outcome = load_delivery(con, home, delivery)
                outcomes.append(outcome)
                context.log.info(outcome.describe())
                say(outcome.describe())
            write_delivery_reports(con, home)
        rejected = [f"{o.source}/{o.delivery_date}: {o.message}" for o in outcomes if o.status == "rejected"]
        metadata = {
            "deliveries": len(outcomes),
            **{f"deliveries_{status}": sum(o.status == status for o in outcomes)
               for status in ("loaded", "rejected", "ignored", "already_loaded")},
            "rows_in": sum(o.rows_in for o in outcomes),
            "rows_loaded": sum(o.rows_loaded for o in outcomes),
            "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
            "rows_duplicate": sum(o.rows_duplicate for o in outcomes),
        }
        return MaterializeResult(
            metadata=metadata,
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


ingest_assets = [ingest_asset(spec) for spec in source_specs().values()]


@asset(
    key=AssetKey(["linked", "model"]),
    deps=[a.key for a in ingest_assets],
    partitions_def=daily,
    group_name="linked",
    description="Identities resolved through id_changes, pseudonymised, and the linked model published as "
    "<home>/linked/current.duckdb (atomically replaced); linkage report in <home>/reports/linkage.csv.",
    retry_policy=transient_retry,
    backfill_policy=BackfillPolicy.single_run(),
    pool=DUCKDB_POOL,
    kinds={"duckdb"},
)
def linked_model(context: AssetExecutionContext, stat19: Stat19) -> MaterializeResult:
    summary = link(stat19.home_dir)
    kept = " (nothing new since the last snapshot: kept)" if summary.unchanged else ""
    context.log.info(f"linked {summary.persons:,} persons; {summary.identity_problems} identity problems{kept}")
    if summary.unchanged:
        say("linked snapshot unchanged: nothing new was loaded since it was built")
    return MaterializeResult(metadata={
        "snapshot": "kept" if summary.unchanged else "rebuilt",
        "persons": summary.persons,
        "identity_problems": summary.identity_problems,
        **{f"rows_{name}": n for name, n in summary.tables.items()},
    })


# One asset per product spec in assets/products/: computed as known on the partition date R,
# disclosure-controlled, audited and published.
product_assets_ = product_assets([linked_model.key], connect=linked_connection, partitions_def=daily,
                                 retry_policy=transient_retry, pool=DUCKDB_POOL)

all_assets = [*ingest_assets, linked_model, *product_assets_]

# Data-quality suites (dq_checks/*.yaml) as asset checks next to the assets they guard; a blocking
# failure withholds everything downstream for that day.
dq_checks = dq_asset_checks(assets=[a.key for a in all_assets], linked_asset="linked/model",
                            partitions_def=daily, retry_policy=transient_retry)

daily_job = define_asset_job(
    "daily",
    selection=AssetSelection.assets(*[a.key for a in all_assets]) | AssetSelection.checks(*dq_checks),
    executor_def=in_process_executor,
    description="Everything Stat19 does for one delivery date.",
)


@schedule(job=daily_job, cron_schedule="0 6 * * *", execution_timezone=TIMEZONE,
          default_status=DefaultScheduleStatus.STOPPED)
def daily_0600(context: ScheduleEvaluationContext) -> RunRequest:
    """06:00 Oslo: process yesterday's deliveries (the sensor picks up late ones at any time)."""
    day = (context.scheduled_execution_time.date() - timedelta(days=1)).isoformat()
    return RunRequest(run_key=f"schedule:{day}", partition_key=day)


@sensor(job=daily_job, minimum_interval_seconds=60, default_status=DefaultSensorStatus.STOPPED)
def landing_sensor(context: SensorEvaluationContext, stat19: Stat19):
    """A run for each delivery that has become complete (its manifest written).

    The run key includes the manifest's digest, so a delivery starts exactly one run, and a
    re-sent delivery with new content starts another. The sensor never opens DuckDB.
    """
    first = date.fromisoformat(FIRST_DATE)
    for d in find_deliveries(Path(stat19.landing), list(source_specs())):
        if d.is_complete and d.delivery_date >= first:
            yield RunRequest(
                run_key=f"{d.label()}:{d.manifest_digest()}",
                partition_key=d.delivery_date.isoformat(),
                asset_selection=[AssetKey(["vault", d.source])],
                tags={"stat19/delivery": d.label()},
            )


defs = Definitions(
    assets=all_assets,
    asset_checks=dq_checks,
    jobs=[daily_job],
    schedules=[daily_0600],
    sensors=[landing_sensor],
    resources={"stat19": Stat19()},
    executor=in_process_executor,
)
