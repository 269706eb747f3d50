"""The data-quality suites as Dagster asset checks: one `@multi_asset_check` per suite, next to
the asset it guards, every expectation a check (blocking ones with `blocking=True`). The checks
run `stat19.dq.check_day`; a blocking failure fails the step with `DQBlocked`'s message."""

from __future__ import annotations

import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any, Iterable

from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, Failure, PreviewWarning,
                     multi_asset_check)

from stat19.dq import CheckResult, DQBlocked, Suite, check_day, load_suites
from stat19.paths import Home
from stat19.progress import say


def _day_of(context) -> date:
    op = context.op_execution_context
    key = op.partition_key if op.has_partition_key else context.run.tags.get("dagster/partition")
    if not key:
        raise ValueError("a data-quality check needs the day: run it for a partition (delivery date)")
    return date.fromisoformat(key)


def _check_metadata(c: CheckResult, day: date) -> dict[str, Any]:
    figures = {k: v for k, v in c.dqd().items() if v is not None and k != "details"}
    return {"deliveryDate": day.isoformat(), **figures, **({"details": "; ".join(c.details)} if c.details else {})}


def dq_asset_checks(suites: Iterable[Suite] | None = None, *, assets: Iterable[Any] | None = None,
                    linked_asset: str | None = None, partitions_def=None, pool: str | None = "duckdb",
                    retry_policy=None, resource_key: str = "stat19") -> list:
    """One Dagster `@multi_asset_check` per suite, next to the asset it guards; every expectation
    is a check, blocking ones with `blocking=True`. A blocking failure also fails the step with a
    message naming each check, its figures and threshold (`DQBlocked`), so the run ends saying why.

    `assets`: only suites whose asset is among these keys (suites for assets not built yet are
    left out). `linked_asset`: put the linked suites (asset linked/<table>) on this one asset
    instead, while the linked tables are built as one (e.g. "linked/model"). `partitions_def`:
    the guarded assets' partitions, for per-partition check results (the day is the partition key
    either way). `pool`, `retry_policy`: as for the DuckDB assets (a held database is worth a
    retry; a blocking failure is not retried). The resource `resource_key` must have a `home`
    attribute (the Stat19 resource).
    """
    chosen = list(suites) if suites is not None else list(load_suites().values())
    if linked_asset:
        chosen = [s.model_copy(update={"asset": linked_asset}) if s.asset_path[0] == "linked" else s for s in chosen]
    keys = {a if isinstance(a, AssetKey) else AssetKey.from_coercible(a) for a in assets} if assets is not None else None
    with warnings.catch_warnings():  # partitioned check specs are a Dagster preview we opt into
        warnings.simplefilter("ignore", PreviewWarning)
        return [_suite_check(s, partitions_def, pool, retry_policy, resource_key)
                for s in chosen if keys is None or AssetKey(s.asset_path) in keys]


def _suite_check(suite: Suite, partitions_def, pool: str | None, retry_policy, resource_key: str):
    key = AssetKey(suite.asset_path)
    specs = [AssetCheckSpec(e.name, asset=key, blocking=e.blocking, partitions_def=partitions_def,
                            description=f"{e.description} ({e.category}, {e.severity}, threshold {e.threshold:.2%})",
                            metadata={"suite": suite.name, "table": suite.table, "category": e.category,
                                      "severity": e.severity, "threshold": e.threshold})
             for e in suite.expectations]

    @multi_asset_check(name=f"dq_{suite.name}", specs=specs, description=suite.description,
                       required_resource_keys={resource_key}, pool=pool, retry_policy=retry_policy)
    def _check(context):  # an AssetCheckExecutionContext (no annotation: this module defers them)
        day = _day_of(context)
        home = Home(Path(getattr(context.resources, resource_key).home)).ensure()
        started = time.perf_counter()
        result = check_day(home, day, [suite])
        failed = sum(c.status in ("fail", "error") for c in result.checks)
        say(f"data quality {day} {suite.name}: {len(result.checks)} checks, {failed} failed "
            f"({time.perf_counter() - started:.1f} s)")
        for c in result.checks:
            yield AssetCheckResult(
                asset_key=key, check_name=c.check, passed=c.status in ("pass", "waived"), description=c.summary(),
                severity=AssetCheckSeverity.ERROR if c.severity == "blocking" else AssetCheckSeverity.WARN,
                metadata=_check_metadata(c, day))
        if result.blocked:
            blocked = DQBlocked(day, result.blocked)
            raise Failure(description=str(blocked), allow_retries=False,
                          metadata={"report": str(home.reports / "dq" / f"{day}.html")})

    return _check
