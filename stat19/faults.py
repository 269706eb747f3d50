"""Fault injection for the recovery tests: `STAT19_KILL_AT=<phase>` makes the process kill itself
with SIGKILL when that phase starts, exactly as `kill -9` would at that moment.

Phases: `load:<source>` (a delivery loaded, before its COMMIT), `dq` (data-quality checks),
`link` (the linked snapshot built, before it is renamed into place), `product:<name>` (a
product computed), `publish:<name>` (a release written, before it is swapped into place).
Unset in normal use, so the check costs one dictionary look-up.
"""

from __future__ import annotations

import os
import signal


def checkpoint(phase: str) -> None:
    if os.environ.get("STAT19_KILL_AT") == phase:
        os.kill(os.getpid(), signal.SIGKILL)
