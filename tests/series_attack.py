"""An independent attacker on two releases of the same product (issue 11, notes/series_contract.md).

It shares no code with ``stat19.disclosure.lp`` or ``stat19.disclosure.series``: only the relation
matrix comes from ``stat19.disclosure.build_relations`` (shared, tested on its own). Per non-public
measure it builds the attacker's LP from scratch:

* variables: the hidden cells of both releases (published cells are constants at their values);
* both releases' additive relations;
* bounds: ``0 <= x <= d`` with d the row's published share denominator, else ``[0, inf)``;
* for every cell in both releases that did not fall (a tie included): ``x_new - x_old >= 0``;
  where the count fell nothing is granted and the two cells are not coupled;

and computes with ``scipy.optimize.linprog`` (HiGHS) the exact min and max of every difference
``new_i - old_i`` and of every hidden cell. Leaks (the contract's findings):

* two published cells whose difference is 1..width-1 (in either direction);
* a difference (of a cell that did not fall) whose interval is narrower than min(width,
  a-priori range) and holds a value of size 1..width-1;
* a hidden cell of the OLD release whose interval is narrower than min(width, d): it passed its
  own audit, so the narrowing comes from the new release (but see the baseline below);
* a hidden cell of the NEW release whose interval is narrower than min(width, a-priori range).

A-priori range: what the old release's published value of the same cell and the denominators say
alone, given the direction; the new release cannot change that. A new cell over a published old
one that did not fall lies in [old, d_new]; an old cell that did not fall, in [0, min(d_old,
d_new)]. A bound the new release's own published cells give is not a-priori: it is what a leak is. A difference: with the old cell published,
[0, d_new - old]; with it hidden, [0, d_new]. A target spanning that whole range is as protected as the new release can make it.

Baseline (``baseline=True``): more generally, no mask of the new release can do better than
hiding all of it; its public cells (the population) and the old release still give an interval.
A leak whose interval is as wide as in that system is not the new release's doing and is dropped
(e.g. yesterday's hidden 0 of a population of 1, pinned today by the population's move to 0).
The a-priori ranges above are a cheap special case of it.

Slow but simple: the LPs are solved per connected component of the hidden cells. The only
shortcut is that every LP solution is a feasible table (checked), so it shows how far each cell
and difference can move; a target already seen to move across its whole required width needs no
LP of its own. A few LPs pushing all cells up or down at once supply such tables first. Every
target not settled that way gets its two exact LPs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

from stat19.disclosure import CountMeasure, Dimension, build_relations

WIDTH = 5
TOL = 1e-6


@dataclass(frozen=True)
class Leak:
    measure: str
    kind: str  # "difference" | "published difference" | "hidden old" | "hidden new"
    cell: dict[str, str]
    value: int  # the true difference new - old, or the true hidden value
    low: float  # what the attacker derives
    high: float
    required: float

    def key(self) -> tuple:
        kind = "difference" if self.kind == "published difference" else self.kind
        return (self.measure, kind, tuple(sorted(self.cell.items())))

    def __str__(self) -> str:
        cell = ", ".join(f"{k}={v}" for k, v in self.cell.items())
        return (f"{self.measure} {self.kind} [{cell}] = {self.value}: derivable interval "
                f"[{self.low:g}, {self.high:g}], needs width {self.required:g}")


@dataclass
class AttackStats:
    lps: int = 0
    targets: int = 0
    components: int = 0
    largest_component: int = 0
    per_measure: dict[str, int] = field(default_factory=dict)


def _values(df: pl.DataFrame, name: str) -> np.ndarray:
    return df[name].cast(pl.Int64).to_numpy().astype(float)


def _upper(df: pl.DataFrame, measure: CountMeasure, declared: set[str]) -> np.ndarray:
    """A-priori upper bound of each cell: the share denominator where it is published."""
    if measure.denominator is None:
        return np.full(df.height, np.inf)
    d = _values(df, measure.denominator)
    # an undeclared denominator (population: public) counts as published
    hid = f"{measure.denominator}_hidden"
    if measure.denominator in declared and hid in df.columns:
        return np.where(df[hid].to_numpy(), np.inf, d)
    return d


def attack(new: pl.DataFrame, old: pl.DataFrame, dimensions: Sequence[Dimension],
           measures: Sequence[CountMeasure], *, width: int = WIDTH, cells: bool = True,
           baseline: bool = True, stats: AttackStats | None = None) -> list[Leak]:
    """Every leak of the pair (new, old) by the contract's threat model; see the module docstring.
    ``cells=False``: differences only (the hidden cells' own intervals are not derived; on a full
    product release that would take thousands of LPs per vaccine group). ``baseline``: drop the
    leaks no mask of the new release avoids (see the module docstring)."""
    stats = stats if stats is not None else AttackStats()
    leaks = _attack(new, old, dimensions, measures, width, cells, stats)
    if not baseline or not leaks:
        return leaks
    # The new release with every non-public cell hidden: its intervals contain the real ones.
    everything = new.with_columns(pl.lit(True).alias(f"{m.name}_hidden") for m in measures if m.rule != "public")
    base = {leak.key(): leak for leak in _attack(everything, old, dimensions, measures, width, cells, stats)}
    return [leak for leak in leaks
            if leak.key() not in base or leak.high - leak.low < base[leak.key()].high - base[leak.key()].low - TOL]


def _attack(new: pl.DataFrame, old: pl.DataFrame, dimensions: Sequence[Dimension],
            measures: Sequence[CountMeasure], width: int, cells: bool, stats: AttackStats) -> list[Leak]:
    declared = {m.name for m in measures}
    names = [d.name for d in dimensions]
    keys = {label: df.select(pl.col(n).cast(pl.String) for n in names) for label, df in (("old", old), ("new", new))}
    # matched cells: row in old, row in new
    pairs = (keys["old"].with_row_index("_o")
             .join(keys["new"].with_row_index("_n"), on=names, how="inner"))
    io = pairs["_o"].to_numpy().astype(np.int64)
    inew = pairs["_n"].to_numpy().astype(np.int64)
    rel = {"old": build_relations(old, dimensions).matrix, "new": build_relations(new, dimensions).matrix}
    leaks: list[Leak] = []
    for m in measures:
        if m.rule == "public":
            continue
        before = len(leaks)
        leaks += _attack_measure(m, old, new, rel, keys, io, inew, declared, width, cells, stats)
        stats.per_measure[m.name] = len(leaks) - before
    return leaks


def _attack_measure(m: CountMeasure, old: pl.DataFrame, new: pl.DataFrame, rel: dict, keys: dict,
                    io: np.ndarray, inew: np.ndarray, declared: set[str], width: int, with_cells: bool,
                    stats: AttackStats) -> list[Leak]:
    side = {"old": old, "new": new}
    v = {s: _values(df, m.name) for s, df in side.items()}
    hid = {s: df[f"{m.name}_hidden"].to_numpy().astype(bool) for s, df in side.items()}
    up = {s: _upper(df, m, declared) for s, df in side.items()}
    for s in side:  # the truth must hold, else the LP below means nothing
        assert not np.abs(rel[s] @ v[s]).any(), f"{m.name}: {s} release breaks its own relations"

    # variable index of each cell (-1: published, a constant)
    var = {}
    n_var = 0
    for s in ("old", "new"):
        idx = np.full(v[s].size, -1, np.int64)
        cells = np.flatnonzero(hid[s])
        idx[cells] = n_var + np.arange(cells.size)
        var[s] = idx
        n_var += cells.size
    truth = np.concatenate([v["old"][hid["old"]], v["new"][hid["new"]]])
    upper = np.concatenate([up["old"][hid["old"]], up["new"][hid["new"]]])
    owner = np.concatenate([np.zeros(hid["old"].sum(), np.int64), np.ones(hid["new"].sum(), np.int64)])
    cell_of = np.concatenate([np.flatnonzero(hid["old"]), np.flatnonzero(hid["new"])])

    # equalities: each relation holding a hidden cell, published cells moved to the right side
    eq_blocks, eq_rhs = [], []
    for s in ("old", "new"):
        mat = sp.csc_array(rel[s])
        h = hid[s]
        a_h = mat[:, np.flatnonzero(h)]
        rhs = -(mat[:, np.flatnonzero(~h)] @ v[s][~h])
        keep = np.flatnonzero(np.abs(a_h).sum(axis=1) > 0)
        sub = sp.csr_array(a_h[keep, :])
        base = var[s][np.flatnonzero(h)][0] if h.any() else 0
        block = sp.csr_array((sub.data, sub.indices + base, sub.indptr), shape=(keep.size, n_var))
        eq_blocks.append(block)
        eq_rhs.append(rhs[keep])
    a_eq = sp.vstack(eq_blocks).tocsr()
    b_eq = np.concatenate(eq_rhs)

    # the direction of every matched change: s * (x_new - x_old) >= 0, i.e. -s x_new + s x_old <= 0
    vo, vn = v["old"][io], v["new"][inew]
    sign = np.where(vn >= vo, 1.0, -1.0)
    vo_var, vn_var = var["old"][io], var["new"][inew]
    some_hidden = (vo_var >= 0) | (vn_var >= 0)
    # the direction is granted only where the count did not fall (where it fell, an attacker
    # assuming it never does would derive something false): a fallen cell is not coupled
    ub_rows, ub_cols, ub_vals, b_ub = [], [], [], []
    for r, k in enumerate(np.flatnonzero(some_hidden & (sign > 0))):
        const = 0.0  # published sides on the right
        if vn_var[k] >= 0:
            ub_rows.append(r), ub_cols.append(vn_var[k]), ub_vals.append(-sign[k])
        else:
            const += sign[k] * vn[k]
        if vo_var[k] >= 0:
            ub_rows.append(r), ub_cols.append(vo_var[k]), ub_vals.append(sign[k])
        else:
            const -= sign[k] * vo[k]
        b_ub.append(const)
    a_ub = sp.csr_array((ub_vals, (ub_rows, ub_cols)), shape=(len(b_ub), n_var))
    b_ub = np.array(b_ub)

    # A-priori ranges: what the old release's published cells and the denominators say of a
    # cell or difference alone, given the direction. Today's release cannot change those, so a
    # target spanning its whole a-priori range is as protected as it can be when that range is
    # narrower than the width (as a hidden share spanning [0, d < 5] is in one release). Only
    # the OLD release counts here: a narrowing that today's published cells cause is a leak.
    new_lo = np.zeros(v["new"].size)
    new_hi = up["new"].copy()
    old_pub = vo_var < 0
    np.maximum.at(new_lo, inew[old_pub & (sign > 0)], vo[old_pub & (sign > 0)])  # not below it
    old_hi = up["old"].copy()  # an old cell that did not fall is not above its new cell's bound
    np.minimum.at(old_hi, io[sign > 0], up["new"][inew][sign > 0])
    # |new - old|: up, old published: [0, d_new - old]; down, old published: [0, old];
    # old hidden: [0, the larger side's bound]
    d_range = np.where(old_pub, np.where(sign > 0, up["new"][inew] - vo, vo),
                       np.where(sign > 0, up["new"][inew], up["old"][io]))

    # targets: one objective row each, with a constant (published side of a difference)
    leaks: list[Leak] = []
    t_rows, t_cols, t_vals, t_const, t_req, t_meta, t_dir = [], [], [], [], [], [], []
    for j in range(n_var if with_cells else 0):
        t_rows.append(len(t_const)), t_cols.append(j), t_vals.append(1.0)
        t_const.append(0.0)
        s = "old" if owner[j] == 0 else "new"
        c = int(cell_of[j])
        t_req.append(min(width, old_hi[c] if s == "old" else new_hi[c] - new_lo[c]))
        t_meta.append((f"hidden {s}", s, c, int(truth[j])))
        t_dir.append(0.0)
    for k in range(io.size):
        diff = int(vn[k] - vo[k])
        req = min(width, d_range[k])
        if not some_hidden[k]:  # two published cells: the difference is exact
            if 1 <= abs(diff) <= width - 1:
                leaks.append(Leak(m.name, "published difference", _cell(keys["new"], inew[k]), diff,
                                  float(diff), float(diff), float(req)))
            continue
        if sign[k] < 0:  # not coupled: the difference is as wide as the hidden cell's own interval
            continue
        row, const = len(t_const), 0.0
        for s, vv, xv, coef in (("new", vn, vn_var, 1.0), ("old", vo, vo_var, -1.0)):
            if xv[k] >= 0:
                t_rows.append(row), t_cols.append(xv[k]), t_vals.append(coef)
            else:
                const += coef * vv[k]
        t_const.append(const)
        t_req.append(req)
        t_meta.append(("difference", "new", int(inew[k]), diff))
        t_dir.append(sign[k])
    n_t = len(t_const)
    targets = sp.csr_array((t_vals, (t_rows, t_cols)), shape=(n_t, n_var))
    t_const = np.array(t_const)
    t_req = np.array(t_req, dtype=float)
    t_dir = np.array(t_dir, dtype=float)
    stats.targets += n_t
    if n_var == 0:
        return leaks

    # components over the hidden cells: variables sharing a relation, a direction or a target
    pattern = sp.vstack([abs(a_eq), abs(a_ub), abs(targets)]).tocsr()
    pattern.data[:] = 1.0
    link = sp.csr_array(pattern.T @ pattern)
    n_comp, comp = connected_components(link, directed=False)
    stats.components += n_comp
    stats.largest_component = max(stats.largest_component, int(np.bincount(comp).max()))
    eq_comp = comp[_first_col(a_eq)]
    ub_comp = comp[_first_col(a_ub)]
    t_comp = comp[_first_col(targets)]

    lo = np.full(n_t, np.nan)
    hi = np.full(n_t, np.nan)
    for c in range(n_comp):
        cols = np.flatnonzero(comp == c)
        rows_eq = np.flatnonzero(eq_comp == c)
        rows_ub = np.flatnonzero(ub_comp == c)
        ts = np.flatnonzero(t_comp == c)
        if ts.size == 0:
            continue
        lp = _Component(a_eq[rows_eq][:, cols], b_eq[rows_eq], a_ub[rows_ub][:, cols], b_ub[rows_ub],
                        upper[cols], truth[cols], stats)
        t_obj = targets[ts][:, cols]
        lo[ts], hi[ts] = lp.intervals(t_obj, t_const[ts], t_req[ts], t_dir[ts], width)

    for t in range(n_t):
        kind, s, row, value = t_meta[t]
        narrow = hi[t] - lo[t] < t_req[t] - TOL
        if kind == "difference":
            if narrow and _holds_small(lo[t], hi[t], width):
                leaks.append(Leak(m.name, kind, _cell(keys[s], row), value, lo[t], hi[t], t_req[t]))
        elif narrow:
            leaks.append(Leak(m.name, kind, _cell(keys[s], row), value, lo[t], hi[t], t_req[t]))
    return leaks


def _holds_small(lo: float, hi: float, width: int) -> bool:
    """The interval of new - old holds a change of size 1..width-1 (either direction)."""
    up = not (hi < 1 - TOL or lo > width - 1 + TOL)
    down = not (hi < -(width - 1) - TOL or lo > -1 + TOL)
    return up or down


def _first_col(a: sp.csr_array) -> np.ndarray:
    """The first variable of each row (every row here has one)."""
    a = sp.csr_array(a)
    assert (np.diff(a.indptr) > 0).all()
    return a.indices[a.indptr[:-1]]


def _cell(keys: pl.DataFrame, row: int) -> dict[str, str]:
    return dict(zip(keys.columns, keys.row(int(row)), strict=True))


class _Component:
    """One connected component's LP; min and max of each target, exact."""

    def __init__(self, a_eq, b_eq, a_ub, b_ub, upper, truth, stats: AttackStats) -> None:
        self.a_eq, self.b_eq = sp.csr_array(a_eq), b_eq
        self.a_ub, self.b_ub = sp.csr_array(a_ub), b_ub
        self.upper = upper
        self.bounds = [(0.0, None if np.isinf(u) else float(u)) for u in upper]
        self.truth = truth
        self.stats = stats

    def _feasible(self, x: np.ndarray) -> bool:
        ok = (x >= -TOL).all() and (x <= self.upper + TOL).all()
        if self.a_eq.shape[0]:
            ok &= bool(np.abs(self.a_eq @ x - self.b_eq).max() <= 1e-5)
        if self.a_ub.shape[0]:
            ok &= bool((self.a_ub @ x - self.b_ub).max() <= 1e-5)
        return bool(ok)

    def _solve(self, c: np.ndarray, bounds=None) -> tuple[int, np.ndarray | None]:
        self.stats.lps += 1
        res = linprog(c, A_ub=self.a_ub if self.a_ub.shape[0] else None, b_ub=self.b_ub if self.a_ub.shape[0] else None,
                      A_eq=self.a_eq if self.a_eq.shape[0] else None, b_eq=self.b_eq if self.a_eq.shape[0] else None,
                      bounds=bounds or self.bounds, method="highs")
        if res.status == 3:
            return 3, None
        assert res.status == 0, res.message  # the true table is feasible: never infeasible
        assert self._feasible(res.x), "linprog returned an infeasible table"
        return 0, res.x

    def intervals(self, t_obj: sp.csr_array, t_const: np.ndarray, req: np.ndarray, direction: np.ndarray,
                  width: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (lo, hi) of each target t_obj @ x + t_const, except that a target some tables
        show to move across its whole required width gets the range of those tables.
        direction: +-1 the known sign of a difference target, 0 for a cell."""
        t_obj = sp.csr_array(t_obj)
        n_t = t_obj.shape[0]
        value = t_obj @ self.truth + t_const
        seen_lo, seen_hi = value.copy(), value.copy()

        def witness(x: np.ndarray) -> None:
            y = t_obj @ x + t_const
            np.minimum(seen_lo, y, out=seen_lo)
            np.maximum(seen_hi, y, out=seen_hi)

        def settled() -> np.ndarray:
            return seen_hi - seen_lo >= req - TOL

        # Pushes: LPs moving every open target at once towards a side it has not reached yet
        # (alternately up, down, random), while they settle enough targets. The caps keep these
        # LPs bounded; a capped table is a table of the real system all the same.
        cap = self.truth + 2 * (self.truth.max() if self.truth.size else 0) + 100 * width
        capped = [(0.0, float(min(u, k))) for u, k in zip(self.upper, cap, strict=True)]
        rng = np.random.default_rng(0)
        idle = 0
        for k in itertools.count():
            open_ = np.flatnonzero(~settled())
            if open_.size == 0 or idle >= 2:
                break
            if k % 3 == 2:
                s = rng.choice([-1.0, 1.0], open_.size)
            else:
                s = np.full(open_.size, 1.0 if k % 3 == 0 else -1.0)
            c = (s / np.maximum(req[open_], 1.0)) @ t_obj[open_]
            _, x = self._solve(-c, capped)
            witness(x)
            done = open_.size - (~settled()).sum()
            idle = 0 if done >= max(1, 0.01 * open_.size) else idle + 1

        # Differences known to be 0 by now: prove it for many at once. Each is >= 0 in its
        # direction, so when the max of their sum is 0 every one of them is exactly 0 (the truth
        # is a table where the sum is 0, so a positive max is reached within the caps, by
        # convexity: the capped LP decides this exactly). A difference the LP moves leaves the set.
        lo, hi = np.full(n_t, np.nan), np.full(n_t, np.nan)
        zero = np.flatnonzero(~settled() & (direction != 0) & (seen_lo == 0) & (seen_hi == 0))
        while zero.size:
            c = (direction[zero]) @ t_obj[zero]
            _, x = self._solve(-c, capped)
            witness(x)
            moved = direction[zero] * (t_obj[zero] @ x + t_const[zero]) > TOL
            if not moved.any():
                lo[zero] = hi[zero] = 0.0
                break
            zero = zero[~moved]

        for t in range(n_t):
            if not np.isnan(lo[t]):
                continue
            if settled()[t]:
                lo[t], hi[t] = seen_lo[t], seen_hi[t]  # wide enough: its exact ends do not matter
                continue
            c = t_obj[[t]].toarray().ravel()
            for sense in (1.0, -1.0):
                status, x = self._solve(sense * c)
                if status == 3:
                    (lo if sense > 0 else hi)[t] = -sense * np.inf
                    continue
                witness(x)
                (lo if sense > 0 else hi)[t] = c @ x + t_const[t]
        return lo, hi
