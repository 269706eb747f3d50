"""Kills and late deliveries, the way an operator meets them: `stat19 run` in its own process,
killed with SIGKILL at each phase (and once from outside at an arbitrary moment), then run again;
deliveries withheld and added later, or re-sent with new content. Each ends in exactly the state
of an uninterrupted run, compared file by file.

Three cheap products keep the runs short: every product goes through the same engine, the same
kill points (`product:<name>`, `publish:<name>`) and the same atomic swap."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from stat19.cli import main

START, DAYS = date(2026, 1, 5), 6
LAST = START + timedelta(days=DAYS - 1)
PRODUCTS = ["msis_cases_weekly", "sari_weekly", "mortality_weekly"]
KEY = "recovery test key, not a secret, 32 bytes or more"
RUN_TIME_KEYS = {"generated_at", "updated", "finished_at"}  # when, not what

# under `make test` (pytest-xdist, --dist loadgroup) this file runs on one worker, which builds
# its module fixture (world) once
pytestmark = pytest.mark.xdist_group("test_recovery")


def cli(landing: Path, home: Path, *extra: str, kill_at: str | None = None, wait: bool = True):
    """`stat19 run` in a fresh process, as an operator starts it."""
    env = {**os.environ, "STAT19_PSEUDONYM_KEY": KEY, "PYTHONUNBUFFERED": "1"}
    env.pop("STAT19_KILL_AT", None)
    if kill_at:
        env["STAT19_KILL_AT"] = kill_at
    args = [sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", "run",
            "--landing", str(landing), "--home", str(home), *extra]
    for p in PRODUCTS:
        args += ["--product", p]
    if not wait:
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)


def _strip(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if k not in RUN_TIME_KEYS}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


def state(home: Path) -> dict[str, object]:
    """What a run leaves that users read: every published file (JSON without its generation
    times), the accounting and linkage reports, and every table of the linked snapshot."""
    out: dict[str, object] = {}
    for f in sorted((home / "published").rglob("*")):
        if f.is_file():
            rel = str(f.relative_to(home))
            out[rel] = _strip(json.loads(f.read_text())) if f.suffix == ".json" else f.read_bytes()
    for name in ("deliveries.csv", "linkage.csv", "quarantine.csv", "identity_problems.csv"):
        out[f"reports/{name}"] = (home / "reports" / name).read_text()
    with duckdb.connect(str(home / "linked" / "current.duckdb"), read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall():
            out[f"linked/{table}"] = sorted(map(repr, con.execute(f'SELECT * FROM "{table}"').fetchall()))
    return out


def leftovers(home: Path) -> list[str]:
    return [str(p.relative_to(home)) for p in [*home.rglob(".building-*"), *home.rglob("*.tmp")]]


def assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    differing = [k for k in want if got[k] != want[k]]
    assert not differing, f"differs from the uninterrupted run: {differing}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small landing, a home run uninterrupted up to the day before the last, and the same home
    after an uninterrupted run of the last day."""
    root = tmp_path_factory.mktemp("recovery")
    landing = root / "landing"
    assert main(["synth", "--persons", "400", "--start", str(START), "--days", str(DAYS),
                 "--out", str(landing), "--seed", "23", "--no-delivery-faults"]) == 0
    before = root / "before"
    done = cli(landing, before, "--through", str(LAST - timedelta(days=1)))
    assert done.returncode == 0, done.stdout + done.stderr
    uninterrupted = root / "uninterrupted"
    shutil.copytree(before, uninterrupted)
    done = cli(landing, uninterrupted)
    assert done.returncode == 0, done.stdout + done.stderr
    return landing, before, uninterrupted, state(uninterrupted)


