"""JSON-stat 2.0 datasets from published tables, and back.

The published table is long (one row per cell: ``geo_level``, ``geo_code``, ``geo_name``, the
product's dimensions, then each measure and its ``<measure>_flag``). As JSON-stat it becomes a
``dataset`` whose dimensions are ``geo`` (the geography codes of every level, hierarchy in
``category.child``, level per code in the dimension's ``extension``), the product's dimensions
(``total`` as parent in ``category.child``) and ``measure`` (role ``metric``, with ``unit``).

``value`` holds one value per combination of categories in row-major order (the last dimension,
``measure``, varies fastest). A hidden value is ``null`` with status ``":"``; a value that is not
defined (a rate over a zero population, an expected value with too few years) is ``null``
without status; the legend is in ``extension.status``. When some combinations do not exist (no
kommune rows for hiv and tuberculosis), ``value`` and ``status`` are objects keyed by the index
(JSON-stat's sparse form), so an absent cell is never mistaken for a hidden one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import prod
from typing import Any

import numpy as np
import polars as pl

from stat19.geography import geo_parent

HIDDEN = ":"
STATUS_LEGEND = {
    HIDDEN: "hidden by disclosure control (primary or secondary suppression; value null)",
}
NULL_WITHOUT_STATUS = "not defined: a rate whose denominator is 0, or an expected value with too few earlier years"


def dataset(table: pl.DataFrame, metadata: Mapping[str, Any], *, updated: str | None = None,
            extension: Mapping[str, Any] | None = None, absent_status: str | None = None) -> dict[str, Any]:
    """The JSON-stat 2.0 dataset of a published table described by its release metadata
    (``dimensions``: geo first, then the product's; ``measures``). With ``absent_status``, the
    combinations without a row are written too (dense form): null with that status."""
    dims_meta = list(metadata["dimensions"])
    geo_meta, others = dims_meta[0], dims_meta[1:]
    measures = [m["name"] for m in metadata["measures"]]

    ids: list[str] = ["geo", *[d["name"] for d in others], "measure"]
    codes: dict[str, list[str]] = {}
    dimension: dict[str, Any] = {}

    geo_codes = [c["code"] for c in geo_meta["categories"]]
    codes["geo"] = geo_codes
    children: dict[str, list[str]] = {}
    present = set(geo_codes)
    for c in geo_codes:
        p = geo_parent(c)
        if p is not None and p in present:
            children.setdefault(p, []).append(c)
    dimension["geo"] = {
        "label": geo_meta.get("label", "Geography"),
        "category": {
            "index": {c: i for i, c in enumerate(geo_codes)},
            "label": {c["code"]: c["label"] for c in geo_meta["categories"]},
            **({"child": children} if children else {}),
        },
        "extension": {"level": {c["code"]: c["level"] for c in geo_meta["categories"]}},
    }
    for d in others:
        cs = [c["code"] for c in d["categories"]]
        codes[d["name"]] = cs
        cat: dict[str, Any] = {"index": {c: i for i, c in enumerate(cs)},
                               "label": {c["code"]: c["label"] for c in d["categories"]}}
        if d.get("total"):
            cat["child"] = {"total": [c for c in cs if c != "total"]}
        dimension[d["name"]] = {"label": d["label"], "category": cat}
    codes["measure"] = measures
    dimension["measure"] = {
        "label": "Measure",
        "category": {
            "index": {m: i for i, m in enumerate(measures)},
            "label": {m["name"]: m["label"] for m in metadata["measures"]},
            "unit": {m["name"]: {"label": m["unit"], "decimals": m.get("decimals", 0)} for m in metadata["measures"]},
        },
    }
    size = [len(codes[i]) for i in ids]

    # flat index of each row's first measure (row-major, measure fastest)
    base = np.zeros(table.height, dtype=np.int64)
    for i, name in enumerate(ids[:-1]):
        col = "geo_code" if name == "geo" else name
        idx = table[col].replace_strict({c: k for k, c in enumerate(codes[name])}, return_dtype=pl.Int64).to_numpy()
        base = base * size[i] + idx
    base = base * size[-1]

    total = prod(size)
    dense = table.height * len(measures) == total
    positions = np.concatenate([base + k for k in range(len(measures))]) if measures else np.zeros(0, np.int64)
    cell_values = np.empty(positions.size, dtype=object)
    flagged: list[np.ndarray] = []
    for k, m in enumerate(measures):
        cell_values[k * table.height:(k + 1) * table.height] = table[m].to_list()
        flags = table[f"{m}_flag"].fill_null("").to_numpy()
        flagged.append(np.flatnonzero(flags != "") + k * table.height)
    if dense or absent_status is not None:
        values: Any = np.empty(total, dtype=object)
        values[positions] = cell_values
        values = values.tolist()
    else:
        order = np.argsort(positions, kind="stable")
        values = dict(zip(map(str, positions[order].tolist()), cell_values[order].tolist()))
    marked = np.concatenate(flagged) if flagged else np.zeros(0, np.int64)
    flag_values = np.concatenate([table[f"{m}_flag"].fill_null("").to_numpy() for m in measures]) if measures else np.zeros(0, object)
    status_at, status_of = positions[marked], flag_values[marked]
    if absent_status is not None and not dense:
        absent = np.ones(total, dtype=bool)
        absent[positions] = False
        status_at = np.concatenate([status_at, np.flatnonzero(absent)])
        status_of = np.concatenate([status_of, np.full(int(absent.sum()), absent_status, dtype=object)])
    order = np.argsort(status_at, kind="stable")
    status = dict(zip(map(str, status_at[order].tolist()), status_of[order].tolist()))
    role: dict[str, list[str]] = {"geo": ["geo"], "metric": ["measure"]}
    time = [d["name"] for d in others if d.get("kind") in ("iso_week", "month")]
    if time:
        role["time"] = time
    doc: dict[str, Any] = {
        "version": "2.0",
        "class": "dataset",
        "label": metadata.get("title", ""),
        "source": "Stat19",
    }
    if updated:
        doc["updated"] = updated
    doc.update({
        "id": ids,
        "size": size,
        "role": role,
        "dimension": dimension,
        "value": values,
        "status": status,
        "extension": {
            "status": dict(STATUS_LEGEND),
            "null_without_status": NULL_WITHOUT_STATUS,
            **(dict(extension) if extension else {}),
        },
    })
    return doc


def to_long(doc: Mapping[str, Any]) -> pl.DataFrame:
    """A JSON-stat 2.0 dataset as a long table: one column per dimension id (codes), ``value``
    and ``status`` ('' when none). Absent combinations of a sparse dataset are left out."""
    ids: Sequence[str] = doc["id"]
    size: Sequence[int] = doc["size"]
    cats = []
    for i in ids:
        index = doc["dimension"][i]["category"]["index"]
        if isinstance(index, list):
            cats.append(list(index))
        else:
            cats.append([c for c, _ in sorted(index.items(), key=lambda kv: kv[1])])
    raw_values = doc["value"]
    if isinstance(raw_values, list):
        positions = list(range(len(raw_values)))
        values = list(raw_values)
    else:
        positions = [int(k) for k in raw_values]
        values = list(raw_values.values())
    raw_status = doc.get("status") or {}
    if isinstance(raw_status, str):
        status = [raw_status] * len(positions)
    elif isinstance(raw_status, list):
        status = [raw_status[p] or "" for p in positions]
    else:
        status = [raw_status.get(str(p), "") for p in positions]
    pos = np.asarray(positions, dtype=np.int64)
    columns: dict[str, Any] = {}
    for i in reversed(range(len(ids))):
        columns[ids[i]] = np.asarray(cats[i], dtype=object)[pos % size[i]]
        pos = pos // size[i]
    out = pl.DataFrame({i: pl.Series(i, columns[i].tolist(), dtype=pl.String) for i in ids})
    return out.with_columns(pl.Series("value", values, dtype=pl.Float64, strict=False), pl.Series("status", status, dtype=pl.String))
