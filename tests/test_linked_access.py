"""Opening the linked snapshot as docs/linked_model.md says: the recipes run as written, and every
table and column of the snapshot carries its meaning from assets/linked.yaml as a comment."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stat19.linkage import link, linked_model_spec
from test_ingest import Env
from test_linkage import _small_landing

DOC = Path(__file__).resolve().parents[1] / "docs" / "linked_model.md"
KEY = "a key for the linked access tests, 32+ bytes"


@pytest.fixture
def demo(tmp_path, monkeypatch) -> Path:
    """A snapshot at demo/home/linked/current.duckdb under a working directory, as after make run."""
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", KEY)
    env = Env(tmp_path / "demo")
    _small_landing(env)
    link(env.home)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def recipe_blocks(language: str) -> list[str]:
    section = DOC.read_text(encoding="utf-8").split("## Opening the snapshot", 1)[1]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def test_every_table_and_column_of_the_snapshot_has_its_comment(demo):
    spec = linked_model_spec()
    with duckdb.connect("demo/home/linked/current.duckdb", read_only=True) as con:
        columns = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                              "WHERE NOT internal ORDER BY ALL").fetchall()
        tables = dict(con.execute("SELECT table_name, comment FROM duckdb_tables() WHERE NOT internal").fetchall())
    assert len(columns) > 50
    assert [(t, c) for t, c, comment in columns if not comment] == []
    assert tables == {t: spec["tables"][t]["description"] for t in tables}
    comment = {(t, c): m for t, c, m in columns}
    assert comment[("vaccinations", "vaccine_group")] == spec["tables"]["vaccinations"]["columns"]["vaccine_group"]
    assert comment[("cases", "pid")] == spec["common"]["pid"]


def test_the_python_recipes_run_as_written(demo, capsys):
    blocks = recipe_blocks("python")
    assert len(blocks) == 2
    for code in blocks:
        scope: dict = {}
        exec(compile(code, str(DOC), "exec"), scope)
    out = capsys.readouterr().out
    assert "vaccine_group" in out and "persons" in out and "comment" in out
    assert scope["residents"]["persons"].sum() >= 1
    # the polars recipe binds its value as a parameter: a later date finds nothing
    from stat19.query import linked
    assert linked("demo/home", "SELECT count(*) AS n FROM vaccinations WHERE vaccination_date >= $since",
                  params={"since": "2027-01-01"})["n"][0] == 0


def test_the_duckdb_cli_recipe_runs_as_written(demo):
    cli = Path(sys.executable).with_name("duckdb")
    if not cli.exists():
        pytest.skip("the DuckDB CLI is not installed in this environment")
    commands = [shlex.split(line) for block in recipe_blocks("sh") for line in block.splitlines()
                if line.startswith(".venv/bin/duckdb") and " -c " in line]
    assert len(commands) == 2
    for argv in commands:
        out = subprocess.run([str(cli), *argv[1:]], capture_output=True, text=True, check=True).stdout
        assert "comment" in out
    assert "Vaccination date" in out or "vaccination_date" in out
