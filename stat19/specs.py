"""Source specs: the declarative description of what a register delivers.

One YAML file per source in `assets/sources/`. The engine reads only these models, so adding a
source is adding a spec (and, if it needs shaping, SQL in `sql/`), never new Python.
"""

from __future__ import annotations

import fnmatch
import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stat19.paths import each_spec_file, spec_files

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

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Column(_Strict):
    name: str
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

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"column name {v!r} must be lower_snake_case")
        return v


class RowRule(_Strict):
    """An extra row check: rows for which `when` is true go to quarantine with `reason`."""

    reason: str
    when: str  # SQL over the typed columns
    detail: str


class Table(_Strict):
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
        if not _IDENT.match(self.name):
            raise ValueError(f"table name {self.name!r} must be lower_snake_case")
        for ref in [*self.key, *self.version_order, *([self.window_date] if self.window_date else [])]:
            if ref not in names:
                raise ValueError(f"table {self.name}: {ref!r} is not one of its columns")
        if len(names) != len(self.columns):
            raise ValueError(f"table {self.name}: duplicate column names")
        return self


class SourceSpec(_Strict):
    name: str
    title: str
    delivery_kind: DeliveryKind
    format: Literal["csv", "jsonl", "parquet"]
    delimiter: str | None = None
    encoding: Literal["utf-8", "windows-1252"] = "utf-8"
    tables: list[Table]

    @model_validator(mode="after")
    def _consistent(self) -> "SourceSpec":
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
    try:
        spec = SourceSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as exc:  # pydantic's message names the field; add the file
        raise ValueError(f"invalid source spec {path}: {exc}") from exc
    if spec.name != path.stem:
        raise ValueError(f"invalid source spec {path}: name {spec.name!r} must equal the file name")
    return spec


@cache
def source_specs() -> dict[str, SourceSpec]:
    """Every source spec in assets/sources (of every spec root), by source name (the landing
    folder name)."""
    return {p.stem: load_source_spec(p) for p in spec_files("*.yaml", "assets", "sources")}
