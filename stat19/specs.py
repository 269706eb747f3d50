"""Source specs: the declarative description of what a register delivers.

One YAML file per source in `assets/sources/`. The engine reads only these models, so adding a
source is adding a spec (and, if it needs shaping, SQL in `sql/`), never new Python.
"""

from __future__ import annotations

import fnmatch
from functools import cache
from pathlib import Path
from typing import Literal, NamedTuple

import yaml
from pydantic import Field, model_validator

from stat19.paths import SpecError, each_spec_file, spec_files
from stat19.spec_base import NAME, NamedSpec, SpecModel, load_spec

ColumnType = Literal["string", "person_id", "date", "timestamp", "integer", "double", "boolean", "string_list"]
DeliveryKind = Literal["incremental", "cumulative", "snapshot_plus_changes"]

# How each column type is stored once validated.
SQL_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "person_id": "VARCHAR",  # never a number: leading zeros matter
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "integer": "BIGINT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "string_list": "VARCHAR[]",
}


class Column(NamedSpec):
    type: ColumnType
    required: bool = False
    # SQL condition on the raw row under which an empty value is allowed although usually required.
    required_unless: str | None = None
    values: list[str] | None = None
    code_system: str | None = None
    # For a string_list delivered as text (CSV): the separator between elements.
    list_separator: str | None = None
    # Dates and timestamps may not lie after the delivery date unless this is set.
    allow_future: bool = False
    # What a text column holds, so that no identifier leaves the vault in it. Every string or
    # string_list column is exactly one of: a code (`values` or `code_system`, checked at ingest),
    # a record key (`record_id: true`, passed on unchanged), or free text (`free_text: scrub`
    # masks identifier-shaped tokens on the way to the linked zone, `vault_only` keeps the column
    # in the vault).
    record_id: bool = False
    free_text: Literal["scrub", "vault_only"] | None = None
    description: str | None = None


class RowRule(SpecModel):
    """An extra row check: rows for which `when` is true go to quarantine with `reason`."""

    reason: str
    when: str  # SQL over the typed columns
    detail: str


class Table(SpecModel):
    name: str
    file: str  # glob matched against the delivery's file names
    description: str = ""
    key: list[str]
    columns: list[Column]
    # Order of versions inside one delivery (a record timestamp); without it a repeated key with
    # different content cannot be ordered and goes to quarantine.
    version_order: list[str] = Field(default_factory=list)
    deleted_when: str | None = None
    keep_identity_when: str | None = None
    # For cumulative deliveries: the date that places a record in the delivery's window.
    window_date: str | None = None
    row_rules: list[RowRule] = Field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def person_id_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.type == "person_id"]

    def free_text_columns(self, policy: str) -> list[Column]:
        return [c for c in self.columns if c.free_text == policy]

    def matches(self, file_name: str) -> bool:
        return fnmatch.fnmatchcase(file_name, self.file)

    @model_validator(mode="after")
    def _refs_exist(self) -> "Table":
        names = set(self.column_names)
        if not NAME.match(self.name):
            raise ValueError(f"table name {self.name!r} must be lower_snake_case")
        for ref in [*self.key, *self.version_order, *([self.window_date] if self.window_date else [])]:
            if ref not in names:
                raise ValueError(f"table {self.name}: {ref!r} is not one of its columns")
        if len(names) != len(self.columns):
            raise ValueError(f"table {self.name}: duplicate column names")
        return self


class SexCodes(SpecModel):
    column: str
    male: str  # the column's code for male, as delivered
    female: str


class PersonStatus(SpecModel):
    column: str
    date: str  # the date from which a row applies; orders a person's rows
    removed: str  # the status that only retires an identifier and never sets a person's state
    resident: str  # the status of a person living in the country: the population of the products


class PopulationPersons(SpecModel):
    """The population register's person rows: one row per person state, history kept."""

    table: str
    person_id: str
    birth_date: str
    residence: str  # kommune code
    sex: SexCodes
    status: PersonStatus


class IdChanges(SpecModel):
    """Identifier changes (old -> new), whose chains linkage follows to the current identifier."""

    table: str
    old_id: str
    new_id: str


class Population(SpecModel):
    """What linkage reads from the population register: the denominator, birth dates, sex,
    residence, and the identifier changes. Linkage and the linked templates read these names,
    never literal ones."""

    persons: PopulationPersons
    id_changes: IdChanges


