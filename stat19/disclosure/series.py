"""Disclosure control across releases: consecutive days, and revisions of one day.

Each release passes its own audit, yet two together can disclose what neither does alone: a cell
published as 57 yesterday and 58 today says one person was added, a count of 1 the threshold rule
never publishes; a cell hidden yesterday and published today, with its margins unchanged, pins
yesterday's hidden value. So a release is audited together with its neighbours (the releases of
the same product it will be compared with: the previous date's, the revision it replaces, the
next date's when an older date is redone), and protected against them.

Threat model. The attacker knows every release's relations and published cells, that hidden
cells are >= 0 (and <= a published share denominator), and, for every cell in both releases, the
direction of its change: which of the two is larger (a tie counts as "the newer is not smaller").
A cumulative count never falls and late data mostly adds, so this is what an attacker would
assume; granting the true direction everywhere is the conservative form of it. In the LP each
matched cell i gets one more non-negative cell, its difference delta_i = |new_i - old_i|, and one
more relation larger_i = smaller_i + delta_i. The releases and the differences then form one
additive system of non-negative cells, and the audit's LP machinery (``lp._Audit``) applies as is.

What must hold (per count measure, as in ``audit``):

* every hidden cell of every release keeps its interval of width ``min(width, d)``, now over the
  combined system;
* a difference must not be pinned to a value in 1..width-1: its interval is either at least the
  width wide, or lies wholly outside 1..width-1 (known to be 0, or known to be >= width). Two
  published cells give their difference exactly.
A cell's a-priori range counts what the published neighbours say through the direction (a hidden
count that was published at 95 yesterday and did not fall lies in [95, d]): a cell whose interval
spans that whole range, when it is narrower than the width, is as protected as it can be by this
release (the earlier one is already out), as ``audit`` accepts a hidden share spanning [0, d < 5].

Protection (``protect_series``): starting from the single-release mask, the combined audit names
the cells that fail; for each, the new release hides the cell paired with it when that is
published (a published difference of 1..4 is hidden: the "hold" rule), else the best published
cell of its relations (``_Suppressor._nearby``); the single-release suppression then gives the new
cells their partners, and the combined audit runs again. Each round hides at least one more cell,
so the loop ends. ``design="stable"`` first keeps hidden every cell a neighbour hides (suppression
patterns stable from day to day); the benchmark (benchmarks/bench_series.py) compares the two.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp

from stat19.disclosure.audit import _digest, _hidden_of
from stat19.disclosure.lp import _TOL, _audit_lp
from stat19.disclosure.relations import Relations, build_relations, verify
from stat19.disclosure.rules import (MIN_DENOMINATOR, WIDTH, CountMeasure, Dimension, DisclosureError, Finding,
                                     Stats, _ordered, _upper, count_values, hidden_column)
from stat19.disclosure.secondary import _Suppressor
from stat19.progress import Ticker

Design = Literal["hold", "stable"]
NEW = "new"  # the label of the release being protected, in findings

SERIES_RULE = (
    "Consecutive releases are protected together: this release was audited with the releases it can be "
    "compared with (the previous date's, the revision it replaces), granting an attacker both releases' "
    "relations and published cells and the direction of every cell's change. No difference between the two "
    "is pinned to 1-4 (a published count that changed by 1-4 since the previous release is hidden), and every "
    "hidden cell of either release keeps its interval of width 5."
)


@dataclass(frozen=True)
class _Release:
    label: str
    df: pl.DataFrame
    rel: Relations
    masks: dict[str, np.ndarray]  # measure -> hidden mask


def _release(label: str, df: pl.DataFrame, dimensions: Sequence[Dimension],
             measures: Sequence[CountMeasure], rel: Relations | None = None) -> _Release:
    rel = rel or build_relations(df, dimensions)
    masks = {m.name: _hidden_of(df, m).copy() for m in measures if m.rule != "public"}
    return _Release(label, df, rel, masks)


class _System:
    """One measure's combined system: the cells of every release, then one difference cell per
    matched pair (new cell, neighbour cell)."""

    def __init__(self, releases: Sequence[_Release], measure: CountMeasure, width: int) -> None:
        self.releases, self.measure, self.width = releases, measure, width
        sizes = [r.df.height for r in releases]
        self.offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.owner = np.repeat(np.arange(len(releases)), sizes)  # release index of each cell
        v = [count_values(r.df, measure.name) for r in releases]
        for r, values in zip(releases, v, strict=True):
            verify(r.rel, measure.name, values)
        hidden = [r.masks[measure.name] for r in releases]
        upper = [_upper(r.df, measure, r.masks) for r in releases]
        n_cells = int(self.offset[-1])
        new_keys = releases[0].rel.keys.with_row_index("_i")
        pairs = []
        for k in range(1, len(releases)):
            m = new_keys.join(releases[k].rel.keys.with_row_index("_j"), on=releases[0].rel.dimensions,
                              how="inner")
            pairs.append(np.column_stack([m["_i"].to_numpy().astype(np.int64),
                                          self.offset[k] + m["_j"].to_numpy().astype(np.int64)]))
        pair = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
        self.pair = pair  # (new cell, neighbour cell) of each difference, global indices
        vv, hh, uu = np.concatenate(v), np.concatenate(hidden), np.concatenate(upper)
        a, b = pair[:, 0], pair[:, 1]
        up = vv[a] >= vv[b]  # the newer is not smaller (ties count as up)
        big, small = np.where(up, a, b), np.where(up, b, a)
        n_diff = pair.shape[0]
        diff = n_cells + np.arange(n_diff)
        self.n_cells, self.up = n_cells, up
        # delta <= larger's bound minus what is known of the smaller (its value when published)
        known_small = np.where(hh[small], 0.0, vv[small].astype(float))
        d_upper = uu[big] - known_small
        self.v = np.concatenate([vv, np.abs(vv[a] - vv[b])])
        self.hidden = np.concatenate([hh, hh[a] | hh[b]])
        self.upper = np.concatenate([uu, d_upper])
        blocks = sp.block_diag([r.rel.matrix for r in releases], format="csr")
        blocks.resize((blocks.shape[0], n_cells + n_diff))
        rows = np.repeat(np.arange(n_diff), 3)
        cols = np.column_stack([big, small, diff]).ravel()
        vals = np.tile([1.0, -1.0, -1.0], n_diff)
        coupling = sp.csr_array((vals, (rows, cols)), shape=(n_diff, n_cells + n_diff))
        self.matrix = sp.vstack([blocks, coupling], format="csr")
        # a-priori range of each cell from its bounds and its published partner's value alone
        self.low = np.zeros(self.v.size)
        self.high = self.upper.copy()
        pub_b, pub_a = ~hh[b], ~hh[a]
        # new cell a, neighbour published: not below it when up, not above it when down
        np.maximum.at(self.low, a[pub_b & up], vv[b][pub_b & up].astype(float))
        np.minimum.at(self.high, a[pub_b & ~up], vv[b][pub_b & ~up].astype(float))
        np.minimum.at(self.high, b[pub_a & up], vv[a][pub_a & up].astype(float))
        np.maximum.at(self.low, b[pub_a & ~up], vv[a][pub_a & ~up].astype(float))
        self.low[diff] = 0.0

    def is_diff(self, g: np.ndarray) -> np.ndarray:
        return g >= self.n_cells

    def where(self, g: int) -> dict[str, str]:
        """A cell's codes and which release (or which difference) it belongs to."""
        if g >= self.n_cells:
            a, b = self.pair[g - self.n_cells]
            cell = self.releases[0].rel.cell(int(a))
            k = int(self.owner[b])
            return {**cell, "difference": f"{self.releases[k].label} -> {self.releases[0].label}"}
        k = int(self.owner[g])
        return {**self.releases[k].rel.cell(int(g - self.offset[k])), "release": self.releases[k].label}

    def new_cell(self, g: np.ndarray) -> np.ndarray:
        """The new release's cell each failing cell concerns (-1: a neighbour cell with no match)."""
        out = np.full(g.size, -1, np.int64)
        d = self.is_diff(g)
        out[d] = self.pair[g[d] - self.n_cells, 0]
        own = ~d & (self.owner[np.minimum(g, self.n_cells - 1)] == 0)
        out[own] = g[own]
        nb = ~d & ~own
        if nb.any():
            lookup = np.full(self.n_cells, -1, np.int64)
            lookup[self.pair[:, 1]] = self.pair[:, 0]
            out[nb] = lookup[g[nb]]
        return out

    def failing(self, stats: Stats | None, tick: Ticker | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cells, lo, hi, required) that break the series rule, global indices; published
        differences of 1..width-1 first, then the LP's unprotected cells."""
        w = float(self.width)
        n = self.n_cells
        pub_diff = np.flatnonzero(~self.hidden[n:]) + n
        small = pub_diff[(self.v[pub_diff] >= 1) & (self.v[pub_diff] <= w - 1)]
        cells, lo, hi = [small], [self.v[small].astype(float)], [self.v[small].astype(float)]
        if self.hidden.any():
            lp, bad = _audit_lp(self.matrix, self.v, self.hidden, self.upper, self.hidden, self.width,
                                stats, tick=tick)
            k = np.searchsorted(lp.cells, bad)
            blo, bhi = lp.lo[k], lp.hi[k]
            ok = bhi - blo >= np.minimum(w, self.high[bad] - self.low[bad]) - _TOL
            diff = self.is_diff(bad)
            ok |= diff & ((bhi < 1 - _TOL) | (blo > w - 1 + _TOL))  # known 0, or known >= width
            cells.append(bad[~ok])
            lo.append(blo[~ok])
            hi.append(bhi[~ok])
        g = np.concatenate(cells).astype(np.int64)
        required = np.minimum(w, self.upper[g])
        return g, np.concatenate(lo), np.concatenate(hi), required


