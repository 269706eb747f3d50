"""Fingerprints of what a step's output depends on, so a step whose inputs are unchanged is skipped
before it is computed (a rerun with nothing new does no linkage and no product work).

A fingerprint is a sha256 over:
- the deliveries loaded into the vault (source, delivery date, manifest digest): a new, late or
  re-sent delivery changes it;
- the code that turns them into output: every file of the package (Python and reference data),
  of the specs, SQL templates and suites in use; any change of code or spec changes it.

Fingerprints hold no identifier and no data: only digests of manifests and files.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache

import duckdb

from stat19.paths import PACKAGE_DIR, spec_roots


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over every file (name and content) of the package, the specs, SQL and suites, and
    of every further spec directory (STAT19_SPEC_PATH). A spec file is named with its root's
    position (the repository 0, the first further directory 1, ...): a file moved from one root
    to another changes the digest."""
    h = hashlib.sha256()
    trees = [("package", PACKAGE_DIR)]
    trees += [(f"{n}/{part}", root / part) for n, root in enumerate(spec_roots()) for part in ("assets", "sql", "dq_checks")]
    for name, tree in trees:
        for path in sorted(p for p in tree.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(f"{name}/{path.relative_to(tree).as_posix()}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def deliveries_digest(con: duckdb.DuckDBPyConnection) -> str:
    """sha256 over the vault's loaded deliveries, in one SQL aggregate (order-independent)."""
    row = con.execute(
        "SELECT coalesce(string_agg(source || '/' || delivery_date || '/' || manifest_sha256, ';' "
        "ORDER BY source, delivery_date), '') FROM loaded_deliveries").fetchone()
    return hashlib.sha256(row[0].encode()).hexdigest()


def fingerprint(*parts: str | date) -> str:
    """One digest of several parts (each already a digest or a plain value such as a date)."""
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()