class SourceSpec(SpecModel):
    name: str
    title: str
    # population: the one register of everyone (the denominator, identity chains); health: any other
    role: Literal["population", "health"] = "health"
    population: Population | None = None
    delivery_kind: DeliveryKind
    format: Literal["csv", "jsonl", "parquet"]
    delimiter: str | None = None
    encoding: Literal["utf-8", "windows-1252"] = "utf-8"
    tables: list[Table]
    # The source's parts elsewhere: its linked tables (sql/linked/NAME.sql.j2, described in
    # assets/linked.yaml) and its data-quality suites (dq_checks/NAME.yaml).
    linked: list[str] = Field(default_factory=list)
    suites: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> "SourceSpec":
        if (self.role == "population") != (self.population is not None):
            raise ValueError(f"source {self.name}: role: population needs a population section, and only it has one")
        if self.population is not None:
            _check_population(self)
        if self.format == "csv" and not self.delimiter:
            raise ValueError(f"source {self.name}: a CSV source needs a delimiter")
        if self.format == "parquet" and self.encoding != "utf-8":
            raise ValueError(f"source {self.name}: Parquet has no text encoding to declare")
        for t in self.tables:
            if self.delivery_kind == "cumulative" and not t.window_date:
                raise ValueError(f"source {self.name}: a cumulative table needs window_date")
            for c in t.columns:
                where = f"source {self.name}, table {t.name}, column {c.name}"
                if c.code_system and c.code_system not in code_systems():
                    raise ValueError(f"{where}: unknown code system {c.code_system!r}")
                _check_text_kind(c, where)
        return self

    def table_for(self, file_name: str) -> Table | None:
        return next((t for t in self.tables if t.matches(file_name)), None)


def _check_population(spec: SourceSpec) -> None:
    """Every table, column and code the population section names exists in the spec, with the
    type linkage needs; the message names the field."""
    tables = {t.name: t for t in spec.tables}

    def column(field: str, table: Table, name: str, types: tuple[str, ...]) -> Column:
        found = next((c for c in table.columns if c.name == name), None)
        if found is None:
            raise ValueError(f"source {spec.name}, {field}: {name!r} is not a column of table {table.name}")
        if found.type not in types:
            raise ValueError(f"source {spec.name}, {field}: column {table.name}.{name} is {found.type}, "
                             f"not {' or '.join(types)}")
        return found

    def code(field: str, c: Column, value: str) -> None:
        if value not in (c.values or []):
            raise ValueError(f"source {spec.name}, {field}: {value!r} is not one of the values of "
                             f"column {c.name} ({', '.join(c.values or []) or 'none declared'})")

    p = spec.population
    for field, part in [("population.persons.table", p.persons), ("population.id_changes.table", p.id_changes)]:
        if part.table not in tables:
            raise ValueError(f"source {spec.name}, {field}: {part.table!r} is not one of its tables")
    persons, changes = tables[p.persons.table], tables[p.id_changes.table]
    column("population.persons.person_id", persons, p.persons.person_id, ("person_id",))
    column("population.persons.birth_date", persons, p.persons.birth_date, ("date",))
    column("population.persons.residence", persons, p.persons.residence, ("string",))
    sex = column("population.persons.sex.column", persons, p.persons.sex.column, ("string",))
    code("population.persons.sex.male", sex, p.persons.sex.male)
    code("population.persons.sex.female", sex, p.persons.sex.female)
    status = column("population.persons.status.column", persons, p.persons.status.column, ("string",))
    code("population.persons.status.removed", status, p.persons.status.removed)
    code("population.persons.status.resident", status, p.persons.status.resident)
    column("population.persons.status.date", persons, p.persons.status.date, ("date",))
    column("population.id_changes.old_id", changes, p.id_changes.old_id, ("person_id",))
    column("population.id_changes.new_id", changes, p.id_changes.new_id, ("person_id",))


def _check_text_kind(c: Column, where: str) -> None:
    """A text column declares exactly one kind; other columns declare none."""
    kinds = [k for k, declared in [("a code (values or code_system)", bool(c.values or c.code_system)),
                                   ("a record key (record_id: true)", c.record_id),
                                   (f"free text (free_text: {c.free_text})", c.free_text is not None)] if declared]
    if c.type in ("string", "string_list") and len(kinds) != 1:
        raise ValueError(
            f"{where}: a {c.type} column must be declared as exactly one of a code (values or code_system), "
            f"a record key (record_id: true) or free text (free_text: scrub or free_text: vault_only)"
            + (f"; it is declared as {' and '.join(kinds)}" if kinds else "; it is declared as none"))
    if c.type not in ("string", "string_list") and (c.record_id or c.free_text):
        raise ValueError(f"{where}: record_id and free_text are for string columns, not {c.type}")


@cache
def code_systems() -> dict[str, str]:
    """Code system name -> regular expression, from assets/code_systems.yaml of every spec root
    (a spec directory may add code systems, not redefine one)."""
    systems: dict[str, str] = {}
    for path in each_spec_file("assets", "code_systems.yaml"):
        for name, pattern in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).items():
            if name in systems:
                raise ValueError(f"{path}: code system {name!r} is defined already")
            systems[name] = pattern
    return systems