def test_a_kill_at_every_phase_then_a_rerun_ends_in_the_uninterrupted_releases(world, tmp_path):
    landing, before, _, want = world
    home = tmp_path / "home"
    shutil.copytree(before, home)
    previous = state(home)
    # one kill per phase, each rerun starting from what the last kill left behind
    for phase in ["load:sysvak", "dq", "link", "product:msis_cases_weekly", "publish:sari_weekly"]:
        killed = cli(landing, home, kill_at=phase)
        assert killed.returncode == -signal.SIGKILL, (phase, killed.stdout[-2000:], killed.stderr[-2000:])
        # the previous good state is what readers see: earlier releases and the snapshot intact
        now = state(home)
        for k, v in previous.items():
            if k.startswith("published/") and "catalog" not in k:
                assert now.get(k) == v, (phase, k)
        # the snapshot opens and is whole: every table as before the run, or every table as the
        # uninterrupted run left it (once the swap is done), never a mix
        linked_now = {k: v for k, v in now.items() if k.startswith("linked/")}
        linked_before = {k: v for k, v in previous.items() if k.startswith("linked/")}
        linked_after = {k: v for k, v in want.items() if k.startswith("linked/")}
        assert linked_now in (linked_before, linked_after), phase
        if phase in ("load:sysvak", "dq", "link"):  # killed before the swap
            assert linked_now == linked_before, phase
    # and once from outside, at whatever moment the run has reached after the checks started
    proc = cli(landing, home, wait=False)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "Checking data quality" in line:
            break
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    rerun = cli(landing, home)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "Marked the unfinished Dagster run" in rerun.stdout  # the dead run's slot was freed
    assert not leftovers(home)
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "ok"
    assert_same(state(home), want)


def test_the_comparison_sees_a_changed_release(world, tmp_path):
    """The file-by-file comparison above would notice a release that differs."""
    _, _, uninterrupted, want = world
    home = tmp_path / "home"
    shutil.copytree(uninterrupted, home)
    data = home / "published" / "sari_weekly" / str(LAST) / "data.csv"
    data.write_text(data.read_text().replace("national", "nasjonal", 1))
    with pytest.raises(AssertionError, match="data.csv"):
        assert_same(state(home), want)


def _rows(home: Path) -> list[dict]:
    with (home / "reports" / "deliveries.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# one source of each delivery kind: incremental, cumulative (year to date), snapshot plus changes
LATE = {"sysvak": "incremental", "msis": "incremental", "npr": "cumulative", "freg": "snapshot_plus_changes"}


def test_withheld_deliveries_of_every_kind_load_late_and_reach_the_uninterrupted_releases(world, tmp_path):
    landing0, _, _, want = world
    landing, home, aside = tmp_path / "landing", tmp_path / "home", tmp_path / "aside"
    shutil.copytree(landing0, landing)
    late_day = str(LAST - timedelta(days=1))
    aside.mkdir()
    # the first run sees the last days without these deliveries of the day before
    for source in LATE:
        shutil.move(landing / source / late_day, aside / source)
    first = cli(landing, home)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert not any(r["delivery_date"] == late_day and r["source"] in LATE for r in _rows(home))
    # the late deliveries arrive, each written the landing protocol's way: the manifest last
    for source in LATE:
        target = landing / source / late_day
        target.mkdir()
        for f in sorted((aside / source).iterdir(), key=lambda p: p.name == "_manifest.json"):
            shutil.copy2(f, target / f.name)
    second = cli(landing, home)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    rows = {(r["source"], r["delivery_date"]): r for r in _rows(home)}
    for source in LATE:
        assert rows[(source, late_day)]["status"] == "loaded", source  # a landing without faults
    # the releases of the last day now hold what an uninterrupted run published (as revision 2)
    got = state(home)
    for k, v in want.items():
        if f"/{LAST}/" in k and k.endswith(("data.parquet", "data.csv")):
            assert got[k] == v, k
    assert got["linked/vaccinations"] == want["linked/vaccinations"]

    # an earlier delivery re-sent with new content: loaded as a new version, the run goes on
    resent = landing / "sysvak" / str(START + timedelta(days=1))
    manifest = json.loads((resent / "_manifest.json").read_text())
    entry = manifest["files"][0]
    extra = (landing / "sysvak" / str(START) / entry["name"]).read_bytes().splitlines(keepends=True)[:1]
    body = (resent / entry["name"]).read_bytes() + b"".join(extra)
    (resent / "_manifest.json").unlink()
    (resent / entry["name"]).write_bytes(body)
    import hashlib

    entry.update(rows=entry["rows"] + len(extra), sha256=hashlib.sha256(body).hexdigest())
    (resent / "_manifest.json").write_text(json.dumps(manifest))
    third = cli(landing, home)
    assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
    versions = [r for r in _rows(home) if (r["source"], r["delivery_date"]) == ("sysvak", resent.name)]
    assert len(versions) == 2 and versions[-1]["status"] == "loaded", versions
