"""Progress lines for the terminal. `stat19 run` sets a printer; assets run in-process, so what
they say reaches the terminal as it happens (and Dagster's run log in any case)."""

from __future__ import annotations

from typing import Callable

_printer: Callable[[str], None] | None = None


def set_printer(printer: Callable[[str], None] | None) -> None:
    global _printer
    _printer = printer


def say(line: str) -> None:
    if _printer is not None:
        _printer(line)
