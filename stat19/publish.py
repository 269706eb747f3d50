"""Publishing releases: files, revisions, the catalog, and the audit of everything published.

Layout (products.md)::

    <home>/published/<product>/<R>/data.parquet  data.csv  data.json  metadata.json
    <home>/published/<product>/<R>/revisions/<n>/...   earlier revisions, kept as they were
    <home>/published/catalog.json                        every product, every release, the latest

A release is built complete in a temporary folder beside its target (``.<R>.<random>.tmp``) and
then swapped into place with one atomic rename (``renameat2(RENAME_EXCHANGE)`` where the kernel
has it; otherwise two renames, and an interrupted swap is repaired by the next publication or
audit). A crash at any point leaves the previous release or the new one, never a mix; leftover
temporary folders are ignored by readers and removed by the next publication.

Revisions: the content digest covers the published table and the content metadata (not the
generation time, source deliveries or pipeline version). Publishing R again with the same
content writes nothing; with different content, revision n+1 becomes ``<R>/`` and revision n
moves to ``<R>/revisions/<n>/``.

Before anything is written the disclosure audit (``stat19.disclosure.check_release``, the LP
audit over the whole release) must pass, and the public table must follow the flag rules; else
``PublishError`` and nothing is written. ``audit_all(home)`` audits every published release again
from its files alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

import stat19
from stat19 import disclosure, jsonstat, portal
from stat19.faults import checkpoint
from stat19.paths import Home, write_atomically
from stat19.products import (
    DISCLOSURE_WIDTH,
    MIN_DENOMINATOR,
    CountSpec,
    ExcessSpec,
    ProductSpec,
    RateSpec,
    get_product,
    compute_release,
    disclosure_dimensions,
    disclosure_measures,
    geo_parent,
    hidden_col,
    public_table,
    relation_edges,
)

DATA_FILES = ("data.parquet", "data.csv", "data.schema.json", "codelists.csv", "data.json", "metadata.json")
CATALOG = "catalog.json"


class PublishError(Exception):
    """A release was not published (nothing was written)."""


class DisclosureAuditFailed(PublishError):
    """The disclosure audit found something unprotected (the asset check disclosure_audit fails)."""


@dataclass(frozen=True)
class PublishResult:
    status: Literal["published", "unchanged"]
    revision: int
    path: Path


@dataclass(frozen=True)
class AuditFinding:
    release: str  # <product>/<R>[/revisions/<n>]
    problem: str

    def __str__(self) -> str:
        return f"{self.release}: {self.problem}"


def release_dir(home: Home, product: str, reference_date: date | str) -> Path:
    day = reference_date if isinstance(reference_date, str) else reference_date.isoformat()
    return home.published / product / day


# --------------------------------------------------------------------------------------------
# Publication


def publish_product(con: Any, home: Home, product: ProductSpec | str, reference_date: date,
                    source_deliveries: Iterable[Mapping[str, Any]] | Mapping[str, Any] = ()) -> PublishResult:
    """Compute and publish one product for R (the whole step the Dagster asset runs)."""
    df, metadata = compute_release(con, product, reference_date)
    return publish(home, product, reference_date, df, metadata, source_deliveries=source_deliveries)


def publish(home: Home, product: ProductSpec | str, reference_date: date, df: pl.DataFrame,
            metadata: Mapping[str, Any], *,
            source_deliveries: Iterable[Mapping[str, Any]] | Mapping[str, Any] = (),
            now: datetime | None = None) -> PublishResult:
    """Audit and publish a release computed by ``compute_release``; see the module docstring."""
    spec = get_product(product)
    day = reference_date.isoformat()
    where = f"{spec.name} for {day}"
    from stat19.dq import waivers_for

    # Data-quality waivers that released this date travel with each of its releases.
    metadata = {**metadata, "dq_waivers": waivers_for(home, reference_date)}
    # 1. The disclosure audit over the whole release, with the true values: nothing unsafe leaves.
    try:
        disclosure.check_release(df, disclosure_dimensions(spec, df), disclosure_measures(spec),
                                 width=DISCLOSURE_WIDTH, min_denominator=MIN_DENOMINATOR)
    except disclosure.DisclosureError as exc:
        raise DisclosureAuditFailed(f"{where} not published: the disclosure audit failed. {exc}") from exc
    except disclosure.RelationError as exc:
        raise DisclosureAuditFailed(f"{where} not published: the release does not add up: {exc}") from exc
    problems = check_derived(spec, df)
    if problems:
        raise DisclosureAuditFailed(f"{where} not published: {len(problems)} derived value(s) break the hiding "
                                    f"rules, e.g. {problems[0]}")
    table = public_table(spec, df)
    problems = check_public_table(table, _measures_meta(metadata))
    if problems:
        raise DisclosureAuditFailed(f"{where} not published: the public table breaks the flag rules, "
                                    f"e.g. {problems[0]}")

    try:  # labels in both languages, codelists, licence, notes (stat19/portal.py)
        metadata = portal.describe_release(spec, metadata)
    except ValueError as exc:
        raise PublishError(f"{where} not published: {exc}") from exc
    csv = _csv_bytes(table, metadata)
    content_meta = _canonical(dict(metadata))
    digest = hashlib.sha256(csv + b"\n" + content_meta).hexdigest()

    product_dir = home.published / spec.name
    target = product_dir / day
    product_dir.mkdir(parents=True, exist_ok=True)
    _recover(product_dir, day)
    current = _read_json(target / "metadata.json")
    if current is not None and current.get("content_sha256") == digest:
        write_catalog(home)  # writes only if a crash left it behind the releases
        return PublishResult("unchanged", int(current["revision"]), target)
    revision = int(current["revision"]) + 1 if current is not None else 1

    generated = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    full = dict(metadata)
    full.update({
        "revision": revision,
        "earlier_revisions": list(range(1, revision)),
        "generated_at": generated,
        "pipeline_version": stat19.__version__,
        "source_deliveries": _deliveries(source_deliveries),
        "content_sha256": digest,
        "files": {
            "data.parquet": "Parquet, long format: dimension columns, then each measure and <measure>_flag",
            "data.csv": "the same table as CSV (UTF-8, comma-separated; hidden and undefined values empty)",
            "data.schema.json": "Frictionless Table Schema of data.csv: types, missing values, primary key, row order",
            "codelists.csv": "every dimension's codes in publication order, labels in English and bokmål, parents",
            "data.json": "JSON-stat 2.0 dataset (hidden: value null with status ':')",
        },
    })
    doc = jsonstat.dataset(table, full, updated=generated, extension={
        "product": spec.name, "reference_date": day, "revision": revision,
        "flags": full["disclosure"]["flags"], **portal.jsonstat_extension(full),
    })
    doc["note"] = [n["en"] for n in full["notes"]]

    tmp = product_dir / f".{day}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.mkdir()
        _write_release_files(tmp, table, csv, doc, full)
        if current is not None:  # keep the earlier revisions as they were
            if (target / "revisions").is_dir():
                shutil.copytree(target / "revisions", tmp / "revisions")
            old = tmp / "revisions" / str(current["revision"])
            old.mkdir(parents=True)
            for name in DATA_FILES:
                if (target / name).exists():
                    shutil.copy2(target / name, old / name)
        problems = audit_files(tmp, label=f"{spec.name}/{day}", lp=False, formats=False)
        if problems:
            raise PublishError(f"{where} not published: the written files fail the audit, e.g. {problems[0]}")
        _fsync_tree(tmp)
        checkpoint(f"publish:{spec.name}")
        _swap_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_catalog(home)
    return PublishResult("published", revision, target)


def _write_release_files(folder: Path, table: pl.DataFrame, csv: bytes, doc: Mapping[str, Any],
                         metadata: Mapping[str, Any]) -> None:
    buf = io.BytesIO()
    table.write_parquet(buf, statistics=True)
    (folder / "data.parquet").write_bytes(buf.getvalue())
    (folder / "data.csv").write_bytes(csv)
    (folder / "data.schema.json").write_text(json.dumps(portal.table_schema(table, metadata), ensure_ascii=False, indent=2) + "\n",
                                             encoding="utf-8")
    (folder / "codelists.csv").write_bytes(portal.codelist_table(metadata).write_csv(null_value="").encode("utf-8"))
    (folder / "data.json").write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (folder / "metadata.json").write_text(json.dumps(metadata, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _csv_bytes(table: pl.DataFrame, metadata: Mapping[str, Any]) -> bytes:
    decimals = {m["name"]: int(m.get("decimals", 0)) for m in metadata["measures"] if m["kind"] != "count"}
    out = table.with_columns(
        *[pl.col(name).map_batches(lambda s, d=d: _format_decimals(s, d), return_dtype=pl.String)
          for name, d in decimals.items()],
        # an empty flag is written as nothing at all (polars would quote an empty string)
        *[pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in table.columns if c.endswith("_flag")],
    )
    return out.write_csv(null_value="").encode("utf-8")


def _format_decimals(s: pl.Series, decimals: int) -> pl.Series:
    return pl.Series(s.name, [None if v is None else f"{v:.{decimals}f}" for v in s.to_list()], dtype=pl.String)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def _deliveries(value: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[dict[str, str]]:
    if isinstance(value, Mapping):
        items = [{"source": k, "last_delivery_date": v} for k, v in value.items()]
    else:
        items = [dict(v) for v in value]
    out = []
    for v in items:
        d = v.get("last_delivery_date", v.get("delivery_date"))
        out.append({"source": str(v["source"]), "last_delivery_date": d.isoformat() if isinstance(d, date) else str(d)})
    return sorted(out, key=lambda v: v["source"])


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------
# Atomic swap


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False when the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _swap_into_place(new: Path, target: Path) -> None:
    """Make `new` the folder at `target` in one step; the old content is deleted afterwards."""
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)  # `new` now holds the previous release
    else:  # two renames; _recover repairs a crash between them
        old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _recover(product_dir: Path, day: str | None = None) -> None:
    """Repair what an interrupted publication left: a release moved aside (``.<R>.*.old``) whose
    target is missing goes back; other leftovers of R (``day``; every date when None) are
    deleted. Publications of one product and date never run at once (one DuckDB writer)."""
    for p in sorted(product_dir.glob(".*.old")):
        target = product_dir / p.name[1:].split(".")[0]
        if not target.exists():
            os.rename(p, target)
        elif day is None or target.name == day:
            shutil.rmtree(p, ignore_errors=True)
    for p in product_dir.glob(f".{day or '*'}.*.tmp"):
        shutil.rmtree(p, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Catalog


def _releases(home: Home) -> Iterable[tuple[str, Path]]:
    if not home.published.is_dir():
        return
    for product_dir in sorted(p for p in home.published.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for rel in sorted(p for p in product_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            yield product_dir.name, rel


def catalog(home: Home) -> dict[str, Any]:
    """Every product, every release (with its revisions), and the latest release per product."""
    products: dict[str, Any] = {}
    for product, rel in _releases(home):
        meta = _read_json(rel / "metadata.json")
        if meta is None:
            continue
        entry = products.setdefault(product, {"title": meta.get("title", product), "releases": []})
        entry["title"] = meta.get("title", product)
        entry["releases"].append({
            "reference_date": meta["reference_date"],
            "revision": meta["revision"],
            "earlier_revisions": sorted(int(p.name) for p in (rel / "revisions").glob("*") if p.name.isdigit())
            if (rel / "revisions").is_dir() else [],
            "generated_at": meta.get("generated_at"),
            "path": f"{product}/{rel.name}",
            "files": [f for f in DATA_FILES if (rel / f).exists()],
            "cells": meta.get("cells"),
            "hidden_values": meta.get("disclosure", {}).get("hidden_values_total"),
            "excluded_records": meta.get("excluded_records"),
        })
    for entry in products.values():
        entry["releases"].sort(key=lambda r: r["reference_date"])
        last = entry["releases"][-1]
        entry["latest"] = {k: last[k] for k in ("reference_date", "revision", "path")}
    return {"catalog_version": 1, "pipeline_version": stat19.__version__, "products": products}


def write_catalog(home: Home) -> dict[str, Any]:
    """Rewrite <home>/published/catalog.json (only when its content changes)."""
    doc = catalog(home)
    path = home.published / CATALOG
    if _read_json(path) != doc:
        write_atomically(path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    return doc


# --------------------------------------------------------------------------------------------
# Checks of derived values and of the public table


def check_derived(spec: ProductSpec, df: pl.DataFrame) -> list[str]:
    """The hiding rules of rates, expected and excess values (products.md), on the internal
    release: a rate is hidden exactly when its numerator (or a listed count, or a hidden count
    denominator) is; excess when deaths or expected is."""
    out = []
    for m in spec.measures:
        if isinstance(m, RateSpec):
            want = np.zeros(df.height, dtype=bool)
            for h in {*(m.hidden_with or []), *([m.numerator] if isinstance(spec.measure(m.numerator), CountSpec) else [])}:
                want |= df[hidden_col(h)].to_numpy()
            if spec.measure(m.denominator).rule != "public":
                want |= df[hidden_col(m.denominator)].to_numpy()
        elif isinstance(m, ExcessSpec):
            want = df[hidden_col(m.observed)].to_numpy() | df[hidden_col(m.expected)].to_numpy()
        else:
            continue
        got = df[hidden_col(m.name)].to_numpy()
        bad = np.flatnonzero(got != want)
        if bad.size:
            out.append(f"{m.name} hidden={bool(got[bad[0]])} at row {int(bad[0])}, the rule says {bool(want[bad[0]])}")
    return out


def _measures_meta(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(metadata["measures"])


def check_public_table(table: pl.DataFrame, measures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Flags are '' or ':'; a hidden value is null; a count is never null unless hidden; a rate
    is hidden when the counts it depends on are (read from the flags alone)."""
    out = []
    by = {m["name"]: m for m in measures}
    for m in measures:
        name, flag = m["name"], f"{m['name']}_flag"
        if name not in table.columns or flag not in table.columns:
            out.append(f"column {name} or {flag} missing")
            continue
        flags = table[flag]
        if not flags.is_in(["", jsonstat.HIDDEN]).all():
            out.append(f"{flag} holds values other than '' and ':'")
        hidden = flags == jsonstat.HIDDEN
        if (hidden & table[name].is_not_null()).any():
            out.append(f"{name}: a hidden cell has a value")
        if m["kind"] == "count" and (~hidden & table[name].is_null()).any():
            out.append(f"{name}: a published count is null")
        if m["kind"] == "count" and m.get("rule") == "public" and hidden.any():
            out.append(f"{name}: a public count is hidden")
        deps: list[str] = []
        if m["kind"] == "rate":
            deps = [d for d in [m["numerator"], *m.get("hidden_with", [])] if d in by]
            if by.get(m["denominator"], {}).get("rule") not in (None, "public"):
                deps.append(m["denominator"])
        elif m["kind"] == "excess":
            deps = [m["observed"], m["expected"]]
        if deps:
            want = np.zeros(table.height, dtype=bool)
            for d in deps:
                want |= (table[f"{d}_flag"] == jsonstat.HIDDEN).to_numpy()
            if (want != hidden.to_numpy()).any():
                out.append(f"{name}: hidden where it should not be or published where {' or '.join(deps)} is hidden")
    return out


