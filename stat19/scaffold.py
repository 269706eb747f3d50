"""`stat19 new-source`: draft the spec files of a new register from a sample delivery.

DuckDB reads the sample (CSV, JSON Lines or Parquet) and proposes each column's type; one
aggregate query over the sample's values proposes what each column holds: a personal identifier
(11 digits, mostly valid by the check digits: the SQL macro s19_id_valid, the mirror of
stat19.identifiers.is_valid), a code of a known code system (kommune, ICD-10, ATC), a short list of
values, a record key, or free text. The drafts are written in the formats of assets/sources/,
dq_checks/ and sql/linked/, with a TODO comment wherever the author must decide; they load with
the engine's loaders as they are, and `stat19 check-specs` checks them.
"""

from __future__ import annotations

import codecs
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from stat19.db import install_macros, sql_ident, sql_literal
from stat19.reference import install_reference_tables
from stat19.specs import code_systems

FORMATS = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
# Code systems proposed from the values, most specific first (ICPC-2 codes look like ICD-10 ones,
# so it is never guessed: the author picks it).
GUESSED_CODE_SYSTEMS = ("atc", "kommune", "icd10")
MOSTLY = 0.9  # share of a column's values that must fit a proposal (identifiers, kommune codes)
MAX_VALUES = 12  # at most this many distinct strings, each seen more than once, make a `values:` list
VERSION_HINT = re.compile(r"updated|changed|modified|registered|version")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(ValueError):
    """The drafts cannot be written (bad name or sample, or files that exist already)."""


@dataclass
class Proposal:
    """What new-source proposes for one column, and what the author must review."""

    name: str
    spec: dict
    todo: list[str] = field(default_factory=list)

    @property
    def type(self) -> str:
        return self.spec["type"]


@dataclass
class Draft:
    source: str
    table: str
    format: str
    delimiter: str | None
    encoding: str
    rows: int
    columns: list[Proposal]
    key: list[str]
    version_order: list[str]

    @property
    def person_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.type == "person_id"]


