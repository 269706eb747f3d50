"""Secondary suppression: hide the fewest, smallest cells so that the audit passes.

Local rules to a fixpoint, then the LP audit (the same exact test) drives the repairs it proves
necessary (see the package docstring for why this design).
"""

from __future__ import annotations

import hashlib
import itertools
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import polars as pl

from stat19.disclosure.audit import _digest, _remember_proof
from stat19.disclosure.lp import _TOL, EXACT_SAMPLE, _Audit, _audit_lp, _expand
from stat19.disclosure.relations import Relations, build_relations, verify
from stat19.disclosure.rules import (MIN_DENOMINATOR, WIDTH, CountMeasure, Dimension, Stats, _ordered, _upper,
                                     count_values, hidden_column, primary_mask)
from stat19.progress import Ticker

class _Suppressor:
    def __init__(self, rel: Relations, v: np.ndarray, upper: np.ndarray, width: int,
                 stats: Stats | None) -> None:
        coo = rel.matrix.tocoo()
        self.er, self.ec = coo.row.astype(np.int64), coo.col.astype(np.int64)
        self.is_parent = coo.data > 0
        self.rel, self.v, self.vf, self.upper = rel, v, v.astype(float), upper
        self.width, self.stats = width, stats
        self.n_rel = rel.parent.size
        self.required = np.minimum(float(width), upper)
        self.room = upper - self.vf  # headroom d - v (inf without a bound)
        # cost: value, ties broken towards cells in fewer relations (lower in the hierarchies)
        n_rels = np.bincount(self.ec, minlength=v.size)
        self.cost = self.vf + 1e-3 * n_rels
        self.csr = rel.matrix.tocsr()
        self.csc = rel.matrix.tocsc()

    def _tiers(self, cells: np.ndarray, is_parent: np.ndarray,
               shortfall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tier, key) of candidate cells; lower is better. See the module docstring."""
        v, room = self.vf[cells], self.room[cells]
        covers = (v >= shortfall) & (room >= np.minimum(shortfall, self.upper[cells]))
        tier = np.where(is_parent, 2, np.where(v == 0, 3, np.where(covers, 0, 1)))
        key = np.where(tier == 1, -np.minimum(v, room), self.cost[cells])
        return tier, key

    def local_fixpoint(self, hidden: np.ndarray) -> None:
        er, ec, v = self.er, self.ec, self.vf
        n_rel = self.n_rel
        if n_rel == 0:
            return
        usable = self.upper > 0  # a cell pinned to 0 a priori gives no freedom
        while True:
            he = hidden[ec]
            count = np.bincount(er, weights=he, minlength=n_rel)
            parent_pub = ~hidden[self.rel.parent]
            hc = he & ~self.is_parent
            # local range of each hidden child of a relation with a published parent
            mass = np.bincount(er, weights=np.where(hc, v[ec], 0.0), minlength=n_rel)
            room = self.room[ec]
            inf_room = hc & np.isinf(room)
            room_fin = np.bincount(er, weights=np.where(hc & ~inf_room, room, 0.0), minlength=n_rel)
            room_inf = np.bincount(er, weights=inf_room, minlength=n_rel)
            r, j = er[hc], ec[hc]
            up = np.minimum(self.room[j], mass[r] - v[j])  # others give up their values
            own_inf = np.isinf(self.room[j])
            others_room = np.where(room_inf[r] - own_inf > 0, np.inf,
                                   room_fin[r] - np.where(own_inf, 0.0, self.room[j]))
            down = np.minimum(v[j], others_room)  # others fill their headroom
            short = np.maximum(self.required[j] - (up + down), 0.0)
            short = np.where(parent_pub[r] & (short > _TOL), short, 0.0)
            shortfall = np.zeros(n_rel)
            np.maximum.at(shortfall, r, short)
            violated = (count == 1) | (shortfall > 0)
            if not violated.any():
                return
            cand = violated[er] & ~he & usable[ec]
            cr, cc, cp = er[cand], ec[cand], self.is_parent[cand]
            if cr.size == 0:
                return  # nothing local left to hide; the LP repairs decide
            fixes = np.bincount(cc, minlength=v.size)[cc]  # violated relations this cell serves
            tier, key = self._tiers(cc, cp, shortfall[cr])
            key = np.where(tier == 1, key, key / fixes)
            order = np.lexsort((cc, key, tier, cr))
            _, first = np.unique(cr[order], return_index=True)
            chosen = np.unique(cc[order][first])
            hidden[chosen] = True

    def repair(self, hidden: np.ndarray, lp: _Audit, bad: np.ndarray) -> np.ndarray:
        """Published cells to hide so that every unprotected cell j can widen, priced by the duals
        of j's exact LPs: freeing published cell c moves j's bound at the rate
        g_c = duals . column_c (the derivative of the optimum with respect to c's value), so only
        cells with g_c != 0 and room to move that way (down to 0, up to d) help j. A greedy
        cover then picks, in order: nonzero before zero, no new partner needed (all relations of
        the cell already hold a hidden cell) first, helping the most unprotected cells, enough
        gain for the shortfall, the smallest value."""
        active = np.bincount(self.er, weights=hidden[self.ec], minlength=self.n_rel) > 0
        needs_partner = np.bincount(self.ec, weights=~active[self.er], minlength=self.v.size) > 0
        tier = 2 * (self.v == 0) + needs_partner
        owners, cands, enough = [], [], []
        chosen: set[int] = set()
        degenerate: list[tuple[int, float]] = []
        for i, j in enumerate(bad):
            k = int(np.searchsorted(lp.cells, j))
            shortfall = lp.required[k] - (lp.hi[k] - lp.lo[k])
            found = False
            for ids, lam in lp.duals.get(k, []):
                g = lam @ self.csr[ids]
                move = np.where(g > _TOL, self.room, np.where(g < -_TOL, self.vf, 0.0))
                c = np.flatnonzero(~hidden & (move >= 1) & (self.upper > 0))
                owners.append(np.full(c.size, i))
                cands.append(c)
                enough.append(np.abs(g[c]) * move[c] >= shortfall - _TOL)
                found |= c.size > 0
            if not found:  # degenerate duals: fall back on the neighbourhood
                degenerate.append((int(j), float(shortfall)))
        if degenerate:
            cells, shortfalls = (np.array(x) for x in zip(*degenerate, strict=True))
            chosen.update(self._nearby(hidden, cells, shortfalls).tolist())
        if owners:
            owner, cand, ok = np.concatenate(owners), np.concatenate(cands), np.concatenate(enough)
            left = np.ones(bad.size, dtype=bool)
            while (live := left[owner]).any():
                helped = np.bincount(cand[live], minlength=self.v.size)
                enough_for = np.bincount(cand[live], weights=ok[live], minlength=self.v.size)
                c = np.unique(cand[live])
                best = int(c[np.lexsort((c, self.cost[c], -enough_for[c], -helped[c], tier[c]))[0]])
                chosen.add(best)
                left[owner[cand == best]] = False
        return np.fromiter(chosen, dtype=np.int64)

    def _nearby(self, hidden: np.ndarray, targets: np.ndarray, shortfall: np.ndarray) -> np.ndarray:
        """For each target cell, the best published cell of its relations (of the relations of
        the hidden cells reached, when none is usable), all targets at once, breadth first; the
        cells found (none for a target whose reach holds no usable published cell)."""
        n = self.v.size
        owner, cell = np.arange(targets.size), targets.astype(np.int64)
        seen_rel = seen_cell = np.zeros(0, dtype=np.int64)  # owner * size + index, searched
        chosen: list[np.ndarray] = []
        while owner.size:
            seen_cell = np.union1d(seen_cell, owner * n + cell)
            o, rels, _ = _expand(self.csc, owner, cell)  # the relations of the frontier
            key = np.unique(o * self.n_rel + rels)
            key = key[~np.isin(key, seen_rel, assume_unique=True)]
            seen_rel = np.union1d(seen_rel, key)
            o, c, sign = _expand(self.csr, key // self.n_rel, key % self.n_rel)  # their cells
            ok = ~hidden[c] & (self.upper[c] > 0)
            tier, rank = self._tiers(c[ok], sign[ok] > 0, shortfall[o[ok]])
            order = np.lexsort((c[ok], rank, tier, o[ok]))
            _, first = np.unique(o[ok][order], return_index=True)
            chosen.append(c[ok][order][first])
            # search on from the hidden cells reached, by the owners still without a candidate
            nxt = np.unique((o * n + c)[~np.isin(o, o[ok]) & hidden[c]])
            nxt = nxt[~np.isin(nxt, seen_cell, assume_unique=True)]
            owner, cell = nxt // n, nxt % n
        return np.unique(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)

    def run(self, primary: np.ndarray, measure: str) -> np.ndarray:
        tick = Ticker(f"suppression of {measure}")
        tick(f"{self.v.size:,} cells, {int(primary.sum()):,} primary", force=True)
        hidden = primary.copy()
        proven = np.zeros_like(hidden)
        seen = None
        for round_ in itertools.count(1):
            self.local_fixpoint(hidden)
            lp, bad = _audit_lp(self.rel.matrix, self.v, hidden, self.upper, hidden & ~proven,
                                self.width, self.stats, duals=True, seen=seen, sample=EXACT_SAMPLE,
                                tick=tick)
            seen = lp.seen(self.v.size)
            # intervals only widen when more cells are hidden: a protected cell stays protected
            proven |= hidden
            proven[lp.cells[~lp.ok()]] = False  # bad, and the failing cells left out of the sample
            tick(f"round {round_}: {int(hidden.sum()):,} hidden, {int((hidden & ~proven).sum()):,} "
                 f"not yet protected", force=True)
            if not (hidden & ~proven).any():
                return hidden
            if bad.size == 0:  # the sampled cells were protected after all: test the rest again
                continue
            new = self.repair(hidden, lp, bad)
            if new.size == 0:  # the test is exact: these cannot be protected by hiding more nearby
                raise RuntimeError(f"measure {measure}: cannot protect {self.rel.cell(bad[0])}")
            hidden[new] = True  # each round hides at least one cell: the loop ends
            if self.stats is not None:
                self.stats.repair_rounds += 1
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Public entry points


# Masks suppress() found, by a digest of everything the suppression of a measure depends on (the
# relations, values, a-priori bounds, primary cells, width): the suppressor is deterministic, so
# the same inputs get the same mask without its LPs. In memory, the last few.
_SOLVED: OrderedDict[str, np.ndarray] = OrderedDict()
_SOLVED_KEEP = 32


def _key(rel: Relations, v: np.ndarray, upper: np.ndarray, primary: np.ndarray, width: int) -> str:
    m = rel.matrix
    h = hashlib.sha256(repr((m.shape, width)).encode())
    for a in (m.indptr, m.indices, m.data, v, upper, primary):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def suppress(
    df: pl.DataFrame,
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = WIDTH,
    min_denominator: int = MIN_DENOMINATOR,
    stats: Stats | None = None,
    relations: Relations | None = None,
) -> pl.DataFrame:
    """df with a Boolean ``<measure>_hidden`` column per non-public measure (values unchanged).
    ``relations``: those of df over ``dimensions`` when the caller has built them already."""
    rel = relations or build_relations(df, dimensions)
    masks: dict[str, np.ndarray] = {}
    for m in _ordered(measures):
        v = count_values(df, m.name)
        verify(rel, m.name, v)
        if m.rule == "public":
            continue
        primary = primary_mask(df, m, width=width, min_denominator=min_denominator)
        upper = _upper(df, m, masks)
        key = _key(rel, v, upper, primary, width)
        if key in _SOLVED:  # the same table again (a rerun, a day nothing changed): same answer
            _SOLVED.move_to_end(key)
            masks[m.name] = _SOLVED[key].copy()
        else:
            masks[m.name] = _Suppressor(rel, v, upper, width, stats).run(primary, m.name)
            _SOLVED[key] = masks[m.name].copy()
            while len(_SOLVED) > _SOLVED_KEEP:
                _SOLVED.popitem(last=False)
        if stats is not None:
            stats.primary[m.name] = int(primary.sum())
            stats.hidden[m.name] = int(masks[m.name].sum())
    if stats is not None:
        stats.cells = df.height
    out = df.with_columns(
        pl.Series(hidden_column(m.name), masks[m.name]) for m in measures if m.name in masks)
    # every hidden cell of out is proven protected by the suppressor's test (the audit's)
    _remember_proof(_digest(out, dimensions, measures, width, min_denominator))
    return out
