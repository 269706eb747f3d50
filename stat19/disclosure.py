"""Disclosure control: primary and secondary cell suppression, and the LP audit that proves it.

Generic: nothing here knows a product. The caller describes a release and this module decides
which cells to hide (``suppress``) and whether a set of hidden cells is safe (``audit``).

Release model
-------------
A release is a long polars DataFrame, one row per cell: one column per dimension, one column per
count measure (non-negative integers, no nulls). Other columns (``geo_level``, names, rates) are
ignored. The caller declares:

* ``Dimension(name, parent)``. ``parent`` maps each child code to its parent code, e.g.
  ``{'0301': '03', '03': 'NO', '9999': '99', '99': 'NO'}`` or ``{'0-4': 'total', ...}``. Codes are
  compared as strings. Every code found in the column must occur in the map (as a child or as a
  parent), so a typo cannot silently drop a cell from its total. ``parent=None`` (time,
  vaccine_group, disease): no total, the dimension only partitions the release.
* ``CountMeasure(name, rule, denominator)``. ``public``: never hidden (population).
  ``threshold``: hidden when ``1 <= n <= width-1``. ``share``: in addition hidden when
  ``1 <= d-n <= width-1`` or ``0 < d < min_denominator``, d = the ``denominator`` column of the
  same row (it must satisfy ``0 <= n <= d``).

Relations: for every dimension with a parent map, every parent code p and every combination of the
other dimensions' codes: ``cell(p) = sum of cell(c)`` over the children c of p present in the
release. A relation is built when the parent row and at least one child row exist (a product may
omit whole levels, e.g. no kommune rows for some diseases). All relations of all dimensions form ONE
system: suppressing 2-D sub-tables one at a time is the classic way to leak through shared cells.
The true values must satisfy every relation, else ``RelationError`` (catches aggregation bugs).

Each count measure is its own table over the same relations, suppressed and audited independently,
except that a published share denominator d bounds its numerator (``0 <= n <= d``). A denominator
hidden in that row bounds nothing (the reader does not know it); a denominator column not declared
as a measure counts as published (the stricter choice).

API
---
``primary_mask(df, measure)``                 numpy bool array, the primary rule only.
``suppress(df, dimensions, measures)``        df plus one Boolean ``<measure>_hidden`` column per
                                              non-public measure; values are never changed.
``audit(df, dimensions, measures)``           list of ``Finding`` (empty = safe); reads the
                                              ``<measure>_hidden`` columns.
``check_release(df, dimensions, measures)``   raises ``DisclosureError`` when audit finds anything;
                                              the LPs are skipped for a release exactly as
                                              ``suppress`` returned it (its proof is remembered
                                              by digest), the cheap checks never.
Progress lines with the elapsed time go to ``stat19.progress.say`` (a long suppression or audit
says what it is doing every few seconds).
Keywords: ``width=5`` (counts 1..width-1 are small; the protection width), ``min_denominator=20``;
``stats=Stats()`` collects counts (primary, hidden, LPs solved, repair rounds).

Audit (the accepted criterion, domain.md)
-----------------------------------------
For each hidden cell: min and max of its value by linear programming (HiGHS through
``scipy.optimize.linprog``) over all relations, published cells fixed at their values, hidden cells
``>= 0`` and ``<= d`` where a share denominator d is published. Protected when
``max - min >= width``, or, when the a-priori range is narrower (d < width), when the interval is
the whole ``[0, d]``; both read ``max - min >= min(width, d)``. A published primary cell is also a
finding. Two LPs per hidden cell on a 40,000-cell release would take minutes, so:

* published cells are constants; only relations holding a hidden cell are kept; hidden cells are
  split into connected components (an LP never spans two of them);
* every feasible table is a witness: a cell is proven protected as soon as two feasible tables
  differ by ``min(width, d)`` in it. The true table is the first one;
* "push" LPs find witnesses for many cells at once: each open cell gets a direction s_i (the side
  where it can still reach the width) and the LP maximises ``sum(s_i x_i / need_i)``, after the
  first rounds with each x_i bounded at its need (so one cell cannot win at the expense of the
  others). Repeated while they keep resolving cells (on the benchmark: all but ~1 % in 15-25
  rounds), then on random halves of the open cells (cells that all need the same slack, typically
  hidden zeros that must be able to rise, succeed when fewer compete);
* "block" LPs then optimise each remaining cell alone in its neighbourhood (hidden cells within 3
  relations, then 6 for the few left; the others kept at their true values, so again feasible
  tables): one LP holds a separate copy per cell, so no target competes with another;
* only what is still open gets exact max and min LPs over its whole component, one cell per
  component per LP (the components are independent, so one LP serves them all). These are the
  unprotected cells, reported with their exact interval.
Unbounded variables get a far cap (``v + 2 max(v) + 10^4 width``) so every LP has a vertex; a cap
that far cannot make an interval look narrower than ``width``.

Secondary suppression (why this design)
---------------------------------------
Exact optimal cell suppression (a MILP over all relations, tau-Argus' optimal method) does not
scale to 40,000 linked cells in seconds; SSB's Gaussian elimination prevents exact disclosure but
not intervals narrower than ``width``. Here: cheap local rules (necessary conditions), then the
LP audit drives the few repairs it proves necessary. Per measure:

1. Local rules to a fixpoint, vectorised over all relations per round (numpy on the incidence
   matrix):
   - singleton: a relation with exactly one hidden cell discloses it: hide one more of its cells;
   - width: in a relation with a published parent, a hidden child can only move by what the other
     hidden children can give (their values) or take (their headroom ``d - v``); when that local
     range is below ``min(width, d)``, hide one more cell.
   The cell added to a violated relation is chosen by tier, then cost: (0) a child whose value
   (and headroom) covers the shortfall, smallest first; (1) a smaller child, largest first; (2) the
   parent (hiding a total spreads suppression upwards); (3) a zero (hidden only when nothing else
   is left). Cost = value divided by the number of violated relations the cell fixes at once, so
   one cell closing two relations (the corner of a suppression rectangle or cube) beats two cells.
   Cells with an a-priori range of zero (``d == 0``) are never candidates: they give no freedom.
2. The audit above, but ending with the block LPs (and no pushes on halves): a hidden cell
   counts as protected only when a push LP or its neighbourhood shows it. This is a slightly
   stricter test than the audit (a few cells protected only through long chains get an extra
   partner), far cheaper than exact LPs for the cells that fail it, and it leaves the audit an
   easier job.
3. Repairs priced by LP duals: for each failing cell, the row duals of its block LP give the rate
   at which its bound would move if a published cell c became free (``duals . column_c``); a cell
   with a nonzero rate and room to move that way (down to 0, up to d) helps. A greedy cover hides
   cells helping the most failing cells: nonzero before zero, no new partner needed first, then
   enough gain for the shortfall, then the smallest value. Back to 1 (new cells may need partners).
   Cells already proven keep their proof (adding hidden cells only widens intervals: every old
   witness stays feasible with the new cells at their true values), and so do the witnesses.
The loop ends: each round hides at least one cell, and hiding everything is safe. The result
passes ``audit`` by construction (its test is stricter); the tests check it anyway.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import OptimizeResult, linprog
from scipy.sparse.csgraph import connected_components

from stat19.progress import say

__all__ = [
    "CountMeasure",
    "Dimension",
    "DisclosureError",
    "Finding",
    "RelationError",
    "Stats",
    "audit",
    "check_release",
    "hidden_column",
    "primary_mask",
    "suppress",
]

Rule = Literal["public", "threshold", "share"]

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


class _Ticker:
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


def hidden_column(measure: str) -> str:
    return f"{measure}_hidden"


# --------------------------------------------------------------------------------------------
# Relations


@dataclass(frozen=True)
class _Relations:
    matrix: sp.csr_array  # relations x cells: +1 for the parent, -1 for each child
    parent: np.ndarray  # cell index of each relation's parent
    keys: pl.DataFrame  # the dimension columns as strings, to name cells in messages

    def cell(self, i: int) -> dict[str, str]:
        return dict(zip(self.keys.columns, self.keys.row(int(i)), strict=True))


def _relations(df: pl.DataFrame, dimensions: Sequence[Dimension]) -> _Relations:
    names = [d.name for d in dimensions]
    if len(set(names)) != len(names):
        raise RelationError(f"dimension declared twice: {names}")
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise RelationError(f"dimension column(s) missing from the release: {missing}")
    keys = df.select(pl.col(n).cast(pl.String) for n in names)
    for n in names:
        if keys[n].null_count():
            raise RelationError(f"dimension {n} has null codes")
    dup = keys.filter(keys.is_duplicated())
    if dup.height:
        raise RelationError(f"{dup.height} rows share their dimension codes, e.g. {dup.row(0)}")

    rows = keys.with_row_index("_row")
    r_ids, r_cells, r_signs, parents = [], [], [], []
    n_rel = 0
    for dim in dimensions:
        if dim.parent is None:
            continue
        known = {str(c) for c in dim.parent} | {str(p) for p in dim.parent.values()}
        unknown = set(keys[dim.name].unique().to_list()) - known
        if unknown:
            raise RelationError(
                f"dimension {dim.name}: codes not in its hierarchy: {sorted(unknown)[:10]}")
        others = [n for n in names if n != dim.name]
        edges = pl.DataFrame(
            {dim.name: [str(c) for c in dim.parent],
             "_pcode": [str(p) for p in dim.parent.values()]},
            schema={dim.name: pl.String, "_pcode": pl.String},
        )
        # child row -> parent code -> parent row (same codes in every other dimension)
        link = rows.join(edges, on=dim.name, how="inner").join(
            rows.select(*others, pl.col(dim.name).alias("_pcode"), pl.col("_row").alias("_prow")),
            on=[*others, "_pcode"],
            how="inner",
        )
        if link.height == 0:
            continue
        child = link["_row"].to_numpy().astype(np.int64)
        par, inv = np.unique(link["_prow"].to_numpy().astype(np.int64), return_inverse=True)
        r_ids += [n_rel + np.arange(par.size), n_rel + inv]
        r_cells += [par, child]
        r_signs += [np.ones(par.size), -np.ones(child.size)]
        parents.append(par)
        n_rel += par.size
    if n_rel == 0:
        matrix = sp.csr_array((0, df.height))
        return _Relations(matrix, np.zeros(0, np.int64), keys)
    matrix = sp.csr_array(
        (np.concatenate(r_signs), (np.concatenate(r_ids), np.concatenate(r_cells))),
        shape=(n_rel, df.height),
    )
    return _Relations(matrix, np.concatenate(parents), keys)


def _values(df: pl.DataFrame, name: str) -> np.ndarray:
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


def _verify(rel: _Relations, measure: str, v: np.ndarray) -> None:
    residual = rel.matrix @ v
    bad = np.flatnonzero(residual)
    if bad.size:
        r = bad[0]
        p = rel.parent[r]
        raise RelationError(
            f"measure {measure}: {bad.size} declared relation(s) do not hold, e.g. "
            f"{rel.cell(p)} = {v[p]} but its children sum to {v[p] - residual[r]}"
        )


# --------------------------------------------------------------------------------------------
# Primary rule


def primary_mask(
    df: pl.DataFrame, measure: CountMeasure, *, width: int = 5, min_denominator: int = 20
) -> np.ndarray:
    """Cells the primary rule hides (numpy bool array, one per row); never any for public."""
    n = _values(df, measure.name)
    if measure.rule == "public":
        return np.zeros(n.size, dtype=bool)
    hidden = (n >= 1) & (n < width)
    if measure.rule == "share":
        assert measure.denominator is not None
        d = _values(df, measure.denominator)
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
    d = _values(df, measure.denominator).astype(float)
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


# --------------------------------------------------------------------------------------------
# LP audit


class _Audit:
    """One measure's audit system: hidden cells are the variables, published ones constants."""

    def __init__(self, matrix: sp.csr_array, v: np.ndarray, hidden: np.ndarray, upper: np.ndarray,
                 width: int, stats: Stats | None, keep_duals: bool = False,
                 seen: tuple[np.ndarray, np.ndarray] | None = None,
                 tick: _Ticker | None = None) -> None:
        self.tick = tick or _Ticker("disclosure")
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
              limit: int | None = None, tick: _Ticker | None = None) -> tuple[_Audit, np.ndarray]:
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


