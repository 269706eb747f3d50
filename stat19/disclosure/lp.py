"""The LP audit system of one measure: hidden cells are the variables, published cells constants.

Used by ``audit`` (exact intervals of the cells it cannot prove protected) and by secondary
suppression (the same exact test, and the duals that price repairs); the algorithm is described in
the package docstring (``stat19.disclosure``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from stat19.disclosure.highs import Model
from stat19.disclosure.rules import Stats
from stat19.progress import Ticker

_TOL = 1e-6  # LP solutions are exact up to HiGHS' feasibility tolerance (1e-7)
_PUSH_ROUNDS = 40  # at most this many pushing LPs per model before the per-cell tests; ...
_PUSH_MIN_GAIN = 4  # ... while each resolves this many open cells (or 1 %): a reach test is cheaper
_PUSH_MIN_SHARE = 0.01
_PLAIN_ROUNDS = 3  # the first pushes go uncapped; later ones bound each cell at its need
_REACH_BATCH = 16  # cells per reach solve at first (split in halves while infeasible)
# components are packed into HiGHS models of about this many variables: one model per component
# would cost a solve per component and round, one for all makes every warm solve touch them all
_GROUP_VARIABLES = 4_000
# The suppressor asks exact LPs (for repair duals) of at most this many failing cells per round,
# spread over the release: a few repairs usually fix hundreds of failing cells at once (hiding one
# fylke total frees every kommune below it), so the exact LPs of the rest would be wasted work;
# the cells not examined stay unproven and are tested again, with the new cells, next round.
EXACT_SAMPLE = 32
# Groups share no variable, so they are solved side by side, one thread each: HiGHS releases the
# GIL while it solves, and every group's result depends on its own model alone (deterministic).
_THREADS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def _model(a: sp.csc_array, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> Model:
    """Every LP of the audit is solved by a model made here (tests patch it to count LPs)."""
    return Model(a, b, lower, upper)


class _Audit:
    """One measure's audit system: hidden cells are the variables, published ones constants."""

    def __init__(self, matrix: sp.csr_array, v: np.ndarray, hidden: np.ndarray, upper: np.ndarray,
                 width: int, stats: Stats | None, keep_duals: bool = False,
                 seen: tuple[np.ndarray, np.ndarray] | None = None,
                 tick: Ticker | None = None) -> None:
        self.tick = tick or Ticker("disclosure")
        self.cells = np.flatnonzero(hidden)
        vf = v.astype(float)
        a = matrix[:, self.cells].tocsr()
        b = -(matrix @ np.where(hidden, 0.0, vf))
        keep = np.diff(a.indptr) > 0  # relations without hidden cells say nothing
        self.a, self.b = a[keep].tocsr(), b[keep]
        self.relation = np.flatnonzero(keep)  # relation id of each LP row
        # variable -> (relation ids, row duals) of its exact LPs, for repairs
        self.keep_duals = keep_duals
        self.duals: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self.v = vf[self.cells]
        self.upper = upper[self.cells]
        self.required = np.minimum(float(width), self.upper)
        # far cap for unbounded cells so every LP has a vertex; see the module docstring
        big = 2.0 * float(self.v.max(initial=0.0)) + 1e4 * width
        self.cap = np.where(np.isfinite(self.upper), self.upper, self.v + big)
        nh, nr = self.cells.size, self.a.shape[0]
        graph = (sp.bmat([[None, self.a.T], [self.a, None]], format="csr") if nr
                 else sp.csr_array((nh, nh)))  # bipartite: cells, then relations
        _, labels = connected_components(graph, directed=False)
        self.comp, self.comp_row = labels[:nh], labels[nh:]
        # components packed into groups (one HiGHS model each), in component order
        self.group_of = _pack(np.bincount(self.comp, minlength=labels.max(initial=-1) + 1))
        self.stats = stats
        self._count = threading.Lock()  # stats.lps, counted from the groups' threads
        self._models: dict[int, tuple[np.ndarray, np.ndarray, Model]] = {}
        self.lo, self.hi = self.v.copy(), self.v.copy()  # the true table is feasible
        free = np.diff(self.a.tocsc().indptr) == 0  # in no relation: its whole a-priori range
        self.lo[free], self.hi[free] = 0.0, self.upper[free]
        if seen is not None:  # intervals seen with fewer hidden cells stay valid (module doc)
            self.lo = np.fmin(self.lo, seen[0][self.cells])
            self.hi = np.fmax(self.hi, seen[1][self.cells])

    def seen(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The intervals seen so far, over all n cells of the release (nan: not hidden)."""
        lo, hi = np.full(n, np.nan), np.full(n, np.nan)
        lo[self.cells], hi[self.cells] = self.lo, self.hi
        return lo, hi

    def ok(self) -> np.ndarray:
        return self.hi - self.lo >= self.required - _TOL

    def _model_of(self, g: int) -> tuple[np.ndarray, np.ndarray, Model]:
        """(variables, LP rows, model) of group g, built on first use."""
        if g not in self._models:
            cols = np.flatnonzero(self.group_of[self.comp] == g)
            rows = np.flatnonzero(self.group_of[self.comp_row] == g)
            a = self.a[rows][:, cols].tocsc()
            self._models[g] = cols, rows, _model(a, self.b[rows], np.zeros(cols.size), self.cap[cols])
        return self._models[g]

    def _solve(self, model: Model, cols: np.ndarray, duals: bool = False) -> np.ndarray | None:
        """Solve; a feasible table (every solution is one) widens the intervals of its cells."""
        x = model.solve(duals)
        if self.stats is not None:
            with self._count:
                self.stats.lps += 1
        if x is not None:
            np.minimum.at(self.lo, cols, x)
            np.maximum.at(self.hi, cols, x)
        return x

    def _direction(self, tg: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        """Which way each undecided cell should move (+1 up, -1 down) and by how much, to reach
        the required width with the interval already seen."""
        v, lo, hi, r, u = self.v[tg], self.lo[tg], self.hi[tg], self.required[tg], self.upper[tg]
        need_up = np.minimum(lo + r, u) - v  # to reach hi' = lo + r (or the bound)
        need_dn = v - np.maximum(hi - r, 0.0)  # to reach lo' = hi - r (or zero)
        done_up, done_dn = lo + r <= u + _TOL, hi - r >= -_TOL  # one side alone would suffice
        up = np.where(done_up & done_dn, need_up <= need_dn,
                      np.where(done_up | done_dn, done_up, need_up > _TOL))
        if flip:  # alternate the side of cells that could go either way
            up = np.where(done_up & done_dn, ~up, up)
        return np.where(up, 1.0, -1.0), np.maximum(np.where(up, need_up, need_dn), _TOL)

    def _targets(self, j: np.ndarray, flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bounds that make each cell j reach its need its way: (sign, lower, upper)."""
        sign, need = self._direction(j, flip)
        up = sign > 0
        lower = np.where(up, np.minimum(self.v[j] + need, self.cap[j]), 0.0)
        upper = np.where(up, self.cap[j], np.maximum(self.v[j] - need, 0.0))
        return sign, lower, upper

    def _pushes(self, g: int, todo: np.ndarray) -> None:
        """LPs moving every open cell i of group g its way s_i: maximise sum(s_i x_i / need_i).
        After the first rounds each goes no further than its need (a bound), so one cell cannot
        win at the expense of many. Warm: each round starts from the last one's basis."""
        cols, _, model = self._model_of(g)
        for round_ in range(_PUSH_ROUNDS):
            local = np.flatnonzero(todo[cols])
            if local.size == 0:
                break
            tg = cols[local]
            sign, need = self._direction(tg, round_ % 2 == 1)
            cost = np.zeros(cols.size)
            cost[local] = -sign / need
            model.set_cost(cost)
            if round_ >= _PLAIN_ROUNDS:
                # capped: up to its target (lower) going up, down to its target (upper) going down
                _, lo_t, up_t = self._targets(tg, round_ % 2 == 1)
                model.set_bounds(local, np.where(sign > 0, 0.0, up_t), np.where(sign > 0, lo_t, self.cap[tg]))
            if self._solve(model, cols) is None:
                raise RuntimeError("audit LP infeasible although the true table is feasible")
            model.set_bounds(local, np.zeros(local.size), self.cap[tg])
            todo[tg] &= ~self.ok()[tg]
            gain = local.size - int(todo[tg].sum())
            if gain < max(_PUSH_MIN_GAIN, _PUSH_MIN_SHARE * local.size):
                break
        model.set_cost(np.zeros(cols.size))

    def _reach(self, g: int, todo: np.ndarray, stubborn: np.ndarray) -> None:
        """For each open cell of group g: can it reach its need, one side, then the other? A
        bound change on a warm model: a few dozen pivots, but each solve has a fixed cost, so
        cells are tested together, spread over the group (far apart, they rarely compete); a
        batch that cannot reach is split in halves. A cell failing alone goes to the exact LPs."""
        cols, _, model = self._model_of(g)
        tries = np.zeros(cols.size, np.int8)
        size = _REACH_BATCH
        while True:
            local = np.flatnonzero(todo[cols] & ~stubborn[cols] & ~self.ok()[cols])
            if local.size == 0:
                return
            over = local[tries[local] >= 3]  # at most two sides (and a spare): exact LPs decide
            stubborn[cols[over]] = True
            local = local[tries[local] < 3]
            stack = [local[:: max(1, local.size // size)][:size]]
            solves = 0
            while stack:
                part = stack.pop()
                part = part[~self.ok()[cols[part]]]  # settled meanwhile by another solution
                solves += part.size > 0
                if part.size == 0 or self._reach_cells(model, cols, part, tries):
                    continue
                if part.size == 1:
                    stubborn[cols[part]] = True
                else:
                    stack += [part[part.size // 2:], part[: part.size // 2]]
            # the batch size adapts: larger while whole batches reach, smaller while they split
            size = min(2 * size, 4 * _REACH_BATCH) if solves <= 1 else max(2, size // 2)

    def _reach_cells(self, model: Model, cols: np.ndarray, local: np.ndarray, tries: np.ndarray) -> bool:
        """One solve making the cells ``local`` of a model reach their need together; False
        when that is infeasible."""
        j = cols[local]
        _, lower, upper = self._targets(j, False)
        model.set_bounds(local, lower, upper)
        x = self._solve(model, cols)
        model.set_bounds(local, np.zeros(local.size), self.cap[j])
        if x is not None:
            tries[local] += 1
        return x is not None

    def _exact(self, g: int, stubborn: np.ndarray, limit: int | None, exact: np.ndarray) -> None:
        """Exact max and min LPs of the stubborn cells of group g, one cell per component per LP
        (objective +-x_j, warm). Their lo / hi become exact; row duals kept for repairs."""
        cols, rows, model = self._model_of(g)
        row_comp = self.comp_row[rows]
        done = np.zeros(cols.size, np.int8)  # 0: max next, 1: min next, 2: both exact
        while True:
            local = np.flatnonzero(stubborn[cols] & (done < 2) & ~self.ok()[cols])
            if local.size == 0:
                break
            _, first = np.unique(self.comp[cols[local]], return_index=True)
            pick = local[first]
            cost = np.zeros(cols.size)
            cost[pick] = np.where(done[pick] == 0, -1.0, 1.0)
            model.set_cost(cost)
            if self._solve(model, cols, duals=self.keep_duals) is None:
                raise RuntimeError("audit LP infeasible although the true table is feasible")
            done[pick] += 1
            if self.keep_duals:
                assert model.row_dual is not None
                for k in pick:
                    mine = row_comp == self.comp[cols[k]]
                    self.duals.setdefault(int(cols[k]), []).append(
                        (self.relation[rows[mine]], model.row_dual[mine]))
            exact[cols[pick[done[pick] == 2]]] = True
            if limit is not None and (exact & ~self.ok()).sum() >= limit:
                break
        model.set_cost(np.zeros(cols.size))

    def run(self, targets: np.ndarray, limit: int | None = None, sample: int | None = None) -> np.ndarray:
        """Decide protection of the target variables; returns the mask of the unprotected ones,
        whose lo / hi are their exact LP min and max. limit: stop once that many cells are known
        unprotected (the others then stay unknown and are left out). sample: exact LPs for at
        most that many of the cells that fail the reach tests, spread evenly over them; the
        others are left out too (not ``ok()``, not returned)."""
        todo = targets & ~self.ok()
        pinned = todo & self._pinned()  # known without an LP: their interval is [v, v]
        if limit is not None and pinned.sum() >= limit:
            return np.isin(np.arange(todo.size), np.flatnonzero(pinned)[:limit])
        todo &= ~pinned
        groups = np.unique(self.group_of[self.comp[todo]])
        _each(groups, lambda g: self._pushes(g, todo))
        self.tick(f"pushing LPs done, {int(todo.sum()):,} of {todo.size:,} hidden cells not yet proven")
        stubborn = np.zeros(todo.size, dtype=bool)
        _each(groups, lambda g: self._reach(g, todo, stubborn))
        stubborn &= ~self.ok()
        if sample is not None and stubborn.sum() > sample:
            failing = np.flatnonzero(stubborn)
            self.tick(f"{failing.size:,} cells fail the reach tests; exact LPs for {sample} of them",
                      force=True)
            stubborn[:] = False
            stubborn[failing[np.linspace(0, failing.size - 1, sample).round().astype(np.int64)]] = True
        self.tick(f"exact intervals of {int(stubborn.sum()):,} cells", force=bool(stubborn.any()))
        exact = pinned.copy()  # both LPs solved (or no LP needed)
        groups = np.unique(self.group_of[self.comp[stubborn]])
        if limit is None:
            _each(groups, lambda g: self._exact(g, stubborn, None, exact))
        for g in groups if limit is not None else ():  # stop at the limit: one group after another
            self._exact(int(g), stubborn, limit, exact)
            if (exact & ~self.ok()).sum() >= limit:
                bad = np.flatnonzero(exact & ~self.ok())[:limit]
                return np.isin(np.arange(todo.size), bad)
        return (stubborn | pinned) & ~self.ok()

    def _pinned(self) -> np.ndarray:
        """Cells the published ones determine exactly, by elimination: a relation with one
        hidden cell left fixes it, which then counts as known in its other relations (to a
        fixpoint). Their only feasible value is the true one."""
        pinned = np.zeros(self.v.size, dtype=bool)
        if self.a.shape[0] == 0:
            return pinned
        ab = abs(self.a).tocsr()
        while True:
            single = np.flatnonzero(ab @ (~pinned).astype(float) == 1)
            if single.size == 0:
                return pinned
            _, cells, _ = _expand(ab, single, single)
            new = np.unique(cells[~pinned[cells]])
            if new.size == 0:
                return pinned
            pinned[new] = True


def _each(groups: np.ndarray, work) -> None:
    """work(g) for every group, on up to _THREADS threads. Each call touches only its group's
    model and its group's entries of the shared arrays, so the result is the same in any order."""
    if groups.size <= 1 or _THREADS <= 1:
        for g in groups.tolist():
            work(g)
        return
    with ThreadPoolExecutor(min(_THREADS, groups.size)) as pool:
        for future in [pool.submit(work, g) for g in groups.tolist()]:
            future.result()  # re-raises a group's error


def _pack(sizes: np.ndarray) -> np.ndarray:
    """Group of each component: consecutive components while a group stays within
    _GROUP_VARIABLES variables (a larger component is a group of its own)."""
    # a loop: the greedy running sum restarts at each new group, which no cumsum reproduces
    # exactly; it runs once per audit system, over components (thousands), not cells
    group, total, out = 0, 0, np.zeros(sizes.size, np.int64)
    for c, size in enumerate(sizes.tolist()):
        if total and total + size > _GROUP_VARIABLES:
            group, total = group + 1, 0
        out[c], total = group, total + size
    return out


def _audit_lp(matrix: sp.csr_array, v: np.ndarray, hidden: np.ndarray, upper: np.ndarray,
              targets: np.ndarray, width: int, stats: Stats | None, *, duals: bool = False,
              seen: tuple[np.ndarray, np.ndarray] | None = None,
              limit: int | None = None, sample: int | None = None,
              tick: Ticker | None = None) -> tuple[_Audit, np.ndarray]:
    """The solved audit system and the cells of targets not protected (indices into the
    release); lp.lo / lp.hi hold their exact intervals, and with ``duals`` lp.duals the row
    duals of their exact LPs (which price the repairs). ``limit`` and ``sample``: see
    ``_Audit.run`` (with either, a target that is not ``lp.ok()`` may be missing from the result)."""
    lp = _Audit(matrix, v, hidden, upper, width, stats, keep_duals=duals, seen=seen, tick=tick)
    bad = lp.run(targets[lp.cells], limit=limit, sample=sample)
    return lp, lp.cells[bad]


def _expand(m: sp.csr_array | sp.csc_array, owner: np.ndarray, item: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored entry of the rows (csr) or columns (csc) ``item`` of m, each tagged with the
    ``owner`` of its item: (owner, index, value) per entry, vectorised."""
    cnt = np.diff(m.indptr)[item]
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    ent = np.repeat(m.indptr[item], cnt) + np.arange(int(cnt.sum())) - first
    return np.repeat(owner, cnt), m.indices[ent].astype(np.int64), m.data[ent]
