"""The Dagster graph: one ingestion asset per source spec, daily partitions (the delivery date)
from the landing's first delivery, the jobs `daily` and `backfill`, a 06:00 schedule, and a sensor
on the landing folder.

Everything here is generic: the assets are made from the specs in `assets/`, so adding a source
adds its asset without touching this file. All DuckDB work shares one pool of size 1 (DuckDB
allows one writing process per file) and runs in-process. `graph(first_date)` builds it all for
partitions starting on that date (`stat19 run` builds it for its landing); `defs` is the graph of
`STAT19_LANDING`, which `make ui` loads.
"""


import os
import warnings
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
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
from stat19.defs.checks import dq_asset_checks
from stat19.ingest import ensure_schema, is_settled, load_delivery
from stat19.landing import Delivery, find_deliveries
from stat19.linkage import link, linked_connection
from stat19.defs.products import product_assets
from stat19.paths import Home
from stat19.progress import say
from stat19.reports import write_delivery_reports
from stat19.specs import SourceSpec, source_specs

TIMEZONE = "Europe/Oslo"
DUCKDB_POOL = "duckdb"


def first_date(landing: Path) -> str:
    """Where the partitions start: STAT19_FIRST_DATE if set, else the landing's first delivery
    date (today when it has none yet), so the catalog shows no years of empty partitions."""
    if override := os.environ.get("STAT19_FIRST_DATE"):
        return override
    found = find_deliveries(Path(landing), list(source_specs()))
    return (found[0].delivery_date if found else datetime.now(ZoneInfo(TIMEZONE)).date()).isoformat()


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
                outcome = load_delivery(con, home, delivery)
                outcomes.append(outcome)
                context.add_asset_metadata({
                    "status": outcome.status, "rows_in": outcome.rows_in, "rows_loaded": outcome.rows_loaded,
                    "rows_quarantined": outcome.rows_quarantined, "rows_duplicate": outcome.rows_duplicate,
                    "message": outcome.message}, partition_key=key)
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


@contextmanager
def _quietly():
    """Without Dagster's BetaWarning for `backfill_policy`: single-run backfills are what ingestion
    needs; the parameter is marked beta, one warning per asset at every start."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")
        yield


def linked_asset(deps: list[AssetKey], daily: DailyPartitionsDefinition) -> AssetsDefinition:
    @asset(
        key=AssetKey(["linked", "model"]),
        deps=deps,
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

    return linked_model


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

    daily_job = define_asset_job(
        "daily",
        selection=AssetSelection.assets(*[a.key for a in all_assets]) | AssetSelection.checks(*dq_checks),
        executor_def=in_process_executor,
        description="Everything Stat19 does for one delivery date: load that date's deliveries, check data "
        "quality, link, and publish the products for it. The schedule, the sensor and `stat19 run` "
        "(for the reference date) run this job.",
    )
    backfill_job = define_asset_job(
        "backfill",
        # the loading and its delivery_accepted checks; the data-quality suites judge one day at a time
        selection=AssetSelection.assets(*[a.key for a in ingest_assets]).without_checks()
        | AssetSelection.checks(*[k for a in ingest_assets for k in a.check_keys]),
        executor_def=in_process_executor,
        description="Load every delivery of a range of dates in one run, each source in date order "
        "(what `stat19 run` does first); then run `daily` for the last date to check, link and publish.",
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
        start = date.fromisoformat(first)
        for d in find_deliveries(Path(stat19.landing), list(source_specs())):
            if not d.is_complete:
                continue
            if d.delivery_date < start:  # before the partitions: reload the code location to see it
                context.log.warning(f"{d.label()} is dated before the first partition {first}; not requested")
                continue
            yield RunRequest(
                run_key=f"{d.label()}:{d.manifest_digest()}",
                partition_key=d.delivery_date.isoformat(),
                asset_selection=[AssetKey(["vault", d.source])],
                tags={"stat19/delivery": d.label()},
            )

    defs = Definitions(
        assets=all_assets,
        asset_checks=dq_checks,
        jobs=[daily_job, backfill_job],
        schedules=[daily_0600],
        sensors=[landing_sensor],
        resources={"stat19": Stat19()},
        executor=in_process_executor,
    )
    with warnings.catch_warnings():
        # Resolved here, once: products take one date at a time while ingestion takes ranges, and
        # Dagster warns at every resolution that `daily` therefore runs one date (as it should).
        warnings.filterwarnings("ignore", category=UserWarning, message="Asset job .* varying BackfillPolicies")
        defs.get_repository_def().get_all_jobs()
    return Graph(first, daily, ingest_assets, linked_model, product_assets_, dq_checks, defs)


# What `make ui` (workspace.yaml) loads: the graph over STAT19_LANDING.
FIRST_DATE = first_date(Path(Stat19().landing))
defs = graph(FIRST_DATE).defs
