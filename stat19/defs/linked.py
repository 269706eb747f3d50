"""The asset `linked/model`: identities resolved, pseudonymised, and the linked model published
(stat19.linkage.link), downstream of every ingestion asset."""

import time

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from stat19.defs.resources import DUCKDB_POOL, Stat19, transient_retry
from stat19.linkage import link
from stat19.progress import say


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
        clock = time.perf_counter()
        summary = link(stat19.home_dir)
        seconds = round(time.perf_counter() - clock, 2)
        kept = " (nothing new since the last snapshot: kept)" if summary.unchanged else ""
        context.log.info(f"linked {summary.persons:,} persons; {summary.identity_problems} identity problems{kept}")
        if summary.unchanged:
            say("linked snapshot unchanged: nothing new was loaded since it was built")
        return MaterializeResult(metadata={
            "snapshot": "kept" if summary.unchanged else "rebuilt",
            "persons": summary.persons,
            "identity_problems": summary.identity_problems,
            "seconds": seconds,
            **{f"rows_{name}": n for name, n in summary.tables.items()},
        })

    return linked_model
