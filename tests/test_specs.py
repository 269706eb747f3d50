"""Source specs declare their role and their parts: the population register names the tables,
columns and codes linkage reads, and every source lists its linked tables and suites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import stat19.paths
from kit import csv_bytes, fnrs, jsonl_bytes, write_delivery
from stat19 import db, identifiers, specs
from stat19.linkage import link
from stat19.paths import PROJECT_DIR
from stat19.query import linked
from stat19.specs import SourceSpec, check_declared_parts, load_source_spec, population_source, source_specs
from test_ingest import Env, vacc

FREG = PROJECT_DIR / "assets" / "sources" / "freg.yaml"
FREG_HEADER = ["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"]
CHANGE_HEADER = ["old_id", "new_id", "change_date", "reason"]


def fresh_specs() -> None:
    """Forget the specs and templates read so far (they are read once per process)."""
    specs.source_specs.cache_clear()
    specs.code_systems.cache_clear()
    db._templates.cache_clear()


@pytest.fixture
def spec_cache():
    fresh_specs()
    yield
    fresh_specs()  # the next test reads the repository's specs again


def freg_doc() -> dict:
    return yaml.safe_load(FREG.read_text(encoding="utf-8"))


# --- the population register's role -------------------------------------------------------------

def test_the_repository_has_one_population_register_and_it_names_what_linkage_reads():
    freg = population_source()
    assert freg.name == "freg" and freg.role == "population"
    assert {s.role for n, s in source_specs().items() if n != "freg"} == {"health"}
    assert freg.population.persons.sex.male == "mann"
    assert freg.population.id_changes.table == "freg_id_changes"


@pytest.mark.parametrize("field, value, message", [
    (("persons", "birth_date"), "born", "population.persons.birth_date: 'born' is not a column of table freg_persons"),
    (("persons", "table"), "freg_people", "population.persons.table: 'freg_people' is not one of its tables"),
    (("persons", "sex", "male"), "M", "population.persons.sex.male: 'M' is not one of the values of column kjoenn"),
    (("persons", "status", "removed"), "gone", "population.persons.status.removed: 'gone' is not one of the values"),
    (("persons", "status", "resident"), "living", "population.persons.status.resident: 'living' is not one of the values"),
    (("persons", "person_id"), "birth_date", "population.persons.person_id: column freg_persons.birth_date is date, not person_id"),
    (("id_changes", "new_id"), "reason", "population.id_changes.new_id: column freg_id_changes.reason is string"),
])
def test_a_population_section_naming_what_the_spec_lacks_is_rejected_naming_the_field(tmp_path, field, value, message):
    doc = freg_doc()
    part = doc["population"]
    for key in field[:-1]:
        part = part[key]
    part[field[-1]] = value
    path = tmp_path / "freg.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_source_spec(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_role_and_its_population_section_go_together():
    doc = freg_doc()
    with pytest.raises(ValueError, match="role: population needs a population section"):
        SourceSpec.model_validate({**doc, "role": "health"})
    without = {k: v for k, v in doc.items() if k != "population"}
    with pytest.raises(ValueError, match="role: population needs a population section"):
        SourceSpec.model_validate(without)
    with pytest.raises(ValueError, match="role"):
        SourceSpec.model_validate({**doc, "role": "denominator"})
    with pytest.raises(ValueError, match="extra"):  # strict: a misspelt field is no silent default
        SourceSpec.model_validate({**doc, "population": {**doc["population"], "deaths": "daar_deaths"}})


def second_population_register(spec_dir: Path) -> Path:
    """A spec directory with another population register (a copy of freg under another name)."""
    doc = freg_doc()
    doc["name"] = "freg2"
    for t in doc["tables"]:
        t["name"] = t["name"].replace("freg_", "freg2_")
    doc["population"]["persons"]["table"] = "freg2_persons"
    doc["population"]["id_changes"]["table"] = "freg2_id_changes"
    doc["linked"], doc["suites"] = [], []
    path = spec_dir / "assets" / "sources" / "freg2.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_two_population_registers_are_rejected_naming_both_files(tmp_path, monkeypatch, spec_cache):
    second = second_population_register(tmp_path)
    monkeypatch.setenv("STAT19_SPEC_PATH", str(tmp_path))
    with pytest.raises(ValueError, match="exactly one source spec must declare role: population") as err:
        source_specs()
    assert str(FREG) in str(err.value) and str(second) in str(err.value)


def test_stat19_run_refuses_two_population_registers(tmp_path):
    """What the user meets: `stat19 run` with a spec directory that adds a second population
    register stops before loading anything, naming both files."""
    second = second_population_register(tmp_path / "specs")
    (tmp_path / "landing").mkdir()
    done = subprocess.run([sys.executable, "-c", "import sys; from stat19.cli import main; sys.exit(main())", "run",
                           "--landing", str(tmp_path / "landing"), "--home", str(tmp_path / "home")],
                          env={**os.environ, "STAT19_SPEC_PATH": str(tmp_path / "specs")},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "exactly one source spec must declare role: population" in done.stderr
    assert str(FREG) in done.stderr and str(second) in done.stderr
    assert not (tmp_path / "home" / "vault" / "warehouse.duckdb").exists()


# --- renamed codes: the role is read from the spec -------------------------------------------------

def specs_with_renamed_codes(tmp_path, monkeypatch, replacements: dict[str, str]) -> Path:
    """A copy of the repository's specs with the Folkeregister spec's codes renamed; the engine
    reads it in place of the repository's. Returns a folder for the run."""
    project = tmp_path / "project"
    for part in ("assets", "sql", "dq_checks"):
        shutil.copytree(PROJECT_DIR / part, project / part)
    path = project / "assets" / "sources" / "freg.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    monkeypatch.setattr(stat19.paths, "PROJECT_DIR", project)
    fresh_specs()
    return tmp_path / "run"


