"""Whether a release must be computed again: the fingerprint of its inputs, and the release kept for them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from stat19.inputs import fingerprint
from stat19.products.spec import ProductSpec


def last_deliveries(con: duckdb.DuckDBPyConnection, reference_date: date) -> list[dict[str, str]]:
    """Source and last delivery date of every source loaded up to R (from the vault's
    ``loaded_deliveries``; empty when the connection has no such table)."""
    try:
        rows = con.execute(
            "SELECT source, max(delivery_date) FROM loaded_deliveries WHERE delivery_date <= ? GROUP BY source ORDER BY source",
            [reference_date],
        ).fetchall()
    except duckdb.Error:
        return []
    return [{"source": s, "last_delivery_date": d.isoformat()} for s, d in rows]


def release_inputs(con: duckdb.DuckDBPyConnection, spec: ProductSpec, reference_date: date) -> str:
    """Fingerprint of everything a release for R is computed from: the linked snapshot's inputs
    (every loaded delivery, the key, the code) plus the product and R; '' without a snapshot record.

    Conservative on purpose: any delivery loaded since, even a later one, recomputes the release,
    since identity resolution follows the current identifier chains."""
    try:  # linked_state and release_inputs are the vault's (made by stat19.linkage.link)
        row = con.execute("SELECT inputs_sha256 FROM linked_state").fetchone()
    except duckdb.CatalogException:
        return ""
    try:  # data-quality waivers for R travel in the release's metadata: a new one is a new input
        waivers = con.execute("SELECT coalesce(string_agg(check_name || '/' || waived_at, ';' ORDER BY waived_at), '') "
                              "FROM dq_waivers WHERE delivery_date = ?", [reference_date]).fetchone()[0]
    except duckdb.CatalogException:
        waivers = ""
    return fingerprint(row[0], spec.name, reference_date, waivers) if row else ""


def _content_sha256(target: Path) -> str | None:
    try:
        return json.loads((target / "metadata.json").read_text(encoding="utf-8")).get("content_sha256")
    except (OSError, ValueError):
        return None


def kept_release(con: duckdb.DuckDBPyConnection, product: str, reference_date: date, inputs: str,
                 target: Path) -> dict[str, Any] | None:
    """The metadata of the release in place when it was made from exactly these inputs (and is
    still the one recorded for them), else None: then the release must be computed."""
    if not inputs:
        return None
    row = con.execute("SELECT content_sha256 FROM release_inputs WHERE product = ? AND reference_date = ? "
                      "AND inputs_sha256 = ?", [product, reference_date, inputs]).fetchone()
    if row is None or _content_sha256(target) != row[0]:
        return None
    return json.loads((target / "metadata.json").read_text(encoding="utf-8"))


def record_release_inputs(con: duckdb.DuckDBPyConnection, product: str, reference_date: date, inputs: str,
                          target: Path) -> None:
    """Remember which inputs gave the release now in place (after it is in place: a crash in
    between only costs one more computation)."""
    content = _content_sha256(target)
    if inputs and content:
        con.execute("INSERT OR REPLACE INTO release_inputs VALUES (?, ?, ?, ?)",
                    [product, reference_date, inputs, content])