def _releases(df: pl.DataFrame, neighbours: Mapping[str, pl.DataFrame], dimensions: Sequence[Dimension],
              measures: Sequence[CountMeasure], rel: Relations | None = None) -> list[_Release]:
    return [_release(NEW, df, dimensions, measures, rel)] + [
        _release(label, other, dimensions, measures) for label, other in neighbours.items()]


def series_audit(
    df: pl.DataFrame,
    neighbours: Mapping[str, pl.DataFrame],
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    stats: Stats | None = None,
    max_findings: int | None = None,
) -> list[Finding]:
    """What the release ``df`` discloses together with its neighbours (label -> release, each
    with its ``<measure>_hidden`` columns): differences pinned to 1..width-1 and hidden cells of
    any of them narrowed below the width. Empty: the series is safe. ``min_denominator`` is the
    single-release rule's (``audit`` checks that); it is here for a uniform signature."""
    if not neighbours:
        return []
    releases = _releases(df, neighbours, dimensions, measures)
    findings: list[Finding] = []
    for m in _ordered(measures):
        if m.rule == "public":
            continue
        system = _System(releases, m, width)
        g, lo, hi, required = system.failing(stats, Ticker(f"series audit of {m.name}"))
        for cell, a, b, r in zip(g.tolist(), lo, hi, required, strict=True):
            reason = ("published difference" if cell >= system.n_cells and not system.hidden[cell]
                      else "difference pinned" if cell >= system.n_cells
                      else "interval narrowed by the other release")
            findings.append(Finding(m.name, system.where(cell), int(system.v[cell]), float(a), float(b),
                                    float(r), reason))
            if max_findings is not None and len(findings) >= max_findings:
                return findings
    return findings


