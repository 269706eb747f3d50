"""Progress lines for the terminal. `stat19 run` sets a printer; assets run in-process, so what
they say reaches the terminal as it happens (and Dagster's run log in any case)."""

from __future__ import annotations

import time
from typing import Callable

_printer: Callable[[str], None] | None = None


def set_printer(printer: Callable[[str], None] | None) -> None:
    global _printer
    _printer = printer


def say(line: str) -> None:
    if _printer is not None:
        _printer(line)


class Ticker:
    """Progress lines with the elapsed time, so a long suppression or audit is never silent:
    every line when forced, otherwise at most one per ``every`` seconds."""

    def __init__(self, label: str, every: float = 5.0) -> None:
        self.label, self.every = label, every
        self.start = self.last = time.monotonic()

    def __call__(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every:
            self.last = now
            say(f"{self.label}: {text} ({now - self.start:.1f} s)")

