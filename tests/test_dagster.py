"""Dagster as statisticians see it: named jobs, partitions from the first delivery, each
partition's own metadata, the disclosure audit as a blocking check, and no warning noise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance, RunsFilter

from stat19.cli import main
from stat19.defs.products import AUDIT_CHECK
from stat19.products import product_specs
from stat19.specs import source_specs
import test_pipeline

landing = test_pipeline.landing  # the fixture: deliveries of 2026-01-05..07


@pytest.fixture(autouse=True)
def no_first_date(monkeypatch):
    monkeypatch.delenv("STAT19_FIRST_DATE", raising=False)


def test_the_definitions_name_the_jobs_start_at_the_first_delivery_and_audit_every_product(landing, monkeypatch):
    from stat19.defs import first_date, graph

    assert first_date(landing) == "2026-01-05"
    defs = graph(first_date(landing)).defs
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"daily", "backfill"} <= jobs
    daily = defs.resolve_job_def("daily")
    assert daily.partitions_def.get_first_partition_key() == "2026-01-05"
    backfill = defs.resolve_job_def("backfill")  # loading only: a range of dates in one run
    assert {k.to_user_string() for k in backfill.asset_layer.selected_asset_keys} == {f"vault/{s}" for s in source_specs()}
    for name in product_specs():
        specs = {s.name: s for s in defs.resolve_assets_def(AssetKey(["published", name])).check_specs}
        assert specs[AUDIT_CHECK].blocking, name
    # a landing that starts later starts the partitions later; STAT19_FIRST_DATE still overrides
    for folder in sorted(landing.glob("*/2026-01-05")):
        folder.rename(folder.with_name("2026-01-08"))
    assert first_date(landing) == "2026-01-06"
    monkeypatch.setenv("STAT19_FIRST_DATE", "2026-01-01")
    assert first_date(landing) == "2026-01-01"


def test_stat19_run_launches_the_named_jobs_with_each_dates_own_metadata(landing, tmp_path):
    home = tmp_path / "home"
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs(RunsFilter(tags={"stat19/trigger": "cli"}))
        assert sorted(r.job_name for r in runs) == ["backfill", "daily"]

        def metadata(source: str, day: str) -> dict:
            [record] = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=AssetKey(["vault", source]), asset_partitions=[day]), limit=1).records
            return {k: v.value for k, v in record.asset_materialization.metadata.items()}

        # one run loaded 2026-01-05..07; each partition shows its own date's delivery
        loaded = metadata("mfr", "2026-01-05")
        assert loaded.pop("seconds") >= 0  # how long the load took
        assert loaded == {"status": "loaded", "rows_in": 3, "rows_loaded": 1,
                          "rows_quarantined": 1, "rows_duplicate": 1, "message": ""}
        assert metadata("mfr", "2026-01-06")["status"] == "rejected"
        assert metadata("mfr", "2026-01-07") == {"status": "no delivery"}
        assert metadata("sysvak", "2026-01-07")["rows_loaded"] == 1

        # the disclosure audit ran as a check of every product, in the daily run
        daily = next(r for r in runs if r.job_name == "daily")
        evaluations = [e.dagster_event.event_specific_data
                       for e in instance.all_logs(daily.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
        audited = {e.asset_key.path[1]: e for e in evaluations if e.check_name == AUDIT_CHECK}
        assert set(audited) == set(product_specs())
        assert all(e.passed and e.blocking for e in audited.values())


def test_an_unsafe_release_fails_its_blocking_disclosure_check_and_nothing_is_published(tmp_path, monkeypatch):
    from dagster import materialize

    from stat19.defs import products  # the asset body calls compute_release from here
    from test_publish import R, small_world_assets

    real = products.compute_release

    def leaky(con, spec, day, timings=None, neighbours=None):  # the suppression "forgets" the hidden cells
        df, meta = real(con, spec, day, timings=timings, neighbours=neighbours)
        return df.with_columns(pl.lit(False).alias("vaccinated_ever_hidden"),
                               pl.lit(False).alias("coverage_ever_pct_hidden")), meta

    assets, Res = small_world_assets()
    [asset] = [a for a in assets if a.key == AssetKey(["published", "vaccine_coverage"])]

    def run():
        result = materialize([asset], partition_key=R.isoformat(), resources={"stat19": Res(home=str(tmp_path))},
                             raise_on_error=False)
        [evaluation] = result.get_asset_check_evaluations()
        return result, evaluation

    result, evaluation = run()
    assert result.success and evaluation.passed and evaluation.blocking
    published = tmp_path / "published" / "vaccine_coverage" / R.isoformat()
    before = (published / "data.csv").read_bytes()

    monkeypatch.setattr(products, "compute_release", leaky)
    result, evaluation = run()
    assert not result.success
    assert not evaluation.passed and evaluation.blocking
    assert "disclosure audit failed" in evaluation.description and "vaccinated_ever" in evaluation.description
    assert (published / "data.csv").read_bytes() == before  # the earlier release stands
    assert not (published / "revisions").exists()


def test_no_beta_or_deprecation_warnings_at_start_or_in_stat19_run(landing, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "STAT19_FIRST_DATE")}
    env["STAT19_LANDING"] = str(landing)
    # what `dagster dev` loads (workspace.yaml), as a fresh process sees it
    start = subprocess.run([sys.executable, "-c", "from stat19.defs.definitions import defs; defs.get_repository_def()"],
                           env=env, capture_output=True, text=True, check=True)
    stat19 = Path(sys.executable).with_name("stat19")
    run = subprocess.run([str(stat19), "run", "--landing", str(landing), "--home", str(tmp_path / "home")],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for output in (start.stderr, run.stdout, run.stderr):
        assert "Warning" not in output, output
