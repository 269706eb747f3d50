"""The LP audit system of one measure: hidden cells are the variables, published cells constants.

Used by ``audit`` (exact intervals of the cells it cannot prove protected) and by secondary
suppression (its stricter test and the duals that price repairs); the algorithm is described in
the package docstring (``stat19.disclosure``).
"""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, linprog
from scipy.sparse.csgraph import connected_components

from stat19.disclosure.rules import Stats
from stat19.progress import Ticker

_TOL = 1e-6  # LP solutions are exact up to HiGHS' feasibility tolerance (1e-7)
_PUSH_ROUNDS = 80  # at most this many pushing LPs before per-cell LPs (audit step 2); ...
_PUSH_MIN_GAIN = 2  # ... all open cells while each resolves this many (or 1 %), then halves
_PLAIN_ROUNDS = 3  # the first pushes go uncapped
_BLOCK_VARIABLES = 50_000  # per block LP (memory bound)
# HiGHS' presolve costs more than it saves on these sparse, well-scaled LPs (about a third of the
# audit time on the benchmark)
_HIGHS = {"presolve": False}
# neighbourhood radius, in relations, of the per-cell block LPs (a 3-D cube needs 3), and the most
# variables (cells x neighbourhood) worth it; the wider pass is for the few left after the first
_HOPS = ((3, 1_000_000), (6, 100_000))


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
        # variable -> (relation ids, row duals) of its neighbourhood LPs (_blocks), for repairs
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
        self.stats = stats
        self._adj: sp.csr_array | None = None  # cell adjacency, built by _blocks when needed
        self._csc: sp.csc_array | None = None
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

    def _solve(self, comps: np.ndarray, objective: np.ndarray,
               lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> None:
        """Optimise over the components ``comps`` (within [0, cap] or the bounds given); widen
        every cell's interval by the solution, a feasible table."""
        cols = np.isin(self.comp, comps)
        rows = np.isin(self.comp_row, comps)
        lo = np.zeros(self.v.size) if lower is None else lower
        hi = self.cap if upper is None else upper
        res = linprog(objective[cols], A_eq=self.a[rows][:, cols], b_eq=self.b[rows],
                      bounds=np.column_stack([lo[cols], hi[cols]]), method="highs", options=_HIGHS)
        self._count(res)
        self.lo[cols] = np.minimum(self.lo[cols], res.x)
        self.hi[cols] = np.maximum(self.hi[cols], res.x)

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

    def _push(self, todo: np.ndarray, flip: bool, capped: bool) -> None:
        """One LP moving every undecided cell i its way s_i: maximise sum(s_i x_i / need_i).
        capped: no further than its need (a bound), so one cell cannot win at the expense of
        many; the first rounds go without (same progress while most cells are open)."""
        tg = np.flatnonzero(todo)
        sign, need = self._direction(tg, flip)
        objective = np.zeros(todo.size)
        objective[tg] = -sign / need
        lower, upper = np.zeros(todo.size), self.cap.copy()
        if capped:
            upper[tg] = np.where(sign > 0, np.minimum(upper[tg], self.v[tg] + need), upper[tg])
            lower[tg] = np.where(sign < 0, np.maximum(0.0, self.v[tg] - need), 0.0)
        self._solve(np.unique(self.comp[tg]), objective, lower, upper)

    def _neighbourhoods(self, tg: np.ndarray, hops: int) -> sp.csr_array:
        """Row t: the hidden cells within ``hops`` relations of cell tg[t] (itself included)."""
        if self._adj is None:
            ab = abs(self.a)
            self._adj = ((ab.T @ ab) > 0).astype(np.int8).tocsr()  # shares a relation (or is)
            self._csc = self.a.tocsc()
        near = sp.csr_array((np.ones(tg.size, np.int8), (np.arange(tg.size), tg)),
                            shape=(tg.size, self.v.size))
        for _ in range(hops):
            near = ((near @ self._adj) > 0).astype(np.int8).tocsr()
        return near

    def _blocks(self, todo: np.ndarray, side: np.ndarray, near: sp.csr_array) -> None:
        """Exact optimum of every undecided cell within its own neighbourhood (``near``; the
        other hidden cells stay at their true values, so each solution is a feasible table),
        maximised (side +1) or minimised (side -1): LPs holding a separate copy of each
        neighbourhood, in displacement form y = x - v (relations: A y = 0). No target competes
        with another, unlike _push. Keeps each block's row duals if asked."""
        tg = np.flatnonzero(todo)
        # several LPs when the copies are many, to bound memory
        chunk = np.cumsum(np.diff(near.indptr)) // _BLOCK_VARIABLES
        for k in np.unique(chunk):
            mine = np.flatnonzero(chunk == k)
            self._block_lp(tg[mine], near[mine].tocoo(), side)

    def _block_lp(self, tg: np.ndarray, near: sp.coo_array, side: np.ndarray) -> None:
        block, cell = near.row.astype(np.int64), near.col.astype(np.int64)
        # copy the columns of the neighbourhood cells into their block's rows
        a = self._csc
        assert a is not None
        var, relation, coef = _expand(a, np.arange(cell.size), cell)
        keys, row = np.unique(block[var] * a.shape[0] + relation, return_inverse=True)
        m = sp.csr_array((coef, (row, var)), shape=(keys.size, cell.size))
        target = cell == tg[block]
        c = np.zeros(cell.size)
        c[target] = -side[tg[block[target]]]
        bounds = np.column_stack([-self.v[cell], self.cap[cell] - self.v[cell]])
        res = linprog(c, A_eq=m, b_eq=np.zeros(keys.size), bounds=bounds, method="highs", options=_HIGHS)
        self._count(res)
        x = self.v[cell] + res.x
        np.minimum.at(self.lo, cell, x)
        np.maximum.at(self.hi, cell, x)
        if self.keep_duals:  # for pricing repairs (see _Suppressor.repair)
            owner, relation = keys // a.shape[0], self.relation[keys % a.shape[0]]
            cuts = np.flatnonzero(np.diff(owner)) + 1
            lam = res.eqlin.marginals
            for t, rel_ids, dual in zip(owner[np.r_[0, cuts]], np.split(relation, cuts),
                                        np.split(lam, cuts), strict=True):
                self.duals.setdefault(int(tg[t]), []).append((rel_ids, dual))

    def _count(self, res: OptimizeResult) -> None:
        if self.stats is not None:
            self.stats.lps += 1
        if res.status != 0:  # the true table is feasible and every variable bounded
            raise RuntimeError(f"audit LP failed: {res.message}")

    def run(self, targets: np.ndarray, exact: bool = True, limit: int | None = None) -> np.ndarray:
        """Decide protection of the target variables; returns the mask of the others.
        exact: those are unprotected, and lo/hi are their exact LP min and max.
        not exact: those are not protected within their neighbourhood (a sufficient condition
        for protection: a stricter test, never a laxer one); lo/hi are their local intervals.
        limit: stop once that many cells are known unprotected (the others then stay unknown
        and are left out)."""
        todo = targets & ~self.ok()
        rng = np.random.default_rng(0)  # reproducible
        everyone, idle = True, 0
        for round_ in range(_PUSH_ROUNDS):
            if not todo.any():
                return todo
            before = int(todo.sum())
            some = todo if everyone else todo & (rng.random(todo.size) < 0.5)
            self._push(some if some.any() else todo, flip=round_ % 2 == 1,
                       capped=round_ >= _PLAIN_ROUNDS)
            todo &= ~self.ok()
            self.tick(f"LP round {round_ + 1}, {int(todo.sum()):,} of {todo.size:,} hidden cells "
                      f"not yet proven")
            gain = before - int(todo.sum())
            if everyone and gain < max(_PUSH_MIN_GAIN, 0.01 * before):
                if not exact:  # suppress: a repair is cheaper (and the audit then easier)
                    break
                # stalled: the cells left compete for the same slack (typically hidden zeros
                # that all need to rise); push a random half at a time
                everyone = False
            elif not everyone:
                idle = idle + 1 if gain == 0 else 0
                if idle == 2:  # what is left is mostly unprotected; the LPs below decide it
                    break
        # the stubborn rest: each alone in its neighbourhood; a wider one for the few left
        # (its LPs grow with the neighbourhoods, the exact ones below with the components)
        for hops, budget in _HOPS:
            if not todo.any():
                break
            tg = np.flatnonzero(todo)
            near = self._neighbourhoods(tg, hops)
            if near.nnz > budget:
                break
            side = np.zeros(todo.size)
            side[tg] = self._direction(tg, False)[0]
            self.duals.clear()  # the widest neighbourhood prices the repairs
            self.tick(f"{tg.size:,} cells each in its own LP ({hops} relations around it)")
            self._blocks(todo, side, near)
            todo &= ~self.ok()
        if not exact:
            return todo
        # exact phase: per component a queue of cells; each LP does one (cell, side) per component
        queues: dict[int, list[int]] = {}
        for j in np.flatnonzero(todo):
            queues.setdefault(int(self.comp[j]), []).append(int(j))
        done = np.zeros(todo.size, dtype=np.int8)  # 0: max next, 1: min next, 2: both exact
        self.tick(f"exact intervals of {int(todo.sum()):,} cells", force=True)
        while True:
            picks: list[tuple[int, int]] = []
            ok = self.ok()
            for q in queues.values():
                while q and (done[q[0]] == 2 or ok[q[0]]):
                    q.pop(0)
                if q:
                    picks.append((q[0], int(done[q[0]])))
            if not picks:
                break
            objective = np.zeros(todo.size)
            for j, s in picks:
                objective[j] = -1.0 if s == 0 else 1.0
                done[j] = s + 1
            self._solve(np.unique(self.comp[[j for j, _ in picks]]), objective)
            if limit is not None and ((done == 2) & ~self.ok()).sum() >= limit:
                return (done == 2) & ~self.ok()
        return todo & ~self.ok()


def _audit_lp(matrix: sp.csr_array, v: np.ndarray, hidden: np.ndarray, upper: np.ndarray,
              targets: np.ndarray, width: int, stats: Stats | None, *, exact: bool,
              seen: tuple[np.ndarray, np.ndarray] | None = None,
              limit: int | None = None, tick: Ticker | None = None) -> tuple[_Audit, np.ndarray]:
    """The solved audit system and the cells of targets not proven protected (indices into the
    release). exact: those are unprotected and lp.lo / lp.hi hold their exact intervals.
    Not exact (suppress): those are not protected within their neighbourhood, and lp.duals
    prices the repairs."""
    lp = _Audit(matrix, v, hidden, upper, width, stats, keep_duals=not exact, seen=seen, tick=tick)
    bad = lp.run(targets[lp.cells], exact=exact, limit=limit)
    return lp, lp.cells[bad]


def _expand(m: sp.csr_array | sp.csc_array, owner: np.ndarray, item: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every stored entry of the rows (csr) or columns (csc) ``item`` of m, each tagged with the
    ``owner`` of its item: (owner, index, value) per entry, vectorised."""
    cnt = np.diff(m.indptr)[item]
    first = np.repeat(np.cumsum(cnt) - cnt, cnt)
    ent = np.repeat(m.indptr[item], cnt) + np.arange(int(cnt.sum())) - first
    return np.repeat(owner, cnt), m.indices[ent].astype(np.int64), m.data[ent]
