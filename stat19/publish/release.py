"""Publishing one release: audit first, then files written complete and swapped into place, a new
revision only when the content changed, the catalog kept in step."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

import polars as pl

import stat19
from stat19 import disclosure, jsonstat, portal
from stat19.dq import waivers_for
from stat19.faults import checkpoint
from stat19.paths import Home
from stat19.products import (ProductSpec, compute_release, disclosure_dimensions, disclosure_measures, get_product,
                             public_table)
from stat19.publish.audit import audit_files, check_derived, check_public_table
from stat19.publish.catalog import DATA_FILES, read_json, write_catalog
from stat19.publish.series import neighbours as find_neighbours
from stat19.publish.series import remove_leftovers, write_vault_copy
from stat19.publish.swap import fsync_tree, recover, swap_into_place


class PublishError(Exception):
    """A release was not published (nothing was written)."""


class DisclosureAuditFailed(PublishError):
    """The disclosure audit found something unprotected (the asset check disclosure_audit fails)."""


@dataclass(frozen=True)
class PublishResult:
    status: Literal["published", "unchanged"]
    revision: int
    path: Path


def release_dir(home: Home, product: str, reference_date: date | str) -> Path:
    day = reference_date if isinstance(reference_date, str) else reference_date.isoformat()
    return home.published / product / day


def publish_product(con: Any, home: Home, product: ProductSpec | str, reference_date: date,
                    source_deliveries: Iterable[Mapping[str, Any]] | Mapping[str, Any] = ()) -> PublishResult:
    """Compute and publish one product for R (the whole step the Dagster asset runs), protected
    against its neighbouring releases in ``home``."""
    spec = get_product(product)
    near = find_neighbours(home, spec.name, reference_date)
    df, metadata = compute_release(con, spec, reference_date, neighbours=near)
    return publish(home, spec, reference_date, df, metadata, source_deliveries=source_deliveries, neighbours=near)


def publish(home: Home, product: ProductSpec | str, reference_date: date, df: pl.DataFrame,
            metadata: Mapping[str, Any], *,
            source_deliveries: Iterable[Mapping[str, Any]] | Mapping[str, Any] = (),
            now: datetime | None = None,
            neighbours: Mapping[str, pl.DataFrame] | None = None) -> PublishResult:
    """Audit and publish a release computed by ``compute_release``; see the module docstring.
    ``neighbours`` (label -> internal release, ``stat19.publish.neighbours``): the releases it is
    also audited against for differencing (``disclosure.check_series``); None skips that audit.
    The internal release goes to the vault (``stat19.publish.series``), never to published/."""
    spec = get_product(product)
    day = reference_date.isoformat()
    where = f"{spec.name} for {day}"

    # Data-quality waivers that released this date travel with each of its releases.
    metadata = {**metadata, "dq_waivers": waivers_for(home, reference_date)}
    # 1. The disclosure audit over the whole release, with the true values: nothing unsafe leaves.
    dimensions, measures = disclosure_dimensions(spec, df), disclosure_measures(spec)
    try:
        disclosure.check_release(df, dimensions, measures)
    except disclosure.DisclosureError as exc:
        raise DisclosureAuditFailed(f"{where} not published: the disclosure audit failed. {exc}") from exc
    except disclosure.RelationError as exc:
        raise DisclosureAuditFailed(f"{where} not published: the release does not add up: {exc}") from exc
    # ... and against the published releases beside it: no hidden cell recoverable by differencing.
    if neighbours:
        against = ", ".join(sorted(neighbours))
        try:
            disclosure.check_series(df, neighbours, dimensions, measures)
        except (disclosure.DisclosureError, disclosure.RelationError) as exc:
            raise DisclosureAuditFailed(f"{where} not published: the series audit against {against} failed "
                                        f"(a hidden cell recoverable by differencing). {exc}") from exc
    problems = check_derived(spec, df)
    if problems:
        raise DisclosureAuditFailed(f"{where} not published: {len(problems)} derived value(s) break the hiding "
                                    f"rules, e.g. {problems[0]}")
    table = public_table(spec, df)
    problems = check_public_table(table, metadata["measures"])
    if problems:
        raise DisclosureAuditFailed(f"{where} not published: the public table breaks the flag rules, "
                                    f"e.g. {problems[0]}")

    try:  # labels in both languages, codelists, licence, notes (stat19/portal.py)
        metadata = portal.describe_release(spec, metadata)
    except ValueError as exc:
        raise PublishError(f"{where} not published: {exc}") from exc
    csv = csv_bytes(table, metadata)
    content_meta = _canonical(_content_metadata(metadata))
    digest = hashlib.sha256(csv + b"\n" + content_meta).hexdigest()

    product_dir = home.published / spec.name
    target = product_dir / day
    product_dir.mkdir(parents=True, exist_ok=True)
    recover(product_dir, day)
    current = read_json(target / "metadata.json")
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
        fsync_tree(tmp)
        # the internal release before the swap: a published revision always has its vault copy
        # (a crash here leaves a copy of revision n+1 unread until the retry overwrites it)
        remove_leftovers(home, spec.name, day)
        write_vault_copy(home, spec.name, day, revision, df)
        checkpoint(f"publish:{spec.name}")
        swap_into_place(tmp, target)
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


def csv_bytes(table: pl.DataFrame, metadata: Mapping[str, Any]) -> bytes:
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


# What the series block says about the neighbours depends on which releases happened to be
# published when this one was computed, not on its content: left out of the content digest, so
# that a new neighbour alone never makes a new revision (which would make one of its neighbour in
# turn, date after date).
_SERIES_CONTEXT = ("protected_against", "without_internal_copy", "hidden_cells")


def _content_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    disclosure_block = dict(metadata.get("disclosure", {}))
    if "series" in disclosure_block:
        disclosure_block["series"] = {k: v for k, v in disclosure_block["series"].items() if k not in _SERIES_CONTEXT}
    return {**metadata, "disclosure": disclosure_block}


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
