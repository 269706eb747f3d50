"""The jobs `daily` (everything for one delivery date) and `backfill` (loading a range of dates in
one run), the 06:00 schedule and the sensor on the landing folder; `automation_defs` gathers them."""

from datetime import date, timedelta
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    AssetsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    define_asset_job,
    in_process_executor,
    schedule,
    sensor,
)

from stat19.defs.resources import TIMEZONE, Stat19
from stat19.landing import find_deliveries
from stat19.specs import source_specs


def automation_defs(first: str, all_assets: list[AssetsDefinition], ingest_assets: list[AssetsDefinition],
                    dq_checks: list) -> Definitions:
    """The jobs, schedule and sensor over these assets and checks, for partitions from `first`."""
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

    return Definitions(jobs=[daily_job, backfill_job], schedules=[daily_0600], sensors=[landing_sensor])
