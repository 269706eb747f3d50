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
``series_audit(df, neighbours, ...)``        findings of df together with the releases it will be
                                              compared with (label -> release): differences pinned
                                              to 1..width-1, hidden cells narrowed (``series.py``).
``protect_series(df, neighbours, ...)``       df with more cells hidden until series_audit passes.
``check_series(df, neighbours, ...)``         raises ``DisclosureError`` on any series finding.
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
* the LPs are persistent HiGHS models (``highs.py``; components packed into models of about
  4,000 variables), re-solved warm from the last basis: a changed objective costs a few hundred
  pivots instead of thousands, a changed bound a few dozen;
* the groups share no variable, so they are solved side by side on the machine's cores (up to 4
  threads; HiGHS releases the GIL while it solves). Each group's result depends on its own model
  alone, so the mask is the same on any number of threads (a test shows it);
* "push" LPs find witnesses for many cells at once: each open cell gets a direction s_i (the side
  where it can still reach the width) and the LP maximises ``sum(s_i x_i / need_i)``, after the
  first rounds with each x_i bounded at its need (so one cell cannot win at the expense of the
  others). Repeated while a round resolves more cells than the reach tests below would in its
  time (at least 4, or 1 % of the open cells);
* "reach" tests for the rest: the open cells' bounds are set to their targets (x_i at least
  ``lo + min(width, d)`` going up, at most ``hi - min(width, d)`` going down) and the model solved for
  feasibility, 16 cells spread over the model at once, split in halves while infeasible;
* only a cell that cannot reach alone gets exact max and min LPs (objective +-x_i, one cell per
  component per LP). These are the unprotected cells, reported with their exact interval.
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
2. The audit above (the same exact test: a cell is protected exactly when its LP interval is
   wide enough, so no cell gets a partner it does not need).
3. Repairs priced by LP duals: for each failing cell, the row duals of its exact LPs give the rate
   at which its bound would move if a published cell c became free (``duals . column_c``); a cell
   with a nonzero rate and room to move that way (down to 0, up to d) helps. A greedy cover hides
   cells helping the most failing cells: nonzero before zero, no new partner needed first, then
   enough gain for the shortfall, then the smallest value. Back to 1 (new cells may need partners).
   Only a sample of the failing cells (``lp.EXACT_SAMPLE``, spread over the release) gets exact
   LPs in a round: a few repairs usually fix hundreds of failing cells at once (a hidden fylke
   total frees every kommune below it), and exact LPs cost about as much as all the rest of the
   audit (at 250,000 persons: 1,122 failing cells, 2,244 exact LPs, 77 of 120 s; fixed by 15
   cells). The cells left out stay unproven and are tested again next round. ``protect_series``
   does the same with its rounds, and settles only on a round that examined every failing cell.
   Cells already proven keep their proof (adding hidden cells only widens intervals: every old
   witness stays feasible with the new cells at their true values), and so do the witnesses.
The loop ends: each round hides at least one cell, and hiding everything is safe. The result
passes ``audit`` by construction (the same test); the tests check it anyway, and
tests/test_disclosure_lp.py against an independent slow LP.
"""

from stat19.disclosure.audit import audit, check_release
from stat19.disclosure.relations import Relations, build_relations
from stat19.disclosure.rules import (MIN_DENOMINATOR, WIDTH, CountMeasure, Dimension, DisclosureError, Finding,
                                     RelationError, Stats, hidden_column, primary_mask)
from stat19.disclosure.secondary import suppress
from stat19.disclosure.series import SERIES_RULE, check_series, protect_series, series_audit

__all__ = [
    "MIN_DENOMINATOR",
    "WIDTH",
    "CountMeasure",
    "Dimension",
    "DisclosureError",
    "Finding",
    "RelationError",
    "Relations",
    "SERIES_RULE",
    "Stats",
    "audit",
    "build_relations",
    "check_series",
    "check_release",
    "hidden_column",
    "primary_mask",
    "protect_series",
    "series_audit",
    "suppress",
]
