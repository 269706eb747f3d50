"""Putting a release folder in place in one atomic step, and repairing an interrupted one.

A release is built complete in a temporary folder beside its target (``.<R>.<random>.tmp``) and
then swapped into place with one atomic rename (``renameat2(RENAME_EXCHANGE)`` where the kernel
has it; otherwise two renames, and an interrupted swap is repaired by ``recover``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import uuid
from pathlib import Path


def fsync_tree(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux renameat2); False when the system cannot."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def swap_into_place(new: Path, target: Path) -> None:
    """Make `new` the folder at `target` in one step; the old content is deleted afterwards."""
    if not target.exists():
        os.rename(new, target)
    elif _exchange(new, target):
        shutil.rmtree(new)  # `new` now holds the previous release
    else:  # two renames; recover repairs a crash between them
        old = target.parent / f".{target.name}.{uuid.uuid4().hex}.old"
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(product_dir: Path, day: str | None = None) -> None:
    """Repair what an interrupted publication left: a release moved aside (``.<R>.*.old``) whose
    target is missing goes back; other leftovers of R (``day``; every date when None) are
    deleted. Publications of one product and date never run at once (one DuckDB writer)."""
    for p in sorted(product_dir.glob(".*.old")):
        target = product_dir / p.name[1:].split(".")[0]
        if not target.exists():
            os.rename(p, target)
        elif day is None or target.name == day:
            shutil.rmtree(p, ignore_errors=True)
    for p in product_dir.glob(f".{day or '*'}.*.tmp"):
        shutil.rmtree(p, ignore_errors=True)