# Digests of (release, neighbours) pairs protect_series proved: check_series skips the LPs.
_PROVEN: OrderedDict[str, None] = OrderedDict()
_PROVEN_KEEP = 64


def _series_digest(df: pl.DataFrame, neighbours: Mapping[str, pl.DataFrame], dimensions: Sequence[Dimension],
                   measures: Sequence[CountMeasure], width: int, min_denominator: int) -> str:
    h = hashlib.sha256()
    for label, frame in [(NEW, df), *sorted(neighbours.items())]:
        h.update(label.encode() + b"\0" + _digest(frame, dimensions, measures, width, min_denominator).encode())
    return h.hexdigest()


def check_series(
    df: pl.DataFrame,
    neighbours: Mapping[str, pl.DataFrame],
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    max_findings: int | None = 20,
) -> None:
    """Raise ``DisclosureError`` when ``series_audit`` finds anything. The LPs are skipped for
    exactly the release and neighbours ``protect_series`` proved."""
    if not neighbours:
        return
    try:
        if _series_digest(df, neighbours, dimensions, measures, width, min_denominator) in _PROVEN:
            return
    except pl.exceptions.ColumnNotFoundError:
        pass  # series_audit names what is missing
    findings = series_audit(df, neighbours, dimensions, measures, width=width, min_denominator=min_denominator,
                            max_findings=max_findings)
    if findings:
        raise DisclosureError(findings)


