"""Helpers for tests: write small, exact deliveries into a landing folder."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stat19.synth.ids import make_ids


def fnrs(n: int, seed: int = 1, kind: str = "fnr") -> list[str]:
    """n distinct valid synthetic identifiers."""
    rng = np.random.default_rng(seed)
    births = np.datetime64("1950-01-01") + rng.integers(0, 365 * 60, n).astype("timedelta64[D]")
    sexes = rng.choice(np.array(["male", "female"]), n)
    ids = list(dict.fromkeys(make_ids(rng, births, sexes, kind=kind).tolist()))
    assert len(ids) == n, "identifier collision: pick another seed"
    return ids


def break_check_digit(fnr: str) -> str:
    return fnr[:-1] + str((int(fnr[-1]) + 1) % 10)


def csv_bytes(header: list[str], rows: list[list[object]], delimiter: str = ";", encoding: str = "utf-8") -> bytes:
    lines = [delimiter.join(header)] + [delimiter.join("" if v is None else str(v) for v in r) for r in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def jsonl_bytes(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_delivery(
    landing: Path,
    source: str,
    day: date | str,
    files: dict[str, tuple[bytes, int]],
    *,
    manifest: bool = True,
    manifest_rows: dict[str, int] | None = None,
    manifest_sha: dict[str, str] | None = None,
    unlisted: dict[str, bytes] | None = None,
) -> Path:
    """Write a delivery folder: files as (bytes, data rows); the manifest last, optionally lying."""
    folder = landing / source / str(day)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, (data, rows) in files.items():
        (folder / name).write_bytes(data)
        entries.append({
            "name": name,
            "rows": (manifest_rows or {}).get(name, rows),
            "sha256": (manifest_sha or {}).get(name, hashlib.sha256(data).hexdigest()),
        })
    for name, data in (unlisted or {}).items():
        (folder / name).write_bytes(data)
    if manifest:
        doc = {"source": source, "delivery_date": str(day), "files": entries}
        (folder / "_manifest.json").write_text(json.dumps(doc))
    return folder
