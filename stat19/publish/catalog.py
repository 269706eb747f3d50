"""The published zone's files and its catalog: every product, every release, the latest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import stat19
from stat19.paths import Home, write_atomically

DATA_FILES = ("data.parquet", "data.csv", "data.schema.json", "codelists.csv", "data.json", "metadata.json")
CATALOG = "catalog.json"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def releases(home: Home) -> Iterable[tuple[str, Path]]:
    if not home.published.is_dir():
        return
    for product_dir in sorted(p for p in home.published.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for rel in sorted(p for p in product_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            yield product_dir.name, rel


def catalog(home: Home) -> dict[str, Any]:
    """Every product, every release (with its revisions), and the latest release per product."""
    products: dict[str, Any] = {}
    for product, rel in releases(home):
        meta = read_json(rel / "metadata.json")
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
    if read_json(path) != doc:
        write_atomically(path, json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    return doc
