"""`stat19 run` through Dagster, the reports it writes, and the Dagster definitions."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import build_sensor_context, DagsterInstance

from kit import csv_bytes, jsonl_bytes, write_delivery
from stat19.cli import main
from test_ingest import MFR_HEADER, mfr_row, vacc


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "landing"
    write_delivery(root, "mfr", "2026-01-05", {"b.csv": (csv_bytes(MFR_HEADER, [mfr_row(0), mfr_row(0), mfr_row(1, birth_date="x")], ","), 3)})
    write_delivery(root, "sysvak", "2026-01-05", {"a.jsonl": (jsonl_bytes([vacc(0), vacc(1)]), 2)})
    write_delivery(root, "mfr", "2026-01-06", {"b.csv": (csv_bytes(MFR_HEADER, [mfr_row(2)], ","), 1)},
                   manifest_rows={"b.csv": 5})  # rejected
    write_delivery(root, "sysvak", "2026-01-06", {"a.jsonl": (jsonl_bytes([vacc(3)]), 1)}, manifest=False)  # in progress
    write_delivery(root, "sysvak", "2026-01-07", {"a.jsonl": (jsonl_bytes([vacc(4)]), 1)})
    return root


def test_run_loads_everything_complete_and_accounts_for_every_row(landing, tmp_path, capsys):
    home = tmp_path / "home"
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "2026-01-05  mfr      loaded         1 of 3 rows (1 quarantined, 1 duplicates)" in out
    assert "rejected" in out and "ignored" in out

    rows = read_csv(home / "reports" / "deliveries.csv")
    by = {(r["source"], r["delivery_date"]): r for r in rows}
    assert by[("mfr", "2026-01-05")]["status"] == "loaded"
    assert by[("mfr", "2026-01-06")]["status"] == "rejected"
    assert "manifest says 5" in by[("mfr", "2026-01-06")]["message"]
    assert by[("sysvak", "2026-01-06")]["status"] == "ignored"
    assert by[("sysvak", "2026-01-07")]["status"] == "loaded"
    for r in rows:
        if r["status"] == "loaded":
            assert int(r["rows_in"]) == int(r["rows_loaded"]) + int(r["rows_quarantined"]) + int(r["rows_duplicate"])
    assert read_csv(home / "reports" / "quarantine.csv")[0]["reason"] == "bad_date"

    # Running again does nothing new (the day still without a manifest is not checked again);
    # completing the in-progress delivery loads just that one.
    in_progress_report = home / "reports" / "dq" / "2026-01-06.json"
    written = in_progress_report.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    assert "2026-01-06  data quality" not in capsys.readouterr().out
    assert in_progress_report.stat().st_mtime_ns == written
    write_delivery(landing, "sysvak", "2026-01-06", {"a.jsonl": (jsonl_bytes([vacc(3)]), 1)})
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "2026-01-06  sysvak   loaded         1 of 1 rows" in out
    statuses = [(r["source"], r["delivery_date"], r["status"]) for r in read_csv(home / "reports" / "deliveries.csv")]
    assert statuses.count(("mfr", "2026-01-05", "loaded")) == 1


def test_run_through_stops_at_the_date(landing, tmp_path):
    home = tmp_path / "home"
    assert main(["run", "--landing", str(landing), "--home", str(home), "--through", "2026-01-05"]) == 0
    dates = {r["delivery_date"] for r in read_csv(home / "reports" / "deliveries.csv")}
    assert dates == {"2026-01-05"}


def test_run_explains_bad_usage(tmp_path, capsys):
    assert main(["run", "--landing", str(tmp_path / "nowhere"), "--home", str(tmp_path / "home")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--landing", str(tmp_path), "--home", str(tmp_path), "--through", "5 January"])
    assert exc.value.code == 2


def test_the_definitions_hold_one_asset_per_source_spec_and_the_schedule_and_sensor():
    from stat19.defs.definitions import defs
    from stat19.specs import source_specs

    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert {f"vault/{s}" for s in source_specs()} <= keys
    assert repo.get_schedule_def("daily_0600").cron_schedule == "0 6 * * *"
    assert repo.get_schedule_def("daily_0600").execution_timezone == "Europe/Oslo"
    assert repo.get_sensor_def("landing_sensor")


def test_the_module_dagster_loads_holds_one_definitions_object_and_the_package_none():
    # workspace.yaml (`make ui`) and `[tool.dagster] module_name` name the same module; Dagster
    # finds the Definitions at its module scope, and refuses a module with more than one
    import importlib
    import tomllib

    import yaml
    from dagster import Definitions

    root = Path(__file__).resolve().parent.parent
    (entry,) = yaml.safe_load((root / "workspace.yaml").read_text())["load_from"]
    tool = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["dagster"]
    assert entry["python_module"]["module_name"] == tool["module_name"] == "stat19.defs.definitions"

    def found(module: str) -> list[str]:
        return [name for name, value in vars(importlib.import_module(module)).items() if isinstance(value, Definitions)]

    assert found("stat19.defs.definitions") == [entry["python_module"]["attribute"]]
    assert found("stat19") == found("stat19.defs") == []


def test_importing_a_defs_module_builds_no_graph(tmp_path):
    """Only stat19.defs.definitions builds the graph (and reads STAT19_LANDING): importing the
    package or any other of its modules, e.g. for a test or `stat19 run`, does neither."""
    code = ("import sys, stat19.defs.products, stat19.defs; "
            "assert stat19.defs.graph.cache_info().currsize == 0, 'a graph was built'; "
            "assert 'stat19.defs.definitions' not in sys.modules")
    env = {**os.environ, "STAT19_LANDING": str(tmp_path / "nowhere")}
    env.pop("STAT19_FIRST_DATE", None)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_the_sensor_requests_one_run_per_complete_delivery_keyed_by_its_manifest(landing):
    from stat19.defs import Stat19, first_date, graph

    landing_sensor = graph(first_date(landing)).defs.resolve_sensor_def("landing_sensor")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(instance=instance, resources={"stat19": Stat19(landing=str(landing), home="unused")})
        requests = list(landing_sensor(context))
    keys = [r.run_key for r in requests]
    assert len(keys) == len(set(keys)) == 4  # the folder without a manifest is not requested
    assert all(k.split(":")[0] in {"mfr/2026-01-05", "sysvak/2026-01-05", "mfr/2026-01-06", "sysvak/2026-01-07"} for k in keys)
    assert {r.partition_key for r in requests} == {"2026-01-05", "2026-01-06", "2026-01-07"}
