"""One daily-partitioned Dagster asset per product spec, with the blocking disclosure-audit check."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, DailyPartitionsDefinition,
                     Failure, MaterializeResult, PreviewWarning, asset)

from stat19 import publish as pub
from stat19.linkage import linked_connection
from stat19.paths import Home
from stat19.products import (ProductSpec, compute_release, kept_release, last_deliveries, product_specs,
                             record_release_inputs, release_inputs)
from stat19.progress import say


Connect = Callable[[Home], AbstractContextManager[duckdb.DuckDBPyConnection]]
SourceDeliveries = Callable[[duckdb.DuckDBPyConnection, date], Sequence[Mapping[str, Any]]]


# The blocking asset check on every product: the disclosure audit publish() runs before writing.
AUDIT_CHECK = "disclosure_audit"


def product_assets(
    upstream_keys: Iterable[Any],
    *,
    connect: Connect | None = None,
    source_deliveries: SourceDeliveries | None = None,
    partitions_def: Any = None,
    resource_key: str = "stat19",
    group_name: str = "published",
    pool: str | None = "duckdb",
    retry_policy: Any = None,
    specs: Mapping[str, ProductSpec] | None = None,
) -> list[Any]:
    """One daily-partitioned asset ``published/<product>`` per product spec (partition = R).

    Each depends on ``upstream_keys``; its body opens a connection with ``connect(home)`` (default
    ``stat19.linkage.linked_connection``), computes the release protected against its neighbouring
    releases (``stat19.publish.neighbours``), takes the source deliveries from
    ``source_deliveries(con, R)`` (default ``last_deliveries``) and publishes it
    (``stat19.publish.publish``: audit, series audit, vault copy, revisions, catalog). The home comes from the resource
    ``resource_key`` (its ``home`` attribute, a path)."""
    deps = [k if isinstance(k, AssetKey) else AssetKey(k) for k in upstream_keys]
    if partitions_def is None:
        partitions_def = DailyPartitionsDefinition(start_date=os.environ.get("STAT19_FIRST_DATE", "2025-01-01"),
                                                   timezone="Europe/Oslo", end_offset=1)
    opener = connect or linked_connection
    deliveries_of = source_deliveries or last_deliveries

    def make(spec: ProductSpec) -> Any:
        key = AssetKey(["published", spec.name])
        with warnings.catch_warnings():  # partitioned check specs are a Dagster preview we opt into
            warnings.simplefilter("ignore", PreviewWarning)
            audit_check = AssetCheckSpec(
                AUDIT_CHECK, asset=key, blocking=True, partitions_def=partitions_def,
                description="The disclosure audit of the release (primary rule, every additive relation, the "
                "LP intervals of hidden cells, derived values and flags) and the series audit against the "
                "neighbouring releases (no hidden cell recoverable by differencing): a failure publishes nothing.")

        @asset(
            key=key,
            deps=deps,
            partitions_def=partitions_def,
            group_name=group_name,
            description=f"{spec.title}: disclosure-controlled release for the partition's reference date "
                        "(Parquet, CSV, JSON-stat 2.0, metadata).",
            required_resource_keys={resource_key},
            retry_policy=retry_policy,
            pool=pool,
            kinds={"duckdb", "parquet"},
            check_specs=[audit_check],
        )
        def _product(context):  # type: ignore[no-untyped-def]  # (no annotations: resolved lazily by Dagster)
            res = getattr(context.resources, resource_key)
            home = Home(Path(res.home))
            day = date.fromisoformat(context.partition_key)
            target = pub.release_dir(home, spec.name, day)
            with opener(home) as con:
                inputs = release_inputs(con, spec, day)
                kept = kept_release(con, spec.name, day, inputs, target)
                if kept is None:
                    timings: dict[str, float] = {}
                    # the published releases beside R (vault copies): protected against, then audited against
                    near = pub.neighbours(home, spec.name, day)
                    df, meta = compute_release(con, spec, day, timings=timings, neighbours=near)
                    deliveries = list(deliveries_of(con, day))
            if kept is not None:  # the release in place was made from the same inputs: not computed again
                line = f"{day}  {spec.name:<21}unchanged revision {kept['revision']}: inputs unchanged, not recomputed"
                context.log.info(line)
                say(line)
                yield MaterializeResult(
                    metadata={"status": "unchanged", "revision": kept["revision"], "path": str(target),
                              "recomputed": False},
                    check_results=[AssetCheckResult(
                        check_name=AUDIT_CHECK, passed=True,
                        description=f"revision {kept['revision']} passed the audit when it was published")])
                return
            clock = time.perf_counter()
            try:
                result = pub.publish(home, spec, day, df, meta, source_deliveries=deliveries, neighbours=near)
            except pub.DisclosureAuditFailed as exc:
                # the check fails with the finding, and the step with it: nothing was written
                yield AssetCheckResult(check_name=AUDIT_CHECK, passed=False, severity=AssetCheckSeverity.ERROR,
                                       description=str(exc)[:2000])
                raise Failure(description=str(exc), allow_retries=False) from exc
            timings["publication"] = time.perf_counter() - clock  # the audit, the files, the swap
            with opener(home) as con:
                record_release_inputs(con, spec.name, day, inputs, target)
            line = (f"{day}  {spec.name:<21}{result.status} revision {result.revision}: {meta['cells']:,} cells, "
                    f"{meta['disclosure']['hidden_values_total']:,} values hidden "
                    f"({', '.join(f'{k} {v:.1f} s' for k, v in timings.items())})")
            context.log.info(line)
            say(line)
            hidden = meta["disclosure"]["hidden_values_total"]
            yield MaterializeResult(
                metadata={
                    "status": result.status,
                    "revision": result.revision,
                    "path": str(result.path),
                    "cells": meta["cells"],
                    "hidden_values": hidden,
                    "excluded_records": meta["excluded_records"],
                    **{f"seconds_{phase}": round(v, 2) for phase, v in timings.items()},
                },
                check_results=[AssetCheckResult(
                    check_name=AUDIT_CHECK, passed=True,
                    description=f"passed: {meta['cells']:,} cells, {hidden:,} values hidden",
                    metadata={"cells": meta["cells"], "hidden_values": hidden})])

        return _product

    return [make(s) for s in (specs or product_specs()).values()]