# --------------------------------------------------------------------------------------------
# Auditing what is published


def audit_all(home: Home | Path | str) -> list[AuditFinding]:
    """Re-audit every published release (every revision) from its files alone: files complete
    and consistent with each other (Parquet, CSV, JSON-stat), flag rules, metadata counts, and
    the LP disclosure audit of every hidden count. Empty list: everything published is safe."""
    home = home if isinstance(home, Home) else Home(Path(home))
    findings: list[AuditFinding] = []
    for product, rel in _releases(home):
        label = f"{product}/{rel.name}"
        findings += audit_files(rel, label=label)
        rev_dir = rel / "revisions"
        if rev_dir.is_dir():
            for r in sorted(rev_dir.iterdir(), key=lambda p: p.name):
                findings += audit_files(r, label=f"{label}/revisions/{r.name}")
    if home.published.is_dir() and (home.published / CATALOG).exists():
        if _read_json(home.published / CATALOG) != catalog(home):
            findings.append(AuditFinding(CATALOG, "does not list the published releases as they are"))
    return findings


def audit_files(folder: Path, *, label: str | None = None, lp: bool = True, formats: bool = True) -> list[AuditFinding]:
    """Audit one release folder from its files. ``formats=False`` skips comparing CSV and
    JSON-stat with Parquet cell by cell, ``lp=False`` the LP disclosure audit."""
    label = label or str(folder)
    missing = [f for f in DATA_FILES if not (folder / f).is_file()]
    if missing:
        return [AuditFinding(label, f"files missing: {missing}")]
    try:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        table = pl.read_parquet(folder / "data.parquet")
    except Exception as exc:  # unreadable files are a finding, not a crash of the audit
        return [AuditFinding(label, f"unreadable: {exc}")]
    problems = check_public_table(table, meta["measures"])
    hidden = {m["name"]: int((table[f"{m['name']}_flag"] == jsonstat.HIDDEN).sum()) for m in meta["measures"]}
    if hidden != meta["disclosure"]["hidden_cells"]:
        problems.append(f"metadata counts {meta['disclosure']['hidden_cells']} hidden cells, the data {hidden}")
    if formats:
        problems += _compare_formats(folder, table, meta)
    if lp and not problems:
        problems += _lp_audit(table, meta)
    return [AuditFinding(label, p) for p in problems]