def protect_series(
    df: pl.DataFrame,
    neighbours: Mapping[str, pl.DataFrame],
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    design: Design = "hold",
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    stats: Stats | None = None,
    relations: Relations | None = None,
) -> pl.DataFrame:
    """``df`` (a release as ``suppress`` returned it) with more cells hidden so that
    ``series_audit`` against the neighbours finds nothing; values never change, a hidden cell
    stays hidden. The neighbours are already published: only ``df`` can change."""
    if design not in ("hold", "stable"):
        raise ValueError(f"unknown series design {design!r}")
    if not neighbours:
        return df
    releases = _releases(df, neighbours, dimensions, measures, relations)
    new = releases[0]
    for m in _ordered(measures):  # denominators first: their masks bound the shares
        if m.rule == "public":
            continue
        tick = Ticker(f"series protection of {m.name}")
        hidden = new.masks[m.name]
        v = count_values(df, m.name)
        if design == "stable":  # keep hidden what a neighbour hides
            keep = _System(releases, m, width)
            held = keep.pair[keep.hidden[keep.pair[:, 1]], 0]
            if held.size and not hidden[held].all():
                hidden[held] = True
                hidden[:] = _Suppressor(new.rel, v, _upper(df, m, new.masks), width, stats).run(hidden, m.name)
        for round_ in range(1, 10_000):
            system = _System(releases, m, width)
            g, _, _, required = system.failing(stats, tick)
            tick(f"round {round_}: {int(hidden.sum()):,} hidden, {g.size:,} failing", force=True)
            if g.size == 0:
                break
            own = system.new_cell(g)
            add = own[(own >= 0) & ~hidden[np.maximum(own, 0)]]  # hide the paired cell itself
            inner = own[(own >= 0) & hidden[np.maximum(own, 0)]]
            suppressor = _Suppressor(new.rel, v, _upper(df, m, new.masks), width, stats)
            if inner.size:  # already hidden: free a published cell of its relations
                add = np.union1d(add, suppressor._nearby(hidden, np.unique(inner),
                                                         np.full(np.unique(inner).size, float(width))))
            add = np.unique(add)
            add = add[~hidden[add]]
            if add.size == 0:
                raise RuntimeError(f"measure {m.name}: the series cannot be protected at "
                                   f"{system.where(int(g[0]))} (needs width {required[0]:g})")
            hidden[add] = True
            hidden[:] = suppressor.run(hidden, m.name)  # partners for the new hidden cells
        if stats is not None:
            stats.hidden[m.name] = int(hidden.sum())
    out = df.with_columns(pl.Series(hidden_column(name), mask) for name, mask in new.masks.items())
    digest = _series_digest(out, neighbours, dimensions, measures, width, min_denominator)
    _PROVEN[digest] = None
    while len(_PROVEN) > _PROVEN_KEEP:
        _PROVEN.popitem(last=False)
    return out
