"""File modes that fit the zones, configurable by environment variables.

    zone        default dir / file   who reads it                      variables
    vault/      0700 / (dir only)    the pipeline's account only       STAT19_VAULT_MODE
    linked/     0750 / 0440          the analysts' group               STAT19_LINKED_MODE, STAT19_LINKED_FILE_MODE, STAT19_LINKED_GROUP
    published/  0750 / 0640          the statistics team's group       STAT19_PUBLISHED_MODE, STAT19_PUBLISHED_FILE_MODE, STAT19_STATS_GROUP
    reports/    0750 / 0640          the statistics team's group       STAT19_REPORTS_MODE, STAT19_REPORTS_FILE_MODE, STAT19_STATS_GROUP

The vault's own folders (releases/: the internal copy of every published release, with the true
values of hidden cells) are made 0700 as well, and locked by the vault's mode in any case.

Modes are octal ("0750"); a group is a name or a gid, and is left as it is when not set. Nothing
outside the vault is ever world-readable by default. The linked snapshot is read-only even for
its owner: it is replaced by a rename, never written in place.
"""

from __future__ import annotations

import grp
import os
from dataclasses import dataclass
from pathlib import Path

from stat19.paths import Home


class ZoneConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ZoneMode:
    dir_mode: int
    file_mode: int | None  # None: leave files as written (the vault: the directory already locks them)
    gid: int | None


def _mode(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        mode = int(text, 8)
    except ValueError:
        raise ZoneConfigError(f"{variable}={text!r} is not an octal file mode such as 0750") from None
    if not 0 <= mode <= 0o777:
        raise ZoneConfigError(f"{variable}={text!r} is not a file mode between 0000 and 0777")
    return mode


def _group(variable: str) -> int | None:
    text = os.environ.get(variable)
    if not text:
        return None
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ZoneConfigError(f"{variable}={text!r}: no such group") from None


def zone_modes(home: Home) -> dict[Path, ZoneMode]:
    """Each zone directory with the modes (and group) it must have."""
    stats_group = _group("STAT19_STATS_GROUP")
    return {
        home.vault: ZoneMode(_mode("STAT19_VAULT_MODE", 0o700), None, None),
        home.linked: ZoneMode(_mode("STAT19_LINKED_MODE", 0o750), _mode("STAT19_LINKED_FILE_MODE", 0o440),
                              _group("STAT19_LINKED_GROUP")),
        home.published: ZoneMode(_mode("STAT19_PUBLISHED_MODE", 0o750), _mode("STAT19_PUBLISHED_FILE_MODE", 0o640),
                                 stats_group),
        home.reports: ZoneMode(_mode("STAT19_REPORTS_MODE", 0o750), _mode("STAT19_REPORTS_FILE_MODE", 0o640),
                               stats_group),
    }


def _set(path: Path, mode: int, gid: int | None) -> None:
    if gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, mode)


def apply_zone_modes(home: Home) -> None:
    """Give every zone directory, its subdirectories and its files their configured modes."""
    for root, zone in zone_modes(home).items():
        if not root.is_dir():
            continue
        _set(root, zone.dir_mode, zone.gid)
        if zone.file_mode is None:
            continue
        for path in root.rglob("*"):
            if path.is_symlink():
                continue
            _set(path, zone.dir_mode if path.is_dir() else zone.file_mode, zone.gid)