def _compare_formats(folder: Path, table: pl.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    """data.csv and data.json hold exactly the cells, values and flags of data.parquet."""
    out = []
    measures = [m["name"] for m in meta["measures"]]
    keys = ["geo_code", *[d["name"] for d in meta["dimensions"][1:]]]
    try:
        csv = pl.read_csv(folder / "data.csv", infer_schema=False)
    except Exception as exc:
        return [f"data.csv unreadable: {exc}"]
    if csv.height != table.height or csv.columns != table.columns:
        out.append("data.csv and data.parquet differ in shape or columns")
    else:
        for m in measures:
            a, b = table[m].cast(pl.Float64), csv[m].cast(pl.Float64, strict=False)
            same = (a.is_null() & b.is_null()) | ((a - b).abs() < 1e-9)
            if not same.all() or (csv[f"{m}_flag"].fill_null("") != table[f"{m}_flag"]).any():
                out.append(f"data.csv and data.parquet differ in {m}")
    try:
        long = jsonstat.to_long(json.loads((folder / "data.json").read_text(encoding="utf-8")))
    except Exception as exc:
        return out + [f"data.json is not a readable JSON-stat dataset: {exc}"]
    values = table.unpivot(on=measures, index=keys, variable_name="measure", value_name="v")
    flags = table.unpivot(on=[f"{m}_flag" for m in measures], index=keys, variable_name="measure", value_name="f")
    flags = flags.with_columns(pl.col("measure").str.strip_suffix("_flag"))
    both = (values.join(flags, on=[*keys, "measure"])
            .join(long.rename({"geo": "geo_code"}), on=[*keys, "measure"], how="full", coalesce=True))
    v = both["v"].cast(pl.Float64)
    same = ((v.is_null() & both["value"].is_null()) | ((v - both["value"]).abs() < 1e-9)) \
        & (both["f"].fill_null("?") == both["status"].fill_null("?"))
    if both.height != values.height or not same.all():
        out.append("data.json (JSON-stat) and data.parquet differ")
    return out


def _file_dimensions(table: pl.DataFrame, meta: Mapping[str, Any]) -> list[disclosure.Dimension]:
    geo = {c: p for c in table["geo_code"].unique().to_list() if (p := geo_parent(c)) is not None}
    dims = [disclosure.Dimension("geo_code", geo)]
    for d in meta["dimensions"][1:]:
        parent = {c["code"]: "total" for c in d["categories"] if c["code"] != "total"} if d.get("total") else None
        dims.append(disclosure.Dimension(d["name"], parent))
    return dims


def _lp_audit(table: pl.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    """The disclosure audit of a published table: what an attacker can derive about each hidden
    count from the published cells. The intervals do not depend on the hidden true values, so
    any integer table matching the published cells stands in for them (found by a MILP)."""
    counts = [m for m in meta["measures"] if m["kind"] == "count" and m.get("rule") != "public"]
    if not counts:
        return []
    dims = _file_dimensions(table, meta)
    measures = [disclosure.CountMeasure(m["name"], m["rule"], m.get("denominator")) for m in counts]
    df = table.select(["geo_code", *[d.name for d in dims[1:]]])
    masks = {m["name"]: (table[f"{m['name']}_flag"] == jsonstat.HIDDEN).to_numpy() for m in counts}
    values = {m["name"]: table[m["name"]].fill_null(0).cast(pl.Int64).to_numpy().astype(float) for m in counts}
    for m in meta["measures"]:  # public denominators
        if m["kind"] == "count" and m.get("rule") == "public":
            values.setdefault(m["name"], table[m["name"]].cast(pl.Int64).to_numpy().astype(float))
    try:
        filled = _feasible_fill(df, dims, counts, values, masks)
    except RuntimeError as exc:
        return [str(exc)]
    public = [m["name"] for m in meta["measures"] if m["kind"] == "count" and m.get("rule") == "public"]
    df = df.with_columns(
        *[table[name].cast(pl.Int64) for name in public],
        *[pl.Series(name, v.round().astype(np.int64)) for name, v in filled.items()],
        *[pl.Series(hidden_col(name), mask) for name, mask in masks.items()],
    )
    try:
        findings = disclosure.audit(df, dims, measures, width=int(meta["disclosure"].get("width", DISCLOSURE_WIDTH)),
                                    min_denominator=int(meta["disclosure"].get("min_denominator", MIN_DENOMINATOR)))
    except disclosure.RelationError as exc:
        return [f"the published cells do not add up: {exc}"]
    out = []
    for f in findings:
        if f.reason == "primary cell published":
            m = next(c for c in counts if c["name"] == f.measure)
            den = m.get("denominator")
            if den and den in masks:
                # the primary share rule needs the true denominator, hidden here: the audit at
                # publication checked it; from the files only the published ones can be checked
                row = df.filter(*[pl.col(k) == v for k, v in f.cell.items()])
                if row.height and bool(row[hidden_col(den)][0]):
                    continue
        out.append(f"disclosure: {f}")
    return out


def _relation_matrix(df: pl.DataFrame, dims: Sequence[disclosure.Dimension]) -> sp.csr_array:
    """relations x cells: +1 for the total, -1 for each part (one relation per dimension and total)."""
    rows, cols, data = [], [], []
    offset = 0
    for _, x in relation_edges(df, [(d.name, d.parent) for d in dims]):
        p, c = x["_prow"].to_numpy(), x["_crow"].to_numpy()
        u, inv = np.unique(p, return_inverse=True)
        rows += [offset + np.arange(u.size), offset + inv]
        cols += [u, c]
        data += [np.ones(u.size), -np.ones(c.size)]
        offset += u.size
    if not offset:
        return sp.csr_array((0, df.height))
    return sp.csr_array((np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(offset, df.height))


def _feasible_fill(df: pl.DataFrame, dims: Sequence[disclosure.Dimension], counts: Sequence[Mapping[str, Any]],
                   values: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer values for the hidden counts satisfying every additive relation with the
    published cells and 0 <= share <= its denominator (a MILP; any solution will do)."""
    matrix = _relation_matrix(df, dims)
    hidden = {m["name"]: np.flatnonzero(masks[m["name"]]) for m in counts}
    var: dict[str, np.ndarray] = {}  # cell row -> variable number (-1: published)
    start = 0
    for m in counts:
        v = np.full(df.height, -1, dtype=np.int64)
        v[hidden[m["name"]]] = np.arange(start, start + hidden[m["name"]].size)
        var[m["name"]] = v
        start += hidden[m["name"]].size
    nvar = start
    out = {m["name"]: values[m["name"]].copy() for m in counts}
    if nvar == 0:
        return out
    blocks: list[sp.csr_array] = []
    lo_b: list[np.ndarray] = []
    hi_b: list[np.ndarray] = []
    upper = np.full(nvar, np.inf)
    for m in counts:
        name, h = m["name"], hidden[m["name"]]
        a_h = matrix[:, h].tocsr()
        keep = np.diff(a_h.indptr) > 0
        rhs = -(matrix @ np.where(masks[name], 0.0, values[name]))[keep]
        coo = a_h[keep].tocoo()
        blocks.append(sp.csr_array((coo.data, (coo.row, var[name][h][coo.col])), shape=(int(keep.sum()), nvar)))
        lo_b.append(rhs)
        hi_b.append(rhs)
        den = m.get("denominator")
        if not den:
            continue
        if den not in masks:  # a public denominator bounds the share
            upper[var[name][h]] = values[den][h]
            continue
        dmask = masks[den]
        upper[var[name][h[~dmask[h]]]] = values[den][h[~dmask[h]]]
        rows = np.flatnonzero(masks[name] & dmask)  # both hidden: n - d <= 0
        if rows.size:
            k = np.arange(rows.size)
            blocks.append(sp.csr_array((np.r_[np.ones(rows.size), -np.ones(rows.size)],
                                        (np.r_[k, k], np.r_[var[name][rows], var[den][rows]])), shape=(rows.size, nvar)))
            lo_b.append(np.full(rows.size, -np.inf))
            hi_b.append(np.zeros(rows.size))
        rows = np.flatnonzero(~masks[name] & dmask)  # hidden d >= published n
        if rows.size:
            blocks.append(sp.csr_array((np.ones(rows.size), (np.arange(rows.size), var[den][rows])), shape=(rows.size, nvar)))
            lo_b.append(values[name][rows])
            hi_b.append(np.full(rows.size, np.inf))
    a = sp.vstack(blocks, format="csr")
    res = milp(np.zeros(nvar), constraints=[LinearConstraint(a, np.concatenate(lo_b), np.concatenate(hi_b))],
               integrality=np.ones(nvar), bounds=Bounds(np.zeros(nvar), upper), options={"time_limit": 600})
    if res.x is None:
        raise RuntimeError(f"no integer table matches the published cells ({res.message}): the release is inconsistent")
    for m in counts:
        h = hidden[m["name"]]
        out[m["name"]][h] = np.round(res.x[var[m["name"]][h]])
    return out
