"""`stat19 run`: process every complete delivery up to a date, through Dagster, in process.

Runs are recorded in `<home>/dagster`, the same instance `make ui` opens, so the statistician
sees command-line runs in the Dagster UI too.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from stat19.db import warehouse
from stat19.ingest import ensure_schema
from stat19.landing import Delivery, find_deliveries
from stat19.paths import Home, SpecError, write_atomically
from stat19.progress import set_printer
from stat19.dq import blocked_in_run, check_day
from stat19.specs import source_specs

# The run tags that make one run of a range of partitions (a single-run backfill). Dagster
# documents the tag strings but exports their names only from its internals (dagster._core).
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"

DAGSTER_YAML = """\
# Written by stat19: the instance `stat19 run` and `make ui` share.
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 1   # DuckDB allows one writing process
  pools:
    default_limit: 1
"""


class RunFailed(Exception):
    """A step or the run itself failed; the vault keeps the state of the last completed delivery."""


@contextmanager
def holding(home: Home) -> Iterator[None]:
    """Hold the home's lock for the whole run: one `stat19 run` per home at a time. The kernel
    releases it when the process ends, however it ends, so a killed run never blocks the next."""
    home.root.mkdir(parents=True, exist_ok=True)
    with open(home.root / "run.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise RunFailed(f"another stat19 run (pid {lock.read().strip() or '?'}) is using the home {home.root}; "
                            "wait for it to end") from None
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def recover(home: Home, instance, progress: Callable[[str], None]) -> None:
    """Undo what a killed run left behind. Called with the home's lock held, so every command-line
    run still marked as in progress belongs to a dead process."""
    from dagster import DagsterRunStatus, RunsFilter

    from stat19.publish import recover as recover_publications
    from stat19.publish.series import remove_leftovers as remove_vault_leftovers

    in_progress = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED, DagsterRunStatus.STARTING,
                   DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
    for dead in instance.get_runs(RunsFilter(statuses=in_progress, tags={"stat19/trigger": "cli"})):
        instance.report_run_failed(dead, message="the process running it ended without finishing it (killed?)")
        instance.event_log_storage.free_concurrency_slots_for_run(dead.run_id)  # else the DuckDB pool waits forever
        progress(f"Marked the unfinished Dagster run {dead.run_id[:8]} as failed and freed its slots")
    for leftover in [*home.linked.glob(".building-*"), *home.scratch.glob("*"), *home.reports.rglob(".*.tmp")]:
        if leftover.is_dir():
            continue  # a release being built: recover_publications decides
        leftover.unlink(missing_ok=True)
    for product_dir in home.published.iterdir() if home.published.is_dir() else []:
        if product_dir.is_dir():
            recover_publications(product_dir)
    remove_vault_leftovers(home)  # half-written internal copies of releases (stat19/publish/series.py)


@dataclass
class RunSummary:
    outcomes: list[tuple] = field(default_factory=list)  # rows of delivery_log written by this run
    dates: list[date] = field(default_factory=list)
    reference_date: date | None = None

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o[2] == status)


def dagster_instance(home: Home):
    from dagster import DagsterInstance

    instance_dir = home.root / "dagster"
    instance_dir.mkdir(parents=True, exist_ok=True)
    if not (instance_dir / "dagster.yaml").exists():
        write_atomically(instance_dir / "dagster.yaml", DAGSTER_YAML)
    return DagsterInstance.from_config(str(instance_dir))


def pending_deliveries(home: Home, landing: Path, through: date | None) -> dict[date, list[Delivery]]:
    """Deliveries to process, by date: new or changed complete ones, and folders still without a
    manifest (recorded as ignored). A delivery already loaded or rejected with the same manifest is
    not tried again."""
    found = find_deliveries(landing, list(source_specs()), through)
    with warehouse(home) as con:
        ensure_schema(con)
        settled = {
            (s, d, sha)
            for s, d, sha in con.execute(
                "SELECT source, delivery_date, manifest_sha256 FROM loaded_deliveries "
                "UNION SELECT source, delivery_date, manifest_sha256 FROM delivery_log WHERE status = 'rejected'"
            ).fetchall()
        }
    by_date: dict[date, list[Delivery]] = defaultdict(list)
    for d in found:
        if not d.is_complete or (d.source, d.delivery_date, d.manifest_digest()) not in settled:
            by_date[d.delivery_date].append(d)
    return dict(sorted(by_date.items()))


def reference_date(landing: Path, through: date | None) -> date | None:
    """The latest delivery date (up to `through`) whose deliveries are complete: at least one
    delivery of that date has its manifest, and no folder of that date is still being written
    (no manifest yet). A folder without a manifest therefore never chooses the date."""
    complete: set[date] = set()
    in_progress: set[date] = set()
    for d in find_deliveries(landing, list(source_specs()), through):
        (complete if d.is_complete else in_progress).add(d.delivery_date)
    return max(complete - in_progress, default=None)


def run(landing: Path, home: Home, through: date | None = None,
        progress: Callable[[str], None] = print, products: bool | Sequence[str] = True) -> RunSummary:
    """Load every pending delivery up to `through`, then check, link and publish for the reference
    date, holding the home's lock; a run killed earlier is cleaned up first. Any failure of the run
    itself ends in RunFailed and is recorded in reports/status.json. `products=False` stops after
    the data-quality checks and linkage (benchmarks of the checks); a list of names computes and
    publishes only those products."""
    summary = RunSummary()
    try:
        with holding(home):
            home.ensure()
            instance = dagster_instance(home)
            recover(home, instance, progress)
            return _run(landing, home, through, progress, instance, summary, products)
    except (RunFailed, DataQualityBlocked, KeyboardInterrupt, SpecError) as exc:  # a bad spec: the caller names it
        if not isinstance(exc, DataQualityBlocked):
            _record_failure(home, summary.reference_date, str(exc) or "interrupted")
        raise
    except Exception as exc:
        message = f"the run itself failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        _record_failure(home, summary.reference_date, message)
        raise RunFailed(message) from exc


def _record_failure(home: Home, day: date | None, message: str) -> None:
    try:
        write_status(home, day, "failed", message)
    except OSError:
        pass  # a full disk or an unwritable home: the message on the terminal has to do


def _run(landing: Path, home: Home, through: date | None, progress: Callable[[str], None], instance,
         summary: RunSummary, products: bool | Sequence[str]) -> RunSummary:
    from stat19.defs import Stat19, first_date, graph as dagster_graph

    # The partitions start at the landing's first delivery (or STAT19_FIRST_DATE).
    graph = dagster_graph(first_date(landing))
    first = date.fromisoformat(graph.first_date)
    todo = pending_deliveries(home, landing, through)
    too_early = [d for d in todo if d < first]
    if too_early:
        raise RunFailed(
            f"deliveries dated {too_early[0]} are before the first partition {first} (STAT19_FIRST_DATE); "
            f"set it to {too_early[0]} or earlier, or leave it unset"
        )
    last = reference_date(landing, through)
    if last is None and not todo:
        progress("Nothing to do: no complete delivery in the landing folder.")
        return summary
    summary.reference_date = last

    resources = {"stat19": Stat19(landing=str(landing), home=str(home.root))}
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}  # the terminal shows our own lines

    def execute(what: str, job: str, assets: list, checks: set | None = None, tags: dict | None = None,
                partition_key: str | None = None) -> object:
        """Run the named job (`daily` or `backfill`) on these assets and checks (None: the assets' own)."""
        set_printer(lambda line: progress("  " + line))
        try:
            # (Dagster's warning about the jobs' varying backfill policies is raised, and silenced,
            # once when stat19.defs.graph resolves the jobs; a subset does not raise it again:
            # tests/test_dagster.py checks the terminal stays free of warnings)
            subset = graph.defs.resolve_job_def(job).get_subset(asset_selection=set(assets), asset_check_selection=checks)
            result = subset.execute_in_process(instance=instance, resources=resources, partition_key=partition_key,
                                               tags={**(tags or {}), "stat19/trigger": "cli"}, raise_on_error=False,
                                               run_config=quiet)
        finally:
            set_printer(None)
        if not result.success:
            if blocked := blocked_in_run(result):
                write_status(home, last, "blocked", str(blocked))
                raise DataQualityBlocked(blocked)
            failure = next((e for e in result.all_events if e.is_step_failure), None)
            error = failure.step_failure_data.error if failure is not None else None
            why = (error.cause or error).message.strip().splitlines()[-1] if error else "see the Dagster run log"
            raise RunFailed(f"{what} failed ({why}); the last completed state is kept")
        return result

    started = datetime.now(timezone.utc)
    if todo:
        # 1. Every pending delivery, each source in date order, in one run over the range.
        start, end = min(todo), max(todo)
        progress(f"Loading {sum(len(v) for v in todo.values())} deliveries from {start} to {end}")
        sources = sorted({d.source for deliveries in todo.values() for d in deliveries})
        try:
            chosen = [a for a in graph.ingest_assets if a.key.path[1] in sources]
            execute(f"loading {start}..{end}", "backfill", [a.key for a in chosen], {k for a in chosen for k in a.check_keys},
                    tags={ASSET_PARTITION_RANGE_START_TAG: start.isoformat(), ASSET_PARTITION_RANGE_END_TAG: end.isoformat()})
        finally:
            summary.outcomes = _outcomes_since(home, started)

    if last is None:
        progress("No date has the deliveries of every source complete yet: nothing is checked, linked or published.")
        write_status(home, None, "ok", "loaded; no date complete yet")
        return summary
    # 2. For the reference date: data-quality checks, then linkage and the products, which a blocking
    #    check withholds.
    progress(f"Checking data quality for {last}, linking, and publishing the releases for {last}")
    wanted = [a for a in graph.product_assets
              if products is True or (products and a.key.path[-1] in products)]
    downstream = [graph.linked_model, *wanted]
    checks = {k for c in graph.dq_checks for k in c.check_keys} | {k for a in downstream for k in a.check_keys}
    execute(f"the run for {last}", "daily", [a.key for a in downstream], checks, partition_key=last.isoformat())
    progress("  " + describe_dq(last, _dq_statuses(home, last), home))
    # The other days that got a delivery get their data-quality reports too (only the reference
    # date can block). A day with only a folder still without a manifest has nothing new to check:
    # its report would be rewritten, unchanged, by every run until the manifest comes.
    for day in sorted(d for d, found in todo.items() if d != last and any(f.is_complete for f in found)):
        progress("  " + describe_dq(day, [c.status for c in check_day(home, day).checks], home))
    write_status(home, last, "ok", "")
    return summary


class DataQualityBlocked(Exception):
    """A blocking data-quality check failed: that day's downstream work was withheld."""

    def __init__(self, blocked):
        super().__init__(str(blocked))
        self.blocked = blocked


def describe_dq(day: date, statuses: list[str], home: Home) -> str:
    counts = {s: statuses.count(s) for s in ("pass", "warn", "fail", "error")}
    return (f"{day}  data quality: {counts['pass']} passed, {counts['warn']} warnings, "
            f"{counts['fail'] + counts['error']} failed — {home.reports / 'dq' / f'{day}.html'}")


def _dq_statuses(home: Home, day: date) -> list[str]:
    doc = json.loads((home.reports / "dq" / f"{day}.json").read_text())
    return [c["status"] for c in doc["CheckResults"]]


def write_status(home: Home, day: date | None, status: str, message: str) -> None:
    """reports/status.json: how the last run ended (ok, blocked or failed; for people and monitoring)."""
    write_atomically(home.reports / "status.json", json.dumps(
        {"reference_date": day.isoformat() if day else None, "status": status, "message": message,
         "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2))


def _outcomes_since(home: Home, since: datetime) -> list[tuple]:
    with warehouse(home, read_only=True) as con:
        return con.execute(
            """SELECT source, delivery_date, status, rows_in, rows_loaded, rows_quarantined, rows_duplicate, message
               FROM delivery_log WHERE processed_at >= ? ORDER BY processed_at""",
            [since],
        ).fetchall()
