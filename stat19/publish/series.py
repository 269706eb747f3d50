"""Internal releases kept in the vault, and a release's neighbours: what series disclosure control
(``stat19.disclosure.protect_series`` / ``check_series`` / ``series_audit``) compares a release with.

    <home>/vault/releases/<product>/<R>/r<n>.parquet   the internal release published as revision n of
                                                         R: true values and <measure>_hidden masks

Vault only: a hidden cell's true value is a confidential small count. ``publish`` writes the copy
(atomically) just before the published swap, so a crash can leave a copy of a revision about to be
published but never a published revision without its copy; the next attempt at that revision
overwrites it. Readers take the copy whose revision is the one published, so a leftover is never
read.

The neighbours of a release for R: every published revision of R itself (R republished: the new
n+1 against 1..n, all of which stay public under ``revisions/``), and the current revisions of the
nearest earlier published date and of the nearest later one (an older date redone). Every pair of
consecutive dates is then protected by whichever of its two releases was published last, against
the other as it stands, and every revision against all earlier ones of its date; ``stat19 audit``
checks those pairs.

Why every revision of R and not only the current one: protection against revision n alone may
publish again a cell that n hid only to protect it against n-1 (recomputing R from unchanged data
would then undo that protection, so revision n+1 would leak against n-1 and would not even equal
revision n: a rerun with nothing new would publish a new revision).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path

import polars as pl

from stat19.paths import Home, write_atomically
from stat19.publish.catalog import read_json


def release_label(day: str, revision: int) -> str:
    """How a release is named in metadata and findings, e.g. "2026-01-17 r1"."""
    return f"{day} r{revision}"


def vault_copy_path(home: Home, product: str, day: str, revision: int) -> Path:
    return home.internal_releases / product / day / f"r{revision}.parquet"


def write_vault_copy(home: Home, product: str, day: str, revision: int, df: pl.DataFrame) -> Path:
    """Keep the internal release published as revision ``revision`` of ``day`` (readers see the old
    file or the new one, never half; directories 0700 although the vault already is)."""
    path = vault_copy_path(home, product, day, revision)
    for d in (home.internal_releases, path.parent.parent, path.parent):
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
    buf = io.BytesIO()
    df.write_parquet(buf, statistics=True)
    write_atomically(path, buf.getvalue())
    return path


def read_vault_copy(home: Home, product: str, day: str, revision: int) -> pl.DataFrame | None:
    """The internal release of that revision; None when the vault has no copy (published before
    the vault kept them)."""
    path = vault_copy_path(home, product, day, revision)
    return pl.read_parquet(path) if path.is_file() else None


def remove_leftovers(home: Home, product: str = "*", day: str = "*") -> None:
    """Temporary files a killed publication left beside the vault copies (of one product and date:
    publications of one product and date never run at once, others may)."""
    for leftover in home.internal_releases.glob(f"{product}/{day}/.*.tmp"):
        leftover.unlink(missing_ok=True)


def published_revisions(home: Home, product: str) -> dict[str, list[int]]:
    """Every published date of ``product`` (in date order) with its revisions, oldest first; the
    last one is the current revision."""
    product_dir = home.published / product
    out: dict[str, list[int]] = {}
    if not product_dir.is_dir():
        return out
    for rel in sorted(p for p in product_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        meta = read_json(rel / "metadata.json")
        if meta is None:
            continue
        earlier = [int(p.name) for p in (rel / "revisions").glob("*") if p.name.isdigit()]
        out[rel.name] = sorted({*earlier, int(meta["revision"])})
    return out


class Neighbours(dict[str, pl.DataFrame]):
    """Label -> internal release of each neighbour found in the vault; ``without_copy`` lists the
    labels of neighbours left out because the vault has no copy of them (the release metadata
    says so)."""

    def __init__(self, found: Mapping[str, pl.DataFrame] = (), without_copy: Iterable[str] = ()) -> None:
        super().__init__(found)
        self.without_copy: list[str] = list(without_copy)


def neighbours(home: Home, product: str, reference_date: date | str) -> Neighbours:
    """The releases a new release of ``product`` for R must be protected against: every published
    revision of R, and the current revisions of the nearest earlier and the nearest later
    published date, read from the vault copies of exactly the published revisions."""
    day = reference_date if isinstance(reference_date, str) else reference_date.isoformat()
    published = published_revisions(home, product)  # ISO dates: string order is date order
    earlier = [d for d in published if d < day]
    later = [d for d in published if d > day]
    chosen = [(d, published[d][-1]) for d in earlier[-1:] + later[:1]]
    chosen += [(day, n) for n in published.get(day, [])]
    found, missing = {}, []
    for d, revision in sorted(chosen):
        df = read_vault_copy(home, product, d, revision)
        if df is None:
            missing.append(release_label(d, revision))
        else:
            found[release_label(d, revision)] = df
    return Neighbours(found, missing)

