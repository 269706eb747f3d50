"""The disclosure rules: what a release declares (dimensions, count measures), what the audit
reports (findings), and the primary rule. The thresholds are defined here once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

Rule = Literal["public", "threshold", "share"]

WIDTH = 5  # the primary rule hides counts 1..WIDTH-1; a hidden count needs an interval this wide
MIN_DENOMINATOR = 20  # a share is hidden when 0 < d < MIN_DENOMINATOR


class RelationError(ValueError):
    """The release does not match its declared dimensions (missing/duplicate cells, bad sums)."""


class DisclosureError(Exception):
    """A release failed the audit; ``findings`` lists what the audit found (it may have stopped
    early, see ``check_release``)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        shown = "\n  ".join(str(f) for f in self.findings[:5])
        more = f"\n  ... and {len(self.findings) - 5} more" if len(self.findings) > 5 else ""
        n = len(self.findings)
        super().__init__(f"release not publishable, {n} finding(s):\n  {shown}{more}")


@dataclass(frozen=True)
class Dimension:
    name: str
    # child code -> parent code; None: no total, the dimension only partitions the release
    parent: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if self.parent is None:
            return
        # A cycle would make a code its own total: reject it before it yields nonsense relations.
        for code in self.parent:
            seen = {code}
            up = self.parent.get(code)
            while up is not None:
                if up in seen:
                    raise ValueError(f"dimension {self.name}: cycle in parent map at {code!r}")
                seen.add(up)
                up = self.parent.get(up)


@dataclass(frozen=True)
class CountMeasure:
    name: str
    rule: Rule = "threshold"
    denominator: str | None = None  # rule "share": the column holding d, a count in the same row

    def __post_init__(self) -> None:
        if self.rule not in ("public", "threshold", "share"):
            raise ValueError(f"measure {self.name}: unknown rule {self.rule!r}")
        if (self.rule == "share") != (self.denominator is not None):
            raise ValueError(f"measure {self.name}: a denominator goes with rule 'share' only")


@dataclass(frozen=True)
class Finding:
    measure: str
    cell: Mapping[str, str]  # dimension -> code
    value: int  # the true value
    low: float  # the LP interval an attacker can derive
    high: float
    required: float  # min(width, d): the interval width that would protect it
    reason: str

    def __str__(self) -> str:
        cell = ", ".join(f"{k}={v}" for k, v in self.cell.items())
        return (
            f"{self.measure} [{cell}] = {self.value}: {self.reason}; "
            f"derivable interval [{self.low:g}, {self.high:g}], needs width {self.required:g}"
        )


@dataclass
class Stats:
    """Counters filled in by ``suppress`` / ``audit`` when passed as ``stats=``."""

    cells: int = 0
    primary: dict[str, int] = field(default_factory=dict)
    hidden: dict[str, int] = field(default_factory=dict)
    lps: int = 0
    repair_rounds: int = 0


def hidden_column(measure: str) -> str:
    return f"{measure}_hidden"


def count_values(df: pl.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise RelationError(f"measure column {name} missing from the release")
    col = df[name]
    if col.null_count():
        raise RelationError(f"measure {name} has nulls; counts must be complete before suppression")
    v = col.to_numpy()
    iv = v.astype(np.int64)
    if not np.array_equal(iv, v) or (iv < 0).any():
        raise RelationError(f"measure {name} must hold non-negative integers")
    return iv


# --------------------------------------------------------------------------------------------
# Primary rule


def primary_mask(
    df: pl.DataFrame, measure: CountMeasure, *, width: int = WIDTH, min_denominator: int = MIN_DENOMINATOR
) -> np.ndarray:
    """Cells the primary rule hides (numpy bool array, one per row); never any for public."""
    n = count_values(df, measure.name)
    if measure.rule == "public":
        return np.zeros(n.size, dtype=bool)
    hidden = (n >= 1) & (n < width)
    if measure.rule == "share":
        assert measure.denominator is not None
        d = count_values(df, measure.denominator)
        if (n > d).any():
            raise RelationError(
                f"measure {measure.name} exceeds its denominator {measure.denominator}")
        rest = d - n  # the complement discloses the few others
        hidden |= ((rest >= 1) & (rest < width)) | ((d > 0) & (d < min_denominator))
    return hidden


def _upper(df: pl.DataFrame, measure: CountMeasure, hidden: Mapping[str, np.ndarray]) -> np.ndarray:
    """A-priori upper bound of each cell: its share denominator where that is published."""
    if measure.rule != "share":
        return np.full(df.height, np.inf)
    assert measure.denominator is not None
    d = count_values(df, measure.denominator).astype(float)
    # A denominator not declared as a suppressible measure is taken as published (the stricter
    # audit: tighter bounds can only narrow intervals).
    d_hidden = hidden.get(measure.denominator)
    return d if d_hidden is None else np.where(d_hidden, np.inf, d)


def _ordered(measures: Sequence[CountMeasure]) -> list[CountMeasure]:
    """Denominators before the shares that use them (their hidden mask sets the bounds)."""
    names = {m.name for m in measures}
    if len(names) != len(measures):
        raise ValueError("measure declared twice")
    done: list[CountMeasure] = []
    left = list(measures)
    while left:
        known = {x.name for x in done}
        ready = [m for m in left if m.denominator not in names or m.denominator in known]
        if not ready:
            raise ValueError("share denominators form a cycle")
        done += ready
        left = [m for m in left if m not in ready]
    return done