# --------------------------------------------------------------------------------------------
# Secondary suppression


class _Suppressor:
    def __init__(self, rel: _Relations, v: np.ndarray, upper: np.ndarray, width: int,
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
        of j's neighbourhood LP: freeing published cell c moves j's bound at the rate
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
        tick = _Ticker(f"suppression of {measure}")
        tick(f"{self.v.size:,} cells, {int(primary.sum()):,} primary", force=True)
        hidden = primary.copy()
        proven = np.zeros_like(hidden)
        seen = None
        for round_ in itertools.count(1):
            self.local_fixpoint(hidden)
            lp, bad = _audit_lp(self.rel.matrix, self.v, hidden, self.upper, hidden & ~proven,
                                self.width, self.stats, exact=False, seen=seen, tick=tick)
            seen = lp.seen(self.v.size)
            # intervals only widen when more cells are hidden: a protected cell stays protected
            proven |= hidden
            proven[bad] = False
            tick(f"round {round_}: {int(hidden.sum()):,} hidden, {bad.size:,} not yet protected",
                 force=True)
            if bad.size == 0:
                return hidden
            new = self.repair(hidden, lp, bad)
            if new.size == 0:  # nothing left to hide nearby: ask the exact audit
                _, bad = _audit_lp(self.rel.matrix, self.v, hidden, self.upper, hidden & ~proven,
                                   self.width, self.stats, exact=True, seen=seen, tick=tick)
                if bad.size:
                    raise RuntimeError(f"measure {measure}: cannot protect {self.rel.cell(bad[0])}")
                return hidden
            hidden[new] = True  # each round hides at least one cell: the loop ends
            if self.stats is not None:
                self.stats.repair_rounds += 1
        raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------
# Public entry points


def suppress(
    df: pl.DataFrame,
    dimensions: Sequence[Dimension],
    measures: Sequence[CountMeasure],
    *,
    width: int = 5,
    min_denominator: int = 20,
    stats: Stats | None = None,
) -> pl.DataFrame:
    """df with a Boolean ``<measure>_hidden`` column per non-public measure (values unchanged)."""
    rel = _relations(df, dimensions)
    masks: dict[str, np.ndarray] = {}
    for m in _ordered(measures):
        v = _values(df, m.name)
        _verify(rel, m.name, v)
        if m.rule == "public":
            continue
        primary = primary_mask(df, m, width=width, min_denominator=min_denominator)
        upper = _upper(df, m, masks)
        masks[m.name] = _Suppressor(rel, v, upper, width, stats).run(primary, m.name)
        if stats is not None:
            stats.primary[m.name] = int(primary.sum())
            stats.hidden[m.name] = int(masks[m.name].sum())
    if stats is not None:
        stats.cells = df.height
    out = df.with_columns(
        pl.Series(hidden_column(m.name), masks[m.name]) for m in measures if m.name in masks)
    # every hidden cell of out is proven protected by the suppressor's (stricter) test
    _remember_proof(_digest(out, dimensions, measures, width, min_denominator))
    return out


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
    width: int = 5,
    min_denominator: int = 20,
    stats: Stats | None = None,
    max_findings: int | None = None,
    lp: bool = True,
) -> list[Finding]:
    """Every hidden cell an attacker can pin to an interval narrower than ``min(width, d)``, and
    every published cell the primary rule hides. Empty list: safe to publish.
    max_findings: stop after that many (a failing release is then judged faster).
    lp=False: the relations and the primary rule only (the intervals are proven elsewhere)."""
    rel = _relations(df, dimensions)
    masks = {m.name: _hidden_of(df, m) for m in measures if m.rule != "public"}
    findings: list[Finding] = []
    for m in _ordered(measures):
        v = _values(df, m.name)
        _verify(rel, m.name, v)
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
        tick = _Ticker(f"audit of {m.name}")
        tick(f"{int(hidden.sum()):,} hidden cells", force=True)
        system, bad = _audit_lp(rel.matrix, v, hidden, upper, hidden, width, stats,
                                exact=True, limit=left, tick=tick)
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
    width: int = 5,
    min_denominator: int = 20,
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

