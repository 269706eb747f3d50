"""Where things live: the project's specs and SQL (and further spec directories), and the zones
of a Stat19 home."""

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
SPEC_PATH_VARIABLE = "STAT19_SPEC_PATH"


class SpecError(ValueError):
    """A spec the engine cannot use (a source, product or suite file, or the set of them); the
    message names the file and field, and the command line reports it in one line."""


class SpecPathError(SpecError):
    """The spec directories are misconfigured (one missing, a name defined twice): a fault of the
    configuration, which the command line reports in one line."""


def spec_roots() -> list[Path]:
    """Where specs, SQL and suites are read from: the repository first, then every directory
    named in STAT19_SPEC_PATH (separated by ``os.pathsep``), each laid out like the repository
    (``assets/``, ``sql/``, ``dq_checks/``). A crisis team adds a register or a product in its
    own directory without touching the repository."""
    extra = [Path(p).expanduser().resolve() for p in os.environ.get(SPEC_PATH_VARIABLE, "").split(os.pathsep) if p]
    missing = [str(p) for p in extra if not p.is_dir()]
    if missing:
        raise SpecPathError(f"{SPEC_PATH_VARIABLE} names directories that do not exist: {', '.join(missing)}")
    roots = list(dict.fromkeys([PROJECT_DIR, *extra]))  # a directory named twice counts once
    if len(roots) > 1:
        _refuse_shadowed_sql(roots)
    return roots


def _refuse_shadowed_sql(roots: list[Path]) -> None:
    """Templates are found through the Jinja search path, where the first root's file wins: a spec
    directory's `sql/dq/count_shift.sql.j2` would be ignored without a word. So every file under
    `sql/` may be defined by one root only."""
    found: dict[str, Path] = {}
    for root in roots:
        files = sorted(p for p in (root / "sql").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            name = path.relative_to(root).as_posix()
            if name in found:
                raise SpecPathError(f"{path} and {found[name]} both define {name}")
            found[name] = path


def spec_dirs(*parts: str) -> list[Path]:
    """The directory ``parts`` (e.g. "sql", "linked") of every spec root that has it."""
    return [d for root in spec_roots() if (d := root.joinpath(*parts)).is_dir()]


def each_spec_file(*parts: str) -> list[Path]:
    """The file ``parts`` (e.g. "assets", "linked.yaml") of every spec root that has it, the
    repository's first: files that spec directories extend (their callers merge them)."""
    return [f for root in spec_roots() if (f := root.joinpath(*parts)).is_file()]


def spec_files(pattern: str, *parts: str) -> list[Path]:
    """The files matching ``pattern`` in the directory ``parts`` of every spec root, by name.
    A name found in two roots is an error: a spec directory adds, it never replaces silently."""
    found: dict[str, Path] = {}
    for d in spec_dirs(*parts):
        for path in sorted(d.glob(pattern)):
            if path.name in found:
                raise SpecPathError(f"{path} and {found[path.name]} both define {'/'.join(parts)}/{path.name}")
            found[path.name] = path
    return [found[name] for name in sorted(found)]


@dataclass(frozen=True)
class Home:
    """A Stat19 home and its zones.

    vault/     the identifiable zone: raw identifiers, record versions, quarantine, and the
               internal copy of every published release (true values of hidden cells). Nothing
               else may hold an identifier or a hidden value.
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
    def internal_releases(self) -> Path:
        # <product>/<R>/r<n>.parquet: each published revision with its true values and hidden
        # masks, what series disclosure control compares a new release with (stat19/publish/series.py)
        return self.vault / "releases"

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