@pytest.fixture
def renamed_sex_codes(tmp_path, monkeypatch, spec_cache):
    """A copy of the repository's specs whose Folkeregister codes sex as M/K, not mann/kvinne."""
    run = specs_with_renamed_codes(tmp_path, monkeypatch, {"values: [mann, kvinne]": "values: [M, K]",
                                                           "male: mann, female: kvinne": "male: M, female: K"})
    assert population_source().population.persons.sex.female == "K"
    return run


def test_renamed_sex_codes_in_the_spec_still_link_sexes(renamed_sex_codes, monkeypatch):
    """The linked sex follows the Folkeregister's code as its spec declares it. Half the persons
    are registered with the sex their identifier does not encode, so a template that still knew
    only mann/kvinne (and fell back on the identifier) would give them the wrong sex."""
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "renamed codes test key xxxxxxxxxxxxxxxxx")
    env = Env(renamed_sex_codes)
    ids = fnrs(6, seed=23)
    registered = {fnr: (identifiers.sex(fnr) if i % 2 else {"male": "female", "female": "male"}[identifiers.sex(fnr)])
                  for i, fnr in enumerate(ids)}
    persons = [[fnr, identifiers.birth_date(fnr), {"male": "M", "female": "K"}[sex], "0301", "bosatt", "2020-01-01"]
               for fnr, sex in registered.items()]
    write_delivery(env.landing, "freg", "2026-01-05", {"persons.csv": (csv_bytes(FREG_HEADER, persons), len(persons)),
                                                       "id_changes.csv": (csv_bytes(CHANGE_HEADER, []), 0)})
    write_delivery(env.landing, "sysvak", "2026-01-05",
                   {"a.jsonl": (jsonl_bytes([vacc(i, fnr=fnr) for i, fnr in enumerate(ids)]), len(ids))})
    for source in ("freg", "sysvak"):
        outcome = env.load(source, "2026-01-05")
        assert (outcome.status, outcome.rows_quarantined) == ("loaded", 0), outcome.message
    link(env.home)
    got = dict(linked(env.home, "SELECT v.vaccination_id, p.sex FROM vaccinations AS v JOIN persons AS p USING (pid) "
                                "WHERE p.in_freg").rows())
    assert got == {f"v{i}": registered[fnr] for i, fnr in enumerate(ids)}
    assert linked(env.home, "SELECT count(*) FROM residences WHERE status = 'bosatt'").item() == len(ids)

    # the Folkeregister's own DQ check counts the rows whose sex disagrees with the identifier by
    # the declared codes: half of them here (with the words mann/kvinne it would count none)
    from stat19.dq import load_suites
    from stat19.dq.gx import _sql_env

    check = next(e for e in load_suites()["freg_persons"].expectations if e.name == "sex_matches_identifier")
    days = _sql_env().from_string(check.params["days"]).render(table="freg_persons")
    assert env.query(f"SELECT n, x FROM ({days})") == [(len(ids), len(ids) // 2)]


# --- every source lists its parts ------------------------------------------------------------------

def test_every_linked_template_and_suite_is_claimed_once_or_cross_source():
    assert check_declared_parts() == []


def test_the_crisis_register_claims_its_parts(monkeypatch, spec_cache):
    monkeypatch.setenv("STAT19_SPEC_PATH", str(PROJECT_DIR / "tests" / "crisis_register"))
    icu = source_specs()["icu"]
    assert (icu.role, icu.linked, icu.suites) == ("health", ["icu_stays"], ["icu"])
    assert check_declared_parts() == []


def test_a_part_claimed_twice_or_by_no_one_is_reported(tmp_path, monkeypatch, spec_cache):
    project = tmp_path / "project"
    for part in ("assets", "sql", "dq_checks"):
        shutil.copytree(PROJECT_DIR / part, project / part)
    sources = project / "assets" / "sources"
    npr = sources / "npr.yaml"
    npr.write_text(npr.read_text(encoding="utf-8").replace("suites: [npr, linked_hospital_episodes]",
                                                           "suites: [npr, linked_hospital_episodes, linked_cases]"))
    kpr = sources / "kpr.yaml"
    kpr.write_text(kpr.read_text(encoding="utf-8").replace("suites: [kpr, linked_primary_care_contacts]",
                                                           "suites: [linked_primary_care_contacts]"))
    monkeypatch.setattr(stat19.paths, "PROJECT_DIR", project)
    problems = [str(p) for p in check_declared_parts()]
    assert any(p.startswith(f"{npr}: suites: 'linked_cases'") and "msis.yaml" in p for p in problems), problems
    assert any(p.startswith(f"{project / 'dq_checks' / 'kpr.yaml'}: suites: no source spec lists 'kpr'") for p in problems), problems
    assert any(p.startswith(f"{kpr}: suites: the suite") and "vault/kpr" in p for p in problems), problems


@pytest.mark.parametrize("field, name, missing", [
    ("linked", "hospital_stays", "no template sql/linked/NAME.sql.j2 and no entry in assets/linked.yaml"),
    ("linked", "residences", "no template sql/linked/NAME.sql.j2"),  # described, but made in _views
    ("suites", "npr_extra", "no suite dq_checks/NAME.yaml"),
])
def test_a_part_that_does_not_exist_is_rejected_naming_file_and_field(tmp_path, field, name, missing):
    doc = yaml.safe_load((PROJECT_DIR / "assets" / "sources" / "npr.yaml").read_text(encoding="utf-8"))
    doc[field] = [*doc[field], name]
    path = tmp_path / "npr.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_source_spec(path)
    assert f"invalid source spec {path}: {field}[{len(doc[field]) - 1}]: {name!r} has {missing}" in str(err.value)


def test_a_renamed_resident_status_is_the_population_of_the_products(tmp_path, monkeypatch, spec_cache):
    """Products count the population by the resident status the spec declares, not by the word
    'bosatt': with the code renamed, everyone registered is still in the denominator."""
    from datetime import date

    from stat19.linkage import linked_connection
    from stat19.products import compute_release

    run = specs_with_renamed_codes(tmp_path, monkeypatch, {"values: [bosatt,": "values: [living,",
                                                           "resident: bosatt": "resident: living"})
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "renamed status test key xxxxxxxxxxxxxxxxxx")
    env = Env(run)
    ids = fnrs(7, seed=29)
    persons = [[fnr, identifiers.birth_date(fnr), {"male": "mann", "female": "kvinne"}[identifiers.sex(fnr)],
                "0301", "living", "2020-01-01"] for fnr in ids]
    write_delivery(env.landing, "freg", "2026-01-05", {"persons.csv": (csv_bytes(FREG_HEADER, persons), len(persons)),
                                                       "id_changes.csv": (csv_bytes(CHANGE_HEADER, []), 0)})
    outcome = env.load("freg", "2026-01-05")
    assert (outcome.status, outcome.rows_quarantined) == ("loaded", 0), outcome.message
    link(env.home)
    with linked_connection(env.home) as con:
        release, _ = compute_release(con, "vaccine_coverage", date(2026, 1, 5))
    national = release.filter((release["geo_code"] == "NO") & (release["age_group"] == "total") & (release["sex"] == "total"))
    assert national.height and set(national["population"].to_list()) == {len(ids)}