def load_source_spec(path: Path) -> SourceSpec:
    spec = load_spec(path, SourceSpec, "source spec")
    if spec.name != path.stem:
        raise SpecError(f"invalid source spec {path}: name {spec.name!r} must equal the file name")
    # the parts it names exist (cheap: file names and one YAML file)
    parts = _known_parts()
    for field, names in [("linked", spec.linked), ("suites", spec.suites)]:
        for i, name in enumerate(names):
            if missing := [where for where, known in parts[field].items() if name not in known]:
                raise SpecError(f"invalid source spec {path}: {field}[{i}]: {name!r} has no {' and no '.join(missing)}")
    return spec


def _known_parts() -> dict[str, dict[str, set[str]]]:
    """The linked tables and suites that exist in every spec root, by where they are defined."""
    described: set[str] = set()
    for path in each_spec_file("assets", "linked.yaml"):
        described |= set((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("tables") or {})
    return {
        "linked": {"template sql/linked/NAME.sql.j2": set(linked_template_names()),
                   "entry in assets/linked.yaml": described},
        "suites": {"suite dq_checks/NAME.yaml": {p.stem for p in spec_files("*.yaml", "dq_checks")}},
    }


def linked_template_names() -> list[str]:
    """The linked tables, one template each (files starting with '_' are shared pieces)."""
    return [p.name.removesuffix(".sql.j2") for p in spec_files("*.sql.j2", "sql", "linked") if not p.name.startswith("_")]


@cache
def source_specs() -> dict[str, SourceSpec]:
    """Every source spec in assets/sources (of every spec root), by source name (the landing
    folder name). Exactly one of them is the population register."""
    paths = spec_files("*.yaml", "assets", "sources")
    specs = {p.stem: load_source_spec(p) for p in paths}
    population = [p for p in paths if specs[p.stem].role == "population"]
    if len(population) != 1:
        raise SpecError("exactly one source spec must declare role: population; "
                         + (f"{len(population)} do: {', '.join(map(str, population))}" if population
                            else f"none of {', '.join(map(str, paths)) or 'assets/sources/*.yaml'} does"))
    return specs


def population_source() -> SourceSpec:
    """The population register (role: population): the denominator and the identity chains."""
    return next(s for s in source_specs().values() if s.role == "population")


def population() -> Population:
    """The population register's `population:` section: its tables, columns and codes. SQL
    templates call it as `population()` (e.g. `population().persons.status.resident`)."""
    return population_source().population


# Linked tables and suites that belong to no one source: made from every source's identifiers.
CROSS_SOURCE_LINKED = ("persons",)
CROSS_SOURCE_SUITES = ("linkage", "linked_persons")


class PartProblem(NamedTuple):
    """A part (linked template or suite) claimed wrongly: the file to fix, its field, what is wrong."""
    file: Path
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def check_declared_parts() -> list[PartProblem]:
    """Problems with the parts the sources declare (empty when none): every linked template and
    every suite is claimed by exactly one source's `linked`/`suites`, or is cross-source; a suite
    on a source's vault asset (vault/<source>) is claimed by that source."""
    problems = []
    specs = source_specs()
    files = {s.name: p for p in spec_files("*.yaml", "assets", "sources") if (s := specs.get(p.stem))}
    suite_files = {p.stem: p for p in spec_files("*.yaml", "dq_checks")}
    template_files = {p.name.removesuffix(".sql.j2"): p for p in spec_files("*.sql.j2", "sql", "linked")}
    for field, part_files, cross in [("linked", template_files, CROSS_SOURCE_LINKED),
                                     ("suites", suite_files, CROSS_SOURCE_SUITES)]:
        for name in linked_template_names() if field == "linked" else suite_files:
            claims = [s.name for s in specs.values() if name in getattr(s, field)]
            if name in cross and claims:
                problems += [PartProblem(files[c], field, f"{name!r} is cross-source: no source claims it") for c in claims]
            elif name not in cross and len(claims) > 1:
                problems += [PartProblem(files[c], field, f"{name!r} must be claimed by exactly one source spec; "
                                         f"also claimed by {', '.join(str(files[o]) for o in claims if o != c)}")
                             for c in claims]
            elif name not in cross and not claims:
                problems.append(PartProblem(part_files[name], field, f"no source spec lists {name!r} in its {field}"))
    for name, path in suite_files.items():
        asset = str((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("asset", ""))
        kind, _, source = asset.partition("/")
        if kind == "vault" and source in specs and name not in specs[source].suites:
            problems.append(PartProblem(files[source], "suites", f"the suite {path} checks vault/{source}: list {name!r} here"))
    return problems
