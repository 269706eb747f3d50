"""Disclosure control across releases: consecutive days, and revisions of one day.

Each release passes its own audit, yet two together can disclose what neither does alone: a cell
published as 57 yesterday and 58 today says one person was added, a count of 1 the threshold rule
never publishes; a cell hidden yesterday and published today, with its margins unchanged, pins
yesterday's hidden value. So a release is audited together with its neighbours (the releases of
the same product it will be compared with: the previous date's, the revision it replaces, the
next date's when an older date is redone), and protected against them.

Threat model. The attacker knows every release's relations and published cells, that hidden
cells are >= 0 (and <= a published share denominator), and that counts do not fall: a cumulative
count never does and late data mostly adds, so an attacker would assume it. The auditor grants
it wherever it is true: for every cell in both releases whose value in the release being
published is not smaller than in the neighbour (a tie included), the LP gets one more
non-negative cell, the difference delta_i = new_i - old_i, and one more relation
new_i = old_i + delta_i. Where the count truly fell, nothing is granted (an attacker assuming
otherwise would derive something false), and the two cells are not coupled; two published cells
still give their difference exactly. The releases and the differences form one additive system
of non-negative cells, and the audit's LP machinery (``lp._Audit``) applies as is. (Against a
later neighbour, when an older date is redone, the same rule grants "the older is not smaller",
which holds only where nothing changed: the direction a monotone attacker would assume there is
not granted, a known gap.)

What must hold (per count measure, as in ``audit``):

* every hidden cell of every release keeps its interval of width ``min(width, d)``, now over the
  combined system;
* a difference must not be pinned to a value in 1..width-1: its interval is either at least the
  width wide, or lies wholly outside 1..width-1 (known to be 0, or known to be >= width). Two
  published cells give their difference exactly.
A cell's a-priori range counts what the published neighbour and the public denominators say
through the direction (a hidden count that was published at 95 yesterday and did not fall lies in
[95, d]): a cell whose interval spans that whole range, when it is narrower than the width, is as
protected as it can be by this release (the earlier one is already out), as ``audit`` accepts a
hidden share spanning [0, d < 5]. More generally, a failing cell whose interval is no wider when
every cell of the measure in the new release is hidden is no finding (``_System._inherent``): no
mask of the new release avoids it, and demanding it would withhold the product every day after,
the neighbour staying the last release published. A bound that the new release's own published
cells give is never a-priori: that is what a leak is.

Protection (``protect_series``): starting from the single-release mask, every published count
that changed by 1..width-1 since a neighbour published it is hidden (the "hold" rule). Partners
then come from two single-release suppressions run in turn until neither adds a cell: one on the
table of values, one on the table of increments (new - old, with the relations through a cell
whose count fell left out): a count published yesterday and hidden today can only rise from
yesterday's value, so its room must come from increments, and each partner found on one table
is a newly hidden cell of the other. Only then does the combined audit run (on a 1,500-person
vaccine_coverage day: one round and 28 s, where partners from the values alone took 14 rounds
and 630 s, each round's new cells failing in the next). What it still names gets, in the new
release, the cell it concerns with every total above it in every dimension
(``_upward_closure``: a count that did not fall can only rise, and so can its published
siblings, so its room comes from its totals rising with it), or where that chain is hidden
already the best published cell of its relations (``_Suppressor._nearby``); then the two
suppressions settle again and the combined audit reruns. Each round hides at least one more
cell, so the loop ends (at most 50 rounds; a release left failing is withheld by the
publication's ``check_series``, with its findings). ``design="stable"`` first keeps hidden every
cell a neighbour hides (suppression patterns stable from day to day); the benchmark
(benchmarks/bench_series.py) compares the two.
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

from stat19.disclosure.audit import _PROVEN as _SINGLE_PROVEN
from stat19.disclosure.audit import _digest, _hidden_of, _remember_proof
from stat19.disclosure.lp import _TOL, EXACT_SAMPLE, _audit_lp
from stat19.disclosure.relations import Relations, build_relations, verify
from stat19.disclosure.rules import (MIN_DENOMINATOR, WIDTH, CountMeasure, Dimension, DisclosureError, Finding,
                                     Stats, _ordered, _upper, count_values, hidden_column)
from stat19.disclosure.secondary import _Suppressor
from stat19.progress import Ticker

Design = Literal["hold", "stable"]
_MAX_ROUNDS = 50  # each round hides at least one cell; past this, stop and let the gate (check_series) decide
NEW = "new"  # the label of the release being protected, in findings

SERIES_RULE = (
    "Consecutive releases are protected together: this release was audited with the releases it can be "
    "compared with (the previous date's, the revision it replaces), granting an attacker both releases' "
    "relations and published cells and that no count fell where none did. No difference between the two "
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
        up = vv[a] >= vv[b]  # the release being published is not smaller (ties count as up)
        big, small = np.where(up, a, b), np.where(up, b, a)
        n_diff = pair.shape[0]
        diff = n_cells + np.arange(n_diff)
        self.n_cells, self.up = n_cells, up
        # delta <= larger's bound minus what is known of the smaller (its value when published)
        known_small = np.where(hh[small], 0.0, vv[small].astype(float))
        d_upper = uu[big] - known_small
        self.v = np.concatenate([vv, np.abs(vv[a] - vv[b])])
        # a difference is an unknown only where the direction is granted (the count did not
        # fall); where it fell the two cells are not coupled at all, but two published cells
        # still give their difference exactly
        self.both_published = ~hh[a] & ~hh[b]
        self.hidden = np.concatenate([hh, (hh[a] | hh[b]) & up])
        # differences known to be 0 are constants (the LP would prove it one cell at a time)
        zero = _zero_differences(releases, pair, self.offset, up, ~self.hidden[diff] & (self.v[diff] == 0))
        self.hidden[diff[zero]] = False
        self.upper = np.concatenate([uu, d_upper])
        blocks = sp.block_diag([r.rel.matrix for r in releases], format="csr")
        blocks.resize((blocks.shape[0], n_cells + n_diff))
        coupled = np.flatnonzero(up)
        rows = np.repeat(np.arange(coupled.size), 3)
        cols = np.column_stack([big[coupled], small[coupled], diff[coupled]]).ravel()
        vals = np.tile([1.0, -1.0, -1.0], coupled.size)
        coupling = sp.csr_array((vals, (rows, cols)), shape=(coupled.size, n_cells + n_diff))
        self.matrix = sp.vstack([blocks, coupling], format="csr")
        # a-priori range of each cell from its bounds and its published partner's value alone
        self.low = np.zeros(self.v.size)
        self.high = self.upper.copy()
        pub_b = ~hh[b]
        # Only what the new release cannot change counts as a-priori: where the direction is
        # granted, the new cell is not below its neighbour's published value, and the
        # neighbour's cell not above the new cell's bound (a public denominator). A bound that
        # the new release's own published cells give is a narrowing it causes, not a-priori.
        np.maximum.at(self.low, a[pub_b & up], vv[b][pub_b & up].astype(float))
        np.minimum.at(self.high, b[up], uu[a][up])
        self.low[diff] = 0.0
        # Two hidden cells whose difference is known to be 0 are one unknown: the neighbour's
        # column goes into the new cell's (its interval is the new cell's), and relations that
        # then repeat another one are dropped. Where nothing changed, the system is the new
        # release's own again instead of twice its size.
        # Not where the neighbour's bound is the tighter one: the merged unknown would take it, and
        # the audit would then ask the new cell for less width than its own bound calls for (the
        # zero difference is the new release's doing, so is what it pins); such a pair stays two
        # cells tied by their coupling row, whose difference is the constant 0.
        merge = zero & hh[a] & hh[b] & (uu[b] >= uu[a])
        into = np.arange(self.v.size)
        into[b[merge]] = a[merge]
        self.merged = np.zeros(self.v.size, dtype=bool)
        self.merged[b[merge]] = True
        self.hidden[b[merge]] = False  # its column is empty now: it adds nothing to the constants
        fold = sp.csr_array((np.ones(self.v.size), (np.arange(self.v.size), into)), shape=(self.v.size,) * 2)
        self.matrix, kept = _distinct_rows(self.matrix @ fold, self.hidden, self.v)
        # The system is then the new release's own when no other hidden unknown and no other
        # relation is left: the single-release proof holds.
        own_rows = releases[0].rel.matrix.shape[0]
        self.is_own = bool(not self.hidden[self.offset[1]:].any() and not (kept >= own_rows).any())
        self._base: _System | None = None  # the same system with the new release all hidden
        self.unexamined = np.zeros(0, np.int64)  # see failing()

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

    def _acceptable(self, g: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The series rule on exact intervals: wide enough for the cell's a-priori range, or a
        difference known to be 0 or known to be at least the width."""
        w = float(self.width)
        ok = hi - lo >= np.minimum(w, self.high[g] - self.low[g]) - _TOL
        return ok | (self.is_diff(g) & ((hi < 1 - _TOL) | (lo > w - 1 + _TOL)))

    def _inherent(self, g: np.ndarray, lo: np.ndarray, hi: np.ndarray, stats: Stats | None) -> np.ndarray:
        """Which failing cells (hidden or differences, exact intervals lo..hi) no mask of the new
        release can protect: with every cell of this measure in the new release hidden, the
        interval is no wider. What the neighbour already published and the public denominators
        pin is not the new release's doing, and demanding it would withhold the product every
        day after (the neighbour stays the last release published)."""
        if self._base is None:
            first = self.releases[0]
            everything = {**first.masks, self.measure.name: np.ones(first.df.height, dtype=bool)}
            self._base = _System([_Release(first.label, first.df, first.rel, everything), *self.releases[1:]],
                                 self.measure, self.width)
        base = self._base
        # in the baseline an old cell may be merged into its new partner: ask for the partner
        partner = np.arange(base.v.size)
        partner[base.pair[base.merged[base.pair[:, 1]], 1]] = base.pair[base.merged[base.pair[:, 1]], 0]
        ask = partner[g]
        b_lo, b_hi = base.v[ask].astype(float), base.v[ask].astype(float)  # constants: exact
        variable = base.hidden[ask]
        if variable.any():
            targets = np.zeros(base.v.size, dtype=bool)
            targets[ask[variable]] = True
            lp, bad = _audit_lp(base.matrix, base.v, base.hidden, base.upper, targets, self.width, stats)
            wide = np.ones(base.v.size, dtype=bool)  # not among the unprotected: wide enough there
            wide[bad] = False
            k = np.searchsorted(lp.cells, bad)
            exact_lo, exact_hi = np.full(base.v.size, np.nan), np.full(base.v.size, np.nan)
            exact_lo[bad], exact_hi[bad] = lp.lo[k], lp.hi[k]
            b_lo = np.where(variable, exact_lo[ask], b_lo)
            b_hi = np.where(variable, exact_hi[ask], b_hi)
            fixable = variable & wide[ask]
        else:
            fixable = np.zeros(g.size, dtype=bool)
        fixable |= ~np.isnan(b_lo) & self._acceptable(g, np.nan_to_num(b_lo), np.nan_to_num(b_hi))
        return ~fixable & (b_hi - b_lo <= hi - lo + _TOL)

    def failing(self, stats: Stats | None, tick: Ticker | None = None, new_proven: bool = False,
                memory: _Memory | None = None, sample: int | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cells, lo, hi, required) that break the series rule, global indices; published
        differences of 1..width-1 first, then the LP's unprotected cells. ``new_proven``: the
        new release alone is known to pass ``audit`` (the suppressor proved it), so a system
        that is the new release's own needs no LP. ``memory``: what earlier rounds of the same
        system proved, while only more cells of the new release were hidden since (intervals
        then only widen: every feasible table stays feasible with the new cells at their true
        values), so proven cells are not targets again and the intervals seen are a start.
        ``sample``: exact LPs for at most that many of the cells failing the reach tests (see
        ``_audit_lp``); the others are neither returned nor proven: ``self.unexamined`` lists
        them, so only a call that leaves none is the whole answer."""
        w = float(self.width)
        self.unexamined = np.zeros(0, np.int64)
        n = self.n_cells
        pub_diff = np.flatnonzero(self.both_published) + n
        small = pub_diff[(self.v[pub_diff] >= 1) & (self.v[pub_diff] <= w - 1)]
        cells, lo, hi = [small], [self.v[small].astype(float)], [self.v[small].astype(float)]
        if self.hidden.any() and not (new_proven and self.is_own):
            targets = self.hidden & ~memory.proven if memory is not None else self.hidden
            lp, bad = _audit_lp(self.matrix, self.v, self.hidden, self.upper, targets, self.width,
                                stats, tick=tick, seen=memory.seen if memory is not None else None,
                                sample=sample)
            k = np.searchsorted(lp.cells, bad)
            blo, bhi = lp.lo[k], lp.hi[k]
            wide = bhi - blo >= np.minimum(w, self.high[bad] - self.low[bad]) - _TOL  # its whole range
            # failing cells left out of the sample (their intervals so far are not exact)
            rest = lp.cells[targets[lp.cells] & ~lp.ok()]
            rest = rest[~np.isin(rest, bad)]
            kr = np.searchsorted(lp.cells, rest)
            self.unexamined = rest[lp.hi[kr] - lp.lo[kr] < np.minimum(w, self.high[rest] - self.low[rest]) - _TOL]
            if memory is not None:  # wide enough stays wide enough; the exceptions may not
                memory.seen = lp.seen(self.v.size)
                memory.proven |= targets
                memory.proven[bad[~wide]] = False
                memory.proven[self.unexamined] = False
            ok = self._acceptable(bad, blo, bhi)
            if not ok.all():
                ok[~ok] = self._inherent(bad[~ok], blo[~ok], bhi[~ok], stats)
            cells.append(bad[~ok])
            lo.append(blo[~ok])
            hi.append(bhi[~ok])
        g = np.concatenate(cells).astype(np.int64)
        required = np.minimum(w, self.high[g] - self.low[g])
        return g, np.concatenate(lo), np.concatenate(hi), required


def _increment_partners(system: _System, k: int, hidden: np.ndarray, upper: np.ndarray, width: int,
                        stats: Stats | None, name: str) -> np.ndarray:
    """Cells of the new release to hide so that its increments since neighbour k are protected
    as a table of their own (a mask over the new release's cells).

    Where a count published yesterday is hidden today, what the attacker can move is its
    increment: it can only rise from yesterday's value, and so can its siblings. The partners it
    needs are cells whose increments can give it room, not cells with large values, so the
    single-release suppressor is run on the table of increments (new - old, additive over the
    same relations) with every increment hidden that is unknown (hidden in either release, or no
    partner). Only where every increment is >= 0 (a cumulative count, or late data adding): a
    table that fell somewhere is left to the combined audit's repairs."""
    new_rel = system.releases[0].rel
    n = new_rel.keys.height
    mine = (system.pair[:, 1] >= system.offset[k]) & (system.pair[:, 1] < system.offset[k + 1])
    a, b = system.pair[mine, 0], system.pair[mine, 1]
    v_new = system.v[: system.offset[1]]
    increment = v_new.copy()  # a cell without partner: all of it is new
    increment[a] = v_new[a] - system.v[b]
    unknown = hidden.copy()
    unknown[np.setdiff1d(np.arange(n), a)] = True
    unknown[a[system.hidden[b]]] = True
    fell = increment < 0
    if fell.any():
        # Where a count fell (a person moved away or died), the increments are not a table of
        # non-negative cells: the relations through such a cell are left out here (the combined
        # audit's rounds look after them), the rest still get their partners from this table.
        keep = np.flatnonzero(abs(new_rel.matrix) @ fell.astype(float) == 0)
        new_rel = Relations(new_rel.matrix[keep], new_rel.parent[keep], new_rel.keys, new_rel.dimension[keep])
        increment = np.where(fell, 0, increment)
    if (new_rel.matrix @ increment).any():
        return np.zeros(n, dtype=bool)
    room = upper.astype(float).copy()  # an increment can rise to the new cell's bound
    room[a] = np.maximum(upper[a] - system.v[b], 0)
    protected = _Suppressor(new_rel, increment, room, width, stats).run(unknown, f"{name} increments")
    return protected & ~unknown


def _up(rel: Relations) -> sp.csr_array:
    """cell x cell: 1 where the column is a total directly above the row's cell."""
    child_rel, child = rel.children()
    return sp.csr_array((np.ones(child.size), (child, rel.parent[child_rel])), shape=(rel.keys.height,) * 2)


def _chain_hidden(rel: Relations, hidden: np.ndarray) -> np.ndarray:
    """Which cells are hidden with every total above them (their upward closure adds nothing)."""
    up = _up(rel)
    full = hidden.copy()
    while True:  # as many passes as the hierarchy is deep
        nxt = hidden & ((up @ (~full).astype(float)) == 0)
        if np.array_equal(nxt, full):
            return full
        full = nxt


def _upward_closure(rel: Relations, cells: np.ndarray) -> np.ndarray:
    """The cells and every total above them, in every dimension (breadth first)."""
    up = _up(rel)
    found = np.zeros(rel.keys.height, dtype=bool)
    frontier = np.unique(cells)
    while frontier.size:
        found[frontier] = True
        nxt = np.unique(up[frontier].indices)
        frontier = nxt[~found[nxt]]
    return np.flatnonzero(found)


@dataclass
class _Memory:
    """What the rounds of protect_series carry over for one measure (global cell indices)."""

    proven: np.ndarray
    seen: tuple[np.ndarray, np.ndarray] | None = None


def _distinct_rows(matrix: sp.csr_array, hidden: np.ndarray, v: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
    """matrix without the rows that say nothing new (no hidden cell, or the same hidden cells
    with the same coefficients and the same constant as an earlier row), and the rows kept."""
    a = sp.csr_array(matrix[:, np.flatnonzero(hidden)])
    b = -(matrix @ np.where(hidden, 0.0, v.astype(float)))
    a.sum_duplicates()
    a.eliminate_zeros()
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    # two random 64-bit projections of each row (and its length and constant) as its signature;
    # rows found equal this way are compared exactly before one is dropped
    rng = np.random.default_rng(0)
    sig = [np.diff(a.indptr).astype(np.uint64), (b.round(6) + 0.0).view(np.uint64)]
    for _ in range(2):
        w = rng.integers(0, 2**63, a.shape[1], dtype=np.uint64)
        h = np.zeros(a.shape[0], np.uint64)
        np.add.at(h, rows, w[a.indices] * a.data.astype(np.int64).astype(np.uint64))
        sig.append(h)
    _, first, inverse = np.unique(np.column_stack(sig), axis=0, return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]
    same = (a[rep] != a) if a.shape[0] else a
    keep = (rep == np.arange(a.shape[0])) | (np.diff(sp.csr_array(same).indptr) > 0) | (np.abs(b - b[rep]) > 1e-9)
    keep &= np.diff(a.indptr) > 0
    kept = np.flatnonzero(keep)
    return sp.csr_array(matrix[kept]), kept


def _zero_differences(releases: Sequence[_Release], pair: np.ndarray, offset: np.ndarray, up: np.ndarray,
                      known: np.ndarray) -> np.ndarray:
    """Which differences the attacker knows to be 0 (a mask over the pairs), by propagation.

    A relation of the new release whose cells all have partners forming the same relation in the
    neighbour gives new_P - old_P = sum over children (new_c - old_c). With the parent's
    difference known to be 0 and every unknown child's known not to fall, they must all be 0;
    with every child's known to be 0, so is the parent's. Tables that
    did not change where cells are hidden make this the common case, and each such difference
    would otherwise cost two exact LPs. ``known``: the differences known to be 0 to begin with
    (two published cells of the same value)."""
    zero = known.copy()
    new_rel = releases[0].rel
    if new_rel.parent.size == 0:
        return zero
    csr = new_rel.matrix.tocsr()
    n_dims = len(new_rel.dimensions)
    for k in range(1, len(releases)):
        mine = (pair[:, 1] >= offset[k]) & (pair[:, 1] < offset[k + 1])
        diff_of = np.full(releases[0].df.height, -1, np.int64)  # new cell -> its pair with release k
        diff_of[pair[mine, 0]] = np.flatnonzero(mine)
        old_of = np.full(releases[0].df.height, -1, np.int64)
        old_of[pair[mine, 0]] = pair[mine, 1] - offset[k]
        old_rel = releases[k].rel
        if old_rel.parent.size == 0:
            continue
        # the neighbour's relation with the same parent and dimension, and as many cells
        old_key = old_rel.parent * n_dims + old_rel.dimension
        order = np.argsort(old_key)
        parent_old = old_of[new_rel.parent]
        want = np.where(parent_old >= 0, parent_old * n_dims + new_rel.dimension, -1)
        at = np.clip(np.searchsorted(old_key[order], want), 0, max(order.size - 1, 0))
        same = (want >= 0) & (old_key[order][at] == want)
        old_row = order[at]
        entries = np.diff(csr.indptr)
        old_entries = np.diff(old_rel.matrix.tocsr().indptr)
        rows = np.repeat(np.arange(entries.size), entries)
        cells = csr.indices.astype(np.int64)
        child = csr.data < 0
        all_matched = np.bincount(rows, weights=diff_of[cells] < 0, minlength=entries.size) == 0
        valid = same & all_matched & (entries == old_entries[old_row])
        ent = valid[rows]
        r, d, c = rows[ent], diff_of[cells[ent]], child[ent]
        parent_d = diff_of[new_rel.parent]
        while True:
            unknown_up = np.bincount(r, weights=c & ~zero[d] & up[d], minlength=entries.size)
            unknown_dn = np.bincount(r, weights=c & ~zero[d] & ~up[d], minlength=entries.size)
            p_zero = valid & zero[np.maximum(parent_d, 0)]
            # a child that fell is not coupled: its difference is free, and frees the others
            down = p_zero & (unknown_dn == 0) & (unknown_up > 0)
            upward = valid & ~zero[np.maximum(parent_d, 0)] & (unknown_up + unknown_dn == 0)
            if not down.any() and not upward.any():
                break
            zero[d[c & down[r]]] = True
            zero[parent_d[upward]] = True
    return zero


def _releases(df: pl.DataFrame, neighbours: Mapping[str, pl.DataFrame], dimensions: Sequence[Dimension],
              measures: Sequence[CountMeasure], rel: Relations | None = None) -> list[_Release]:
    return [_release(NEW, df, dimensions, measures, rel)] + [
        _release(label, other, dimensions, measures) for label, other in neighbours.items()]


def _same_values(df: pl.DataFrame, neighbours: Sequence[_Release], dimensions: Sequence[Dimension],
                 measures: Sequence[CountMeasure]) -> list[_Release]:
    """The neighbours with exactly df's cells, in df's row order, and its counts."""
    counts = {m.name for m in measures} | {m.denominator for m in measures if m.denominator}
    columns = [d.name for d in dimensions] + sorted(counts)
    mine = df.select(columns)
    return [r for r in neighbours if r.df.height == df.height and r.df.select(columns).equals(mine)]


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
    new_proven: bool = False,
) -> list[Finding]:
    """What the release ``df`` discloses together with its neighbours (label -> release, each
    with its ``<measure>_hidden`` columns): differences pinned to 1..width-1 and hidden cells of
    any of them narrowed below the width. Empty: the series is safe. ``min_denominator`` is the
    single-release rule's (``audit`` checks that); it is here for a uniform signature.
    ``new_proven``: df alone is known to pass ``audit`` (``check_series`` knows it by digest),
    so a measure whose combined system is df's own costs no LP."""
    if not neighbours:
        return []
    releases = _releases(df, neighbours, dimensions, measures)
    findings: list[Finding] = []
    for m in _ordered(measures):
        if m.rule == "public":
            continue
        system = _System(releases, m, width)
        g, lo, hi, required = system.failing(stats, Ticker(f"series audit of {m.name}"), new_proven)
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
    try:
        new_proven = _digest(df, dimensions, measures, width, min_denominator) in _SINGLE_PROVEN
    except pl.exceptions.ColumnNotFoundError:
        new_proven = False
    findings = series_audit(df, neighbours, dimensions, measures, width=width, min_denominator=min_denominator,
                            max_findings=max_findings, new_proven=new_proven)
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
    # Neighbours holding exactly df's values (R computed again from unchanged data, or a day on
    # which nothing changed) lend it their masks to start from: the same table published with the
    # same mask says nothing the neighbour did not. Else a rerun with nothing new would protect
    # against its own revision 1, hide more and publish a revision 2.
    same = _same_values(df, releases[1:], dimensions, measures)
    # the suppressor proved df alone; each mask it returns below is proven the same way
    proven = _digest(df, dimensions, measures, width, min_denominator) in _SINGLE_PROVEN
    all_proven = True  # every measure's final mask proven by the suppressor's (the audit's) test
    settled = True  # every measure ended with nothing failing the combined audit
    for m in _ordered(measures):  # denominators first: their masks bound the shares
        if m.rule == "public":
            continue
        tick = Ticker(f"series protection of {m.name}")
        hidden = new.masks[m.name]
        v = count_values(df, m.name)
        changed = False  # this measure's mask came from the suppressor in this call
        # the twin's mask passed the audits when the twin was published, so it is the start; the
        # rounds below still check it against every neighbour (there may be one the twin never had)
        lent = False
        for twin in same:
            lent |= bool((twin.masks[m.name] & ~hidden).any())
            hidden |= twin.masks[m.name]

        def trusted() -> bool:
            """Is the mask as it is now proven by the suppressor (the single-release audit)? Not
            a lent one unless the suppressor ran on it since (changed)."""
            return changed or (proven and not lent)
        # Before any LP: hold every published count that changed by 1..width-1 since a neighbour
        # published it (the finding the combined audit would make first), and in the stable
        # design also what a neighbour hides; the suppressor then gives them partners.
        first = _System(releases, m, width)
        a, b = first.pair[:, 0], first.pair[:, 1]
        small = (first.v[first.n_cells:] >= 1) & (first.v[first.n_cells:] <= width - 1)
        held = a[~first.hidden[a] & ~first.hidden[b] & small]
        if design == "stable":
            held = np.union1d(held, a[first.hidden[b]])
        upper = _upper(df, m, new.masks)

        def settle() -> None:
            # Partners on the table of increments and on the table of values, in turn, until
            # neither adds a cell: a partner of one is a newly hidden cell of the other (a count
            # published yesterday and hidden today needs room in its increment), and each pass
            # costs a single-release suppression, far less than a round of the combined LPs.
            for _ in range(_MAX_ROUNDS):
                before = int(hidden.sum())
                for k in range(1, len(releases)):
                    hidden[:] |= _increment_partners(first, k, hidden, upper, width, stats, m.name)
                hidden[:] = _Suppressor(new.rel, v, upper, width, stats).run(hidden, m.name)
                if int(hidden.sum()) == before:
                    return

        if held.size and not hidden[held].all():
            hidden[held] = True
            settle()
            changed = True
        memory = None
        for round_ in range(1, _MAX_ROUNDS + 1):
            system = _System(releases, m, width)
            memory = memory or _Memory(np.zeros(system.v.size, dtype=bool))
            # Exact LPs (the costliest part) for a sample of the failing cells: the cells hidden
            # for them usually free the rest too. Settled only on a whole answer.
            g, _, _, required = system.failing(stats, tick, trusted(), memory, sample=EXACT_SAMPLE)
            if g.size == 0 and system.unexamined.size:
                g, _, _, required = system.failing(stats, tick, trusted(), memory)
            more = f" (and {system.unexamined.size:,} not yet examined)" if system.unexamined.size else ""
            tick(f"round {round_}: {int(hidden.sum()):,} hidden, {g.size:,} failing{more}", force=True)
            if g.size == 0:
                break
            own = np.unique(system.new_cell(g))
            own = own[own >= 0]
            # A count that did not fall can only move up from yesterday's published value, and so
            # can its published siblings: the room it needs comes from its totals. Hiding the cell
            # with every total above it (in every dimension) lets the whole chain rise together
            # by any amount, and hiding more never narrows an interval.
            # Where that chain is hidden already, a published cell nearby. Both kinds in the same
            # round: a round costs the combined LPs, so each one answers every failing cell.
            stuck = _chain_hidden(new.rel, hidden)[own]
            suppressor = _Suppressor(new.rel, v, upper, width, stats)
            add = _upward_closure(new.rel, own[~stuck])
            if stuck.any():
                add = np.union1d(add, suppressor._nearby(hidden, own[stuck], np.full(int(stuck.sum()), float(width))))
            add = add[~hidden[add]]
            if add.size == 0:  # should not happen (what no mask avoids is no finding): the gate withholds it
                tick(f"nothing left to hide for {system.where(int(g[0]))} (needs width {required[0]:g}); "
                     "publication's series audit will withhold the release", force=True)
                settled = False
                break
            hidden[add] = True
            settle()  # partners for the new hidden cells
            changed = True
        else:
            tick(f"not settled in {_MAX_ROUNDS} rounds; publication's series audit will withhold the release",
                 force=True)
            settled = False
        if stats is not None:
            stats.hidden[m.name] = int(hidden.sum())
        all_proven &= trusted()
        proven &= not (changed or lent)  # a share's bounds follow its denominator's mask
    out = df.with_columns(pl.Series(hidden_column(name), mask) for name, mask in new.masks.items())
    if all_proven:  # check_release need not repeat the single-release LPs either
        _remember_proof(_digest(out, dimensions, measures, width, min_denominator))
    if settled:  # only then may check_series skip its LPs; a release given up on must meet them
        _PROVEN[_series_digest(out, neighbours, dimensions, measures, width, min_denominator)] = None
        while len(_PROVEN) > _PROVEN_KEEP:
            _PROVEN.popitem(last=False)
    return out