def _utf8(path: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def _reader(path: Path, fmt: str, **options: str) -> str:
    if fmt == "csv":
        extra = "".join(f", {k} = {v}" for k, v in options.items())
        return f"read_csv({sql_literal(path)}{extra})"
    if fmt == "jsonl":
        return f"read_json_auto({sql_literal(path)}, format = 'newline_delimited')"
    return f"read_parquet({sql_literal(path)})"


def _spec_type(duck: str) -> str | None:
    """The spec type of a DuckDB column type (None: a type the engine cannot take)."""
    if duck in ("VARCHAR", "UUID"):
        return "string"
    if duck in ("DATE",):
        return "date"
    if duck.startswith("TIMESTAMP"):
        return "timestamp"
    if duck == "BOOLEAN":
        return "boolean"
    if duck in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "integer"
    if duck in ("FLOAT", "DOUBLE") or duck.startswith("DECIMAL"):
        return "double"
    if duck.endswith("[]") and _spec_type(duck[:-2]) == "string":
        return "string_list"
    return None


def sniff(name: str, sample: Path) -> Draft:
    """Read the sample with DuckDB and propose the source's spec."""
    if not _NAME.match(name):
        raise ScaffoldError(f"source name {name!r} must be lower_snake_case (it is also the landing folder's name)")
    if not sample.is_file():
        raise ScaffoldError(f"sample {sample} is not a file")
    fmt = FORMATS.get(sample.suffix.lower())
    if fmt is None:
        raise ScaffoldError(f"sample {sample}: cannot tell the format from {sample.suffix!r} "
                            f"(known: {', '.join(sorted(FORMATS))})")
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect() as con:
        encoding = "utf-8"
        if fmt != "parquet" and not _utf8(sample):
            # the contract's other encoding; DuckDB reads UTF-8, so read a transcoded copy
            encoding = "windows-1252"
            copy = Path(tmp) / sample.name
            copy.write_text(sample.read_bytes().decode("windows-1252"), encoding="utf-8")
            sample = copy
        delimiter = None
        try:
            if fmt == "csv":
                delimiter = con.execute(f"SELECT Delimiter FROM sniff_csv({sql_literal(sample)})").fetchone()[0]
            described = con.execute(f"DESCRIBE SELECT * FROM {_reader(sample, fmt)}").fetchall()
            # the values as delivered, as text (identifiers and codes keep their leading zeros)
            text = _reader(sample, fmt, all_varchar="true") if fmt == "csv" else _reader(sample, fmt)
            con.execute(f"CREATE TEMP VIEW sample AS SELECT * FROM {text}")
            install_macros(con)
            install_reference_tables(con)
            stats, rows = _column_stats(con, [c[0] for c in described])
        except duckdb.Error as exc:
            raise ScaffoldError(f"sample {sample}: DuckDB cannot read it as {fmt}: {exc}") from exc
    columns = [_propose(col, duck, stats[col], rows, fmt) for col, duck, *_ in described]
    return _draft(name, sample, fmt, delimiter, encoding, rows, columns)


def _column_stats(con: duckdb.DuckDBPyConnection, names: list[str]) -> tuple[dict[str, dict], int]:
    """Per column, in one aggregate query over the sample: non-empty values, distinct values (and
    the list when short), the share shaped as identifiers and valid by the check digits, the
    share of each guessed code system, known kommune codes."""
    systems = code_systems()
    parts = ["count(*) AS _rows"]
    for i, name in enumerate(names):
        v = f"nullif(trim(CAST({sql_ident(name)} AS VARCHAR)), '')"
        parts += [
            f"count({v}) AS n{i}",
            f"count(DISTINCT {v}) AS d{i}",
            f"CASE WHEN count(DISTINCT {v}) <= {MAX_VALUES} THEN list_sort(list(DISTINCT {v}) FILTER (WHERE {v} IS NOT NULL)) END AS v{i}",
            f"coalesce(bool_or(regexp_matches({v}, '\\s')), false) AS w{i}",
            f"avg(CASE WHEN regexp_full_match({v}, '[0-9]{{11}}') THEN 1.0 ELSE 0.0 END) FILTER (WHERE {v} IS NOT NULL) AS i{i}",
            f"avg(CASE WHEN s19_id_valid({v}) THEN 1.0 ELSE 0.0 END) FILTER (WHERE {v} IS NOT NULL) AS ok{i}",
            f"avg(CASE WHEN {v} IN (SELECT code FROM ref_kommune_map) THEN 1.0 ELSE 0.0 END) FILTER (WHERE {v} IS NOT NULL) AS k{i}",
        ]
        parts += [f"avg(CASE WHEN regexp_matches({v}, {sql_literal(systems[s])}) THEN 1.0 ELSE 0.0 END) "
                  f"FILTER (WHERE {v} IS NOT NULL) AS {s}{i}" for s in GUESSED_CODE_SYSTEMS if s in systems]
    row = con.execute(f"SELECT {', '.join(parts)} FROM sample").fetchone()
    got = dict(zip([d[0] for d in con.description], row))
    stats = {}
    for i, name in enumerate(names):
        stats[name] = {"nonnull": got[f"n{i}"], "distinct": got[f"d{i}"], "values": got[f"v{i}"], "spaces": got[f"w{i}"],
                       "id_shaped": got[f"i{i}"] or 0.0, "id_valid": got[f"ok{i}"] or 0.0,
                       "kommune_known": got[f"k{i}"] or 0.0,
                       "systems": {s: got[f"{s}{i}"] or 0.0 for s in GUESSED_CODE_SYSTEMS if f"{s}{i}" in got}}
    return stats, got["_rows"]


def _propose(name: str, duck: str, s: dict, rows: int, fmt: str) -> Proposal:
    spec_type = _spec_type(duck)
    p = Proposal(name, {"name": name, "type": spec_type or "string"})
    if not _NAME.match(name):
        p.todo.append(f"{name!r} is not lower_snake_case: the engine needs the delivered name in that form")
    if s["nonnull"] == rows and rows:
        p.spec["required"] = True
    elif s["nonnull"]:
        p.todo.append(f"{name}: empty in {rows - s['nonnull']} of {rows} sample rows: not required (or required_unless)")
    if spec_type is None:
        p.todo.append(f"{name}: DuckDB reads it as {duck}, which no spec type takes: flatten it in the delivery")
        p.spec["free_text"] = "vault_only"
        return p
    if duck == "TIMESTAMP" and fmt != "parquet":
        p.todo.append(f"{name}: the sample's timestamps carry no UTC offset; the landing contract needs ISO 8601 "
                      "with one (2026-01-04T16:08:00+01:00), else every row is quarantined as bad_date")
    nonnull = s["nonnull"]
    if spec_type in ("string", "integer") and nonnull and s["id_shaped"] == 1.0 and s["id_valid"] >= MOSTLY:
        p.spec["type"] = "person_id"  # checked at ingest and linked
        if s["id_valid"] < 1.0:
            p.todo.append(f"{name}: {1 - s['id_valid']:.0%} of the sample's identifiers have bad check digits "
                          "(those rows will be quarantined)")
        return p
    if spec_type in ("string", "integer") and nonnull and s["id_shaped"] >= MOSTLY:
        p.todo.append(f"{name}: 11 digits, but only {s['id_valid']:.0%} valid by the check digits: an identifier "
                      "(type: person_id; the invalid ones are quarantined)?")
    if spec_type in ("string", "integer") and nonnull:
        system = next((sys for sys in GUESSED_CODE_SYSTEMS if s["systems"].get(sys, 0.0) == 1.0
                       and (sys != "kommune" or s["kommune_known"] >= MOSTLY)), None)
        if system:
            p.spec["type"] = "string"
            p.spec["code_system"] = system
            if system == "icd10":
                p.todo.append(f"{name}: codes of the form of ICD-10 (ICPC-2 codes look alike: code_system: icpc2)")
            return p
    if spec_type == "integer" and fmt == "csv" and s["values"] and set(s["values"]) <= {"0", "1"}:
        p.spec.update(type="boolean", values=["0", "1"])
        p.todo.append(f"{name}: 0/1 in the sample, proposed as a boolean (or an integer?)")
        return p
    if spec_type == "string":
        if not nonnull:
            p.spec["free_text"] = "vault_only"
            p.todo.append(f"{name}: empty in the whole sample: give its type and kind")
        elif s["distinct"] == nonnull == rows and rows > 1 and not s["spaces"]:  # keys are tokens, text has spaces
            p.spec["record_id"] = True
            p.todo.append(f"{name}: unique in the sample: the record's key (record_id)? else a code or free text")
        elif s["values"] is not None and s["distinct"] < nonnull:
            p.spec["values"] = s["values"]
            p.todo.append(f"{name}: the sample's {s['distinct']} values; add the ones it did not show "
                          "(others are quarantined as unknown_code)")
        else:
            p.spec["free_text"] = "vault_only"
            p.todo.append(f"{name}: free text kept in the vault; free_text: scrub passes it on with identifiers masked")
    if spec_type == "string_list":
        p.spec["free_text"] = "vault_only"
        p.todo.append(f"{name}: a list: values or code_system if it holds codes, else free_text")
    return p


def _draft(name: str, sample: Path, fmt: str, delimiter: str | None, encoding: str, rows: int,
           columns: list[Proposal]) -> Draft:
    # the table is named after the source and the sample's file: stays.csv of icu -> icu_stays
    stem = re.sub(r"[^a-z0-9_]+", "_", sample.stem.lower()).strip("_")
    table = stem if stem.startswith(name + "_") else name if stem in ("", name) else f"{name}_{stem}"
    ids = [c.name for c in columns if c.spec.get("record_id")]
    key = sorted(ids, key=lambda n: not n.endswith("_id"))[:1]
    version = [c.name for c in columns if c.type == "timestamp" and VERSION_HINT.search(c.name)][:1]
    return Draft(name, table, fmt, delimiter, encoding, rows, columns, key, version)


# --- the drafts ------------------------------------------------------------------------------------

def _flow(d: dict) -> str:
    return yaml.safe_dump(d, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10**6).strip()


def _scalar(value: str) -> str:
    return yaml.safe_dump(value, allow_unicode=True, width=10**6).removesuffix("\n...\n").strip()


def source_yaml(d: Draft, sample: Path) -> str:
    lines = [
        f"# Draft source spec written by `stat19 new-source {d.source}` from the sample {sample.name}",
        f"# ({d.rows} rows). Review every TODO, then delete the TODO lines; `stat19 check-specs` checks it.",
        f"name: {d.source}",
        "# TODO: the register's name and what it delivers",
        f"title: {_scalar(f'TODO {d.source}')}",
        "# TODO: incremental (each delivery the day's new records and versions), cumulative (the whole",
        "# year to date each time; needs window_date) or snapshot_plus_changes",
        "delivery_kind: incremental",
        f"format: {d.format}",
        "# its parts, drafted beside this file: the linked table (sql/linked/, assets/linked.yaml) and the DQ suite",
        "role: health",
        f"linked: [{d.table}]",
        f"suites: [{d.source}]",
    ]
    if d.delimiter:
        lines.append(f"delimiter: {json.dumps(d.delimiter)}")
    if d.format != "parquet":
        lines.append(f"encoding: {d.encoding}")
    lines += [
        "tables:",
        f"  - name: {d.table}",
        f"    file: {_scalar('*' + ('.csv' if d.format == 'csv' else '.jsonl' if d.format == 'jsonl' else '.parquet'))}",
        "    # TODO: what one row is",
        f"    description: {_scalar(f'TODO rows of {d.table}')}",
    ]
    if not d.key:
        lines.append("    # TODO: no column was unique in the sample: name the record's key")
    lines.append(f"    key: {_flow(d.key)}")
    if d.version_order:
        lines.append(f"    # TODO: {d.version_order[0]} orders two versions of a record (the later wins)?")
    else:
        lines.append("    # TODO: the column that orders two versions of one record (a timestamp), if any")
    lines.append(f"    version_order: {_flow(d.version_order)}")
    lines.append("    columns:")
    for c in d.columns:
        lines += [f"      # TODO: {t}" for t in c.todo]
        lines.append(f"      - {_flow(c.spec)}")
    lines += ["    # TODO: rules a row must keep, quarantined when `when` is true, for example",
              "    # row_rules:",
              "    #   - {reason: bad_date, when: \"discharge < admission\", detail: \"discharge before admission\"}"]
    return "\n".join(lines) + "\n"


def suite_yaml(d: Draft) -> str:
    lines = [
        f"# Draft DQ suite written by `stat19 new-source {d.source}`: review every TODO (dq_checks/README.md).",
        "# TODO: what the suite checks",
        f"description: {_scalar(f'{d.table} delivered on the day.')}",
        f"asset: vault/{d.source}",
        "database: vault",
        f"table: {d.table}",
        "day_column: _delivery_date",
        "expectations:",
    ]
    for col in dict.fromkeys([*d.key, *d.person_columns]):
        lines += [f"  - name: {col}_present",
                  f"    description: {_scalar(f'Every row has its {col}.')}",
                  "    category: completeness",
                  "    severity: blocking",
                  "    expect: expect_column_values_to_not_be_null",
                  f"    kwargs: {_flow({'column': col})}"]
    lines += [
        "  - name: delivery_not_rejected",
        "    description: The source's delivery for the day was not rejected as a whole (the reason is in the details).",
        "    category: conformance",
        "    severity: warning",
        "    per: day",
        "    priority: -1",
        "    sql: delivery_not_rejected",
        "  - name: quarantine_share",
        "    description: The share of the delivery's rows sent to quarantine is within the binomial limits of its history; "
        "a delivery of 10 rows or more of which none loaded blocks, whatever the history.",
        "    category: conformance",
        "    severity: blocking",
        "    per: day",
        "    sql: quarantine_share",
        "  # statistical day checks: they fire only once the source has seven deliveries of history",
        "  - name: delivery_volume",
        "    description: The delivery's rows are within the Poisson limits of the previous 28 deliveries, widened by their day-to-day variation.",
        "    category: plausibility",
        "    subcategory: temporal",
        "    severity: blocking",
        "    per: day",
        "    sql: delivery_volume",
        "    # TODO: a register quieter at weekends compares with the same weekday: params: {same_weekday: true, min_history: 3}",
        "  # TODO: plausibility checks of the register's own (dates in order, values in range, ...)",
    ]
    return "\n".join(lines) + "\n"


def _linked_columns(d: Draft) -> list[tuple[str, str]]:
    """(SQL expression, linked column name) of what the linked table selects besides pid."""
    out: list[tuple[str, str]] = []
    geo_done = False
    for c in d.columns:
        if c.type == "person_id" or c.spec.get("free_text") == "vault_only":
            continue  # identifiers become pseudonyms; vault_only text never leaves the vault
        if c.spec.get("code_system") == "kommune" and not geo_done:
            out.append((f'{{{{ m.geo("s.{c.name}", "g") }}}}', "kommune_original"))
            geo_done = True
        else:
            out.append((f"s.{c.name}", c.name))
    return out


def linked_sql(d: Draft) -> str:
    persons = d.person_columns
    selects = []
    if persons:
        selects.append("k.pid")
        selects += [f"k{i}.pid AS {p}_pid" for i, p in enumerate(persons[1:], 2)]
    selects += [expr for expr, _ in _linked_columns(d)] + ["s._known_from", "s._known_to"]
    joins = [f'{{{{ m.pid_join("s.{p}", "{"k" if i == 1 else f"k{i}"}") }}}}' for i, p in enumerate(persons, 1)]
    if any("m.geo(" in expr for expr, _ in _linked_columns(d)):
        kommune = next(c.name for c in d.columns if c.spec.get("code_system") == "kommune")
        joins.append(f'{{{{ m.geo_join("s.{kommune}", "g") }}}}')
    return "\n".join([
        '{% import "linked/_macros.sql.j2" as m %}',
        f"-- Draft linked table of {d.source} (stat19 new-source): the latest version of each record, the",
        "-- identifier replaced by the pseudonym pid. TODO: keep only the columns analysts need.",
        "SELECT " + ",\n       ".join(selects),
        f"FROM {d.table}_linkable AS s",
        *joins,
        "WHERE NOT s._deleted",
    ]) + "\n"


def linked_entry(d: Draft) -> str:
    """The table's entry under `tables:` of assets/linked.yaml (pid, _known_* and kommune_* are
    described in the repository's `common:`)."""
    lines = [f"  {d.table}:", f"    description: {_scalar(f'TODO what a row of {d.table} is')}", "    columns:"]
    persons = d.person_columns
    lines += [f"      {p}_pid: {_scalar(f'TODO the pseudonym of {p}')}" for p in persons[1:]]
    for _, col in _linked_columns(d):
        if col != "kommune_original":
            lines.append(f"      {col}: {_scalar(f'TODO what {col} means')}")
    return "\n".join(lines) + "\n"


def write_drafts(name: str, sample: Path, into: Path) -> list[Path]:
    """Write the drafts into the spec directory `into`; refuse to overwrite any file."""
    d = sniff(name, sample)
    files = {
        into / "assets" / "sources" / f"{name}.yaml": source_yaml(d, sample),
        into / "dq_checks" / f"{name}.yaml": suite_yaml(d),
        into / "sql" / "linked" / f"{d.table}.sql.j2": linked_sql(d),
    }
    linked = into / "assets" / "linked.yaml"
    existing = [p for p in files if p.exists()]
    header = "# What the linked tables of this spec directory mean (added to the repository's assets/linked.yaml).\n"
    if linked.exists():
        doc = yaml.safe_load(linked.read_text(encoding="utf-8")) or {}
        if d.table in (doc.get("tables") or {}):
            existing.append(linked)
        else:
            # append the entry under `tables:`, which must then be the file's last block
            text = linked.read_text(encoding="utf-8")
            merged = text.rstrip("\n") + "\n" + ("" if "tables" in doc else "tables:\n") + linked_entry(d)
            new = yaml.safe_load(merged) or {}
            if set(new.get("tables") or {}) != set(doc.get("tables") or {}) | {d.table}:
                raise ScaffoldError(f"{linked}: cannot add the table {d.table} under `tables:` (is it the last "
                                    f"block?); add this entry by hand:\n{linked_entry(d)}")
            files[linked] = merged
    else:
        files[linked] = header + "tables:\n" + linked_entry(d)
    if existing:
        raise ScaffoldError("refusing to overwrite " + ", ".join(str(p) for p in existing))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
