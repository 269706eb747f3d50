"""The landing zone protocol: finding complete deliveries and checking them against their manifest.

    <landing>/<source>/<YYYY-MM-DD>/<data files...>
    <landing>/<source>/<YYYY-MM-DD>/_manifest.json   <- written last: the delivery is complete

A folder without a manifest is still being written and is never read. Everything here works on
file bytes, never on row contents, so its messages cannot carry an identifier.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path

MANIFEST = "_manifest.json"
# A data file larger than this is rejected unread (configurable: a register may send more).
MAX_FILE_BYTES = int(os.environ.get("STAT19_MAX_FILE_BYTES", str(64 << 30)))
MAX_MANIFEST_BYTES = 1 << 20  # a manifest lists a few files; anything bigger is not one


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
        # lexists: a manifest that is a symlink, a FIFO or a directory makes a complete delivery
        # that read_manifest rejects, rather than one that waits forever
        return os.path.lexists(self.manifest_path)

    def label(self) -> str:
        return f"{self.source}/{self.delivery_date.isoformat()}"

    def manifest_digest(self) -> str:
        """Identifies the delivery's content: the manifest pins every file's sha256. A manifest that
        cannot be read as a regular file (read_manifest rejects it) is identified by what it is."""
        try:
            return hashlib.sha256(read_regular_file(self.manifest_path, MAX_MANIFEST_BYTES)).hexdigest()
        except (OSError, DeliveryRejected):
            info = os.lstat(self.manifest_path)
            return f"unreadable:{info.st_mode:o}:{info.st_size}:{info.st_mtime_ns}"


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


def printable(name: str) -> str:
    """A file name fit for a message: bytes that are not UTF-8 shown as \\xNN escapes, and a lone
    surrogate (a manifest may write "\\ud800") as \\uNNNN."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


def _open_regular(path: Path, limit: int) -> int:
    """Open a file for reading only if it is a regular file no bigger than `limit`: never through a
    symlink (O_NOFOLLOW), and without blocking on a FIFO or a device (O_NONBLOCK)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DeliveryRejected(f"{printable(path.name)} is a symlink, not a file of the landing") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        what = (f"is {info.st_size:,} bytes, over the limit of {limit:,} (STAT19_MAX_FILE_BYTES)"
                if stat.S_ISREG(info.st_mode) else "is not a regular file")
        raise DeliveryRejected(f"{printable(path.name)} {what}")
    return fd


def read_regular_file(path: Path, limit: int) -> bytes:
    with os.fdopen(_open_regular(path, limit), "rb") as f:
        return f.read()


def sha256_of(path: Path, limit: int | None = None) -> str:
    h = hashlib.sha256()
    with os.fdopen(_open_regular(path, MAX_FILE_BYTES if limit is None else limit), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


MANIFEST_FORM = ('{"source": ..., "delivery_date": "YYYY-MM-DD", "files": [{"name": ..., "rows": <data rows, '
                 'no header>, "sha256": ...}]}')


def _manifest_entry(entry: object) -> ManifestFile:
    """One line of the manifest, strictly typed: a plain file name, a whole row count, a sha256."""
    if not isinstance(entry, dict):
        raise ValueError("a files entry is not an object")
    name, rows, sha = entry["name"], entry["rows"], entry["sha256"]
    if not isinstance(name, str) or not name or "/" in name or "\0" in name or name in (".", "..", MANIFEST):
        raise ValueError(f"file name {str(name)[:80]!r} is not a plain file name")
    if printable(name) != name:  # a surrogate escape in the JSON: no file of the landing has that name
        raise ValueError(f"file name {printable(name)[:80]} is not valid UTF-8")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows of {printable(name)} is {str(rows)[:40] if isinstance(rows, (int, float)) else repr(rows)[:40]}, not a whole number of rows")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
        raise ValueError(f"sha256 of {printable(name)} is not 64 hex digits")
    return ManifestFile(name, rows, sha.lower())


def read_manifest(delivery: Delivery) -> list[ManifestFile]:
    """Parse the manifest and check the folder against it (bytes only; row counts come later)."""
    where = f"{delivery.label()}/{MANIFEST}"
    if delivery.folder.is_symlink():
        raise DeliveryRejected(f"{delivery.label()}: the delivery folder is a symlink, not a folder of the landing")
    try:
        raw = read_regular_file(delivery.manifest_path, MAX_MANIFEST_BYTES)
    except (OSError, DeliveryRejected) as exc:
        raise DeliveryRejected(f"{where}: cannot be read as a regular file "
                               f"({exc if isinstance(exc, DeliveryRejected) else type(exc).__name__})") from None
    try:
        # json parses 1e999 as inf and deep nesting raises RecursionError: both are bad manifests
        doc = json.loads(raw)
        files = [_manifest_entry(f) for f in doc["files"]]
        source, day = doc["source"], doc["delivery_date"]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        detail = str(exc)[:200] if not isinstance(exc, RecursionError) else "nested too deeply"
        if isinstance(exc, KeyError):  # say what is missing and what a manifest holds
            detail = f"no field {detail}; a manifest is {MANIFEST_FORM}"
        raise DeliveryRejected(f"{where}: not a valid manifest ({type(exc).__name__}: {detail})") from None
    if source != delivery.source or day != delivery.delivery_date.isoformat():
        raise DeliveryRejected(
            f"{where}: manifest says {source}/{day} but lies in the folder of {delivery.label()}"
        )
    listed = {f.name for f in files}
    if len(listed) != len(files):
        raise DeliveryRejected(f"{where}: a file is listed twice")
    present = {p.name for p in delivery.folder.iterdir() if p.name != MANIFEST}
    if unlisted := sorted(present - listed):
        raise DeliveryRejected(f"{delivery.label()}: file {printable(unlisted[0])} is not listed in the manifest")
    if missing := sorted(listed - present):
        raise DeliveryRejected(f"{delivery.label()}: file {printable(missing[0])} is listed in the manifest but missing")
    for f in files:
        if printable(f.name) != f.name:
            raise DeliveryRejected(f"{delivery.label()}: file name {printable(f.name)} is not valid UTF-8")
        try:
            actual = sha256_of(delivery.folder / f.name)
        except DeliveryRejected as exc:
            raise DeliveryRejected(f"{delivery.label()}/{exc}: only regular files inside the landing are read") from None
        if actual != f.sha256:
            raise DeliveryRejected(
                f"{delivery.label()}/{f.name}: sha256 {actual[:12]}… does not match the manifest's {f.sha256[:12]}…"
            )
    return files
