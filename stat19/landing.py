"""The landing zone protocol: finding complete deliveries and checking them against their manifest.

    <landing>/<source>/<YYYY-MM-DD>/<data files...>
    <landing>/<source>/<YYYY-MM-DD>/_manifest.json   <- written last: the delivery is complete

A folder without a manifest is still being written and is never read. Everything here works on
file bytes, never on row contents, so its messages cannot carry an identifier.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

MANIFEST = "_manifest.json"


class DeliveryRejected(Exception):
    """The delivery breaks the contract as a whole: none of it may load."""


@dataclass(frozen=True)
class ManifestFile:
    name: str
    rows: int
    sha256: str


@dataclass(frozen=True)
class Delivery:
    source: str
    delivery_date: date
    folder: Path

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    @property
    def is_complete(self) -> bool:
        return self.manifest_path.is_file()

    def label(self) -> str:
        return f"{self.source}/{self.delivery_date.isoformat()}"

    def manifest_digest(self) -> str:
        """Identifies the delivery's content: the manifest pins every file's sha256."""
        return hashlib.sha256(self.manifest_path.read_bytes()).hexdigest()


def find_deliveries(landing: Path, sources: list[str], through: date | None = None) -> list[Delivery]:
    """Every delivery folder of the known sources (complete or not), in date order then source order."""
    found = []
    for source in sources:
        for folder in sorted((landing / source).glob("????-??-??")):
            try:
                day = date.fromisoformat(folder.name)
            except ValueError:
                continue  # not a delivery folder
            if folder.is_dir() and (through is None or day <= through):
                found.append(Delivery(source, day, folder))
    order = {s: i for i, s in enumerate(sources)}
    return sorted(found, key=lambda d: (d.delivery_date, order[d.source]))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_manifest(delivery: Delivery) -> list[ManifestFile]:
    """Parse the manifest and check the folder against it (bytes only; row counts come later)."""
    where = f"{delivery.label()}/{MANIFEST}"
    try:
        doc = json.loads(delivery.manifest_path.read_bytes())
        files = [ManifestFile(str(f["name"]), int(f["rows"]), str(f["sha256"]).lower()) for f in doc["files"]]
        source, day = doc["source"], doc["delivery_date"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeliveryRejected(f"{where}: not a valid manifest ({type(exc).__name__}: {exc})") from None
    if source != delivery.source or day != delivery.delivery_date.isoformat():
        raise DeliveryRejected(
            f"{where}: manifest says {source}/{day} but lies in the folder of {delivery.label()}"
        )
    listed = {f.name for f in files}
    if len(listed) != len(files):
        raise DeliveryRejected(f"{where}: a file is listed twice")
    present = {p.name for p in delivery.folder.iterdir() if p.name != MANIFEST}
    if unlisted := sorted(present - listed):
        raise DeliveryRejected(f"{delivery.label()}: file {unlisted[0]} is not listed in the manifest")
    if missing := sorted(listed - present):
        raise DeliveryRejected(f"{delivery.label()}: file {missing[0]} is listed in the manifest but missing")
    for f in files:
        actual = sha256_of(delivery.folder / f.name)
        if actual != f.sha256:
            raise DeliveryRejected(
                f"{delivery.label()}/{f.name}: sha256 {actual[:12]}… does not match the manifest's {f.sha256[:12]}…"
            )
    return files
