"""The audit: every hidden cell an attacker can narrow too far, every published primary cell.

``check_release`` is the gate before publication; a release exactly as ``suppress`` returned it
was proven by the suppressor, and its digest lets the gate skip repeating the LPs.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import polars as pl

from stat19.disclosure.lp import _TOL, _audit_lp
from stat19.disclosure.relations import build_relations, verify
from stat19.disclosure.rules import (MIN_DENOMINATOR, WIDTH, CountMeasure, Dimension, DisclosureError, Finding,
                                     RelationError, Stats, _ordered, _upper, count_values, hidden_column,
                                     primary_mask)
from stat19.progress import Ticker

# Digests of releases suppress() proved (the last few): check_release then skips the LPs, which
# would only repeat that proof. Any other value, mask, hierarchy or rule gives another digest and
# the full audit; `stat19 audit` always re-audits from the published files.
_PROVEN: OrderedDict[str, None] = OrderedDict()
_PROVEN_KEEP = 64


def _digest(df: pl.DataFrame, dimensions: Sequence[Dimension], measures: Sequence[CountMeasure],
            width: int, min_denominator: int) -> str:
    """sha256 of everything the audit of df depends on."""
    counts = {m.name for m in measures} | {m.denominator for m in measures if m.denominator}
    columns = ([d.name for d in dimensions] + sorted(counts)
               + [hidden_column(m.name) for m in measures if m.rule != "public"])
    h = hashlib.sha256(repr((
        [(d.name, sorted(d.parent.items()) if d.parent else None) for d in dimensions],
        [(m.name, m.rule, m.denominator) for m in measures], width, min_denominator,
    )).encode())
    sink = io.BytesIO()
    df.select(columns).write_ipc(sink, compression="uncompressed")
    h.update(sink.getvalue())
    return h.hexdigest()


def _remember_proof(digest: str) -> None:
    _PROVEN[digest] = None
    _PROVEN.move_to_end(digest)
    while len(_PROVEN) > _PROVEN_KEEP:
        _PROVEN.popitem(last=False)


def audit(
    df: pl.DataFrame,
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    stats: Stats | None = None,
    max_findings: int | None = None,
    lp: bool = True,
) -> list[Finding]:
    """Every hidden cell an attacker can pin to an interval narrower than ``min(width, d)``, and
    every published cell the primary rule hides. Empty list: safe to publish.
    max_findings: stop after that many (a failing release is then judged faster).
    lp=False: the relations and the primary rule only (the intervals are proven elsewhere)."""
    rel = build_relations(df, dimensions)
    masks = {m.name: _hidden_of(df, m) for m in measures if m.rule != "public"}
    findings: list[Finding] = []
    for m in _ordered(measures):
        v = count_values(df, m.name)
        verify(rel, m.name, v)
        left = None if max_findings is None else max_findings - len(findings)
        if m.rule == "public" or (left is not None and left <= 0):
            continue
        hidden = masks[m.name]
        upper = _upper(df, m, masks)
        required = np.minimum(float(width), upper)
        leaked = primary_mask(df, m, width=width, min_denominator=min_denominator) & ~hidden
        findings += [
            Finding(m.name, rel.cell(i), int(v[i]), float(v[i]), float(v[i]), float(required[i]),
                    "primary cell published")
            for i in np.flatnonzero(leaked)[:left]
        ]
        left = None if left is None else left - int(leaked.sum())
        if not lp or (left is not None and left <= 0):
            continue
        tick = Ticker(f"audit of {m.name}")
        tick(f"{int(hidden.sum()):,} hidden cells", force=True)
        system, bad = _audit_lp(rel.matrix, v, hidden, upper, hidden, width, stats,
                                limit=left, tick=tick)
        tick(f"done, {bad.size:,} unprotected", force=True)
        k = np.searchsorted(system.cells, bad)
        lo, hi = np.full(v.size, np.nan), np.full(v.size, np.nan)
        lo[bad], hi[bad] = system.lo[k], system.hi[k]
        for i in bad:
            reason = ("exactly disclosed" if hi[i] - lo[i] < _TOL
                      else "range does not span [0, d]" if upper[i] < width
                      else "interval narrower than the width")
            findings.append(Finding(m.name, rel.cell(i), int(v[i]), float(lo[i]), float(hi[i]),
                                    float(required[i]), reason))
    return findings


def check_release(
    df: pl.DataFrame,
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    max_findings: int | None = 20,
) -> None:
    """Raise ``DisclosureError`` when ``audit`` finds anything: nothing unprotected is published.
    The audit stops after ``max_findings`` findings (the error names the first ones). The LPs are
    skipped for exactly the release ``suppress`` returned (it proved every hidden cell); the
    relations and the primary rule are checked in any case."""
    try:
        proven = _digest(df, dimensions, measures, width, min_denominator) in _PROVEN
    except pl.exceptions.ColumnNotFoundError:
        proven = False  # audit names what is missing
    findings = audit(df, dimensions, measures, width=width, min_denominator=min_denominator,
                     max_findings=max_findings, lp=not proven)
    if findings:
        raise DisclosureError(findings)


def _hidden_of(df: pl.DataFrame, measure: CountMeasure) -> np.ndarray:
    name = hidden_column(measure.name)
    if name not in df.columns:
        raise RelationError(f"column {name} missing: run suppress() first")
    col = df[name]
    if col.dtype != pl.Boolean or col.null_count():
        raise RelationError(f"column {name} must be Boolean without nulls")
    return col.to_numpy()
