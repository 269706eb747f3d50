"""Where things live: the project's specs and SQL, and the zones of a Stat19 home."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Specs and SQL sit beside the package in the repository (installed editable).
PROJECT_DIR = Path(os.environ.get("STAT19_PROJECT_DIR", PACKAGE_DIR.parent))
ASSETS_DIR = PROJECT_DIR / "assets"
SQL_DIR = PROJECT_DIR / "sql"
DQ_DIR = PROJECT_DIR / "dq_checks"
REFERENCE_DIR = PACKAGE_DIR / "reference"


@dataclass(frozen=True)
class Home:
    """A Stat19 home and its zones.

    vault/     the identifiable zone: raw identifiers, record versions, quarantine. Nothing else
               may hold an identifier.
    linked/    pseudonymised tables for epidemiologists.
    published/ anonymous, disclosure-controlled tables.
    reports/   accounting and quality reports (no identifiers).
    """

    root: Path

    @property
    def vault(self) -> Path:
        return self.root / "vault"

    @property
    def warehouse(self) -> Path:
        return self.vault / "warehouse.duckdb"

    @property
    def scratch(self) -> Path:
        # Spill and transcoding space; inside the vault because it can hold identifiers.
        return self.vault / "tmp"

    @property
    def linked(self) -> Path:
        return self.root / "linked"

    @property
    def published(self) -> Path:
        return self.root / "published"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def ensure(self) -> "Home":
        for d in (self.vault, self.scratch, self.linked, self.published, self.reports):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.vault, 0o700)
        return self


def write_atomically(path: Path, data: bytes | str) -> None:
    """Write a file so readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
