"""A persistent HiGHS model of one group of audit components, re-solved warm.

The audit asks the same LP (the relations of the hidden cells, published cells as constants) many
questions that differ only in the objective or in one cell's bounds. Solving each from scratch
(``scipy.optimize.linprog``) repeats the whole simplex every time; keeping the model and its basis
makes a changed objective a few hundred pivots instead of a few thousand, and a changed bound (can
cell j reach t?) a few dozen. HiGHS is reached through the ``highspy`` package; where it is
missing, every solve falls back on ``linprog`` (same answers, cold, much slower), with a warning
the first time.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

try:
    import highspy
except ImportError:  # pragma: no cover - a broken install; pyproject.toml requires it
    highspy = None


if highspy is not None:
    # every variable is bounded, so "unbounded or infeasible" means infeasible
    _INFEASIBLE = (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible)

    class _Highs(highspy.Highs):
        """highspy.Highs, silenced before its constructor enables callbacks: that step prints
        HiGHS's banner to stdout (once per process) while output is still on."""

        def enableCallbacks(self) -> None:
            self.setOptionValue("output_flag", False)
            super().enableCallbacks()

_warned = False


def _warn_cold() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn("the highspy package is not installed: the disclosure audit solves every LP cold "
                      "with scipy's linprog (same answers, much slower); pip install highspy", RuntimeWarning,
                      stacklevel=3)


class LPFailed(RuntimeError):
    pass


class Model:
    """min cost.x subject to A x = b, lower <= x <= upper, kept between solves.
    ``solve`` returns x, or None when infeasible; anything else raises ``LPFailed``."""

    def __init__(self, a: sp.csc_array, b: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        self.a, self.b = a, b
        self.n = a.shape[1]
        self.cost = np.zeros(self.n)
        self.lower, self.upper = lower.astype(float).copy(), upper.astype(float).copy()
        self.row_dual: np.ndarray | None = None
        self._h = None
        self._idx = np.arange(self.n, dtype=np.int32)
        if highspy is None:
            _warn_cold()
        else:
            lp = highspy.HighsLp()
            lp.num_col_, lp.num_row_ = self.n, a.shape[0]
            lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = self.n, a.shape[0]
            lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
            lp.a_matrix_.start_ = a.indptr.astype(np.int32)
            lp.a_matrix_.index_ = a.indices.astype(np.int32)
            lp.a_matrix_.value_ = a.data.astype(float)
            lp.col_cost_ = self.cost.copy()
            lp.col_lower_, lp.col_upper_ = self.lower.copy(), self.upper.copy()
            lp.row_lower_, lp.row_upper_ = b.astype(float).copy(), b.astype(float).copy()
            h = _Highs()
            # presolve costs more than it saves on these sparse, well-scaled LPs, and would drop
            # the basis between solves
            h.setOptionValue("presolve", "off")
            h.passModel(lp)
            self._h = h

    def set_cost(self, cost: np.ndarray) -> None:
        self.cost = cost.astype(float)
        if self._h is not None:
            self._h.changeColsCost(self.n, self._idx, self.cost)

    def set_bounds(self, cols: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> None:
        cols = np.asarray(cols, dtype=np.int32)
        if cols.size == 0:
            return
        self.lower[cols], self.upper[cols] = lower, upper
        if self._h is not None:
            self._h.changeColsBounds(cols.size, cols, self.lower[cols].copy(), self.upper[cols].copy())

    def solve(self, duals: bool = False) -> np.ndarray | None:
        if self._h is None:
            res = linprog(self.cost, A_eq=self.a, b_eq=self.b, bounds=np.column_stack([self.lower, self.upper]),
                          method="highs", options={"presolve": False})
            if res.status == 2:
                return None
            if res.status != 0:
                raise LPFailed(f"audit LP failed: {res.message}")
            self.row_dual = res.eqlin.marginals if duals else None
            return res.x
        h = self._h
        h.run()
        status = h.getModelStatus()
        if status in _INFEASIBLE:
            return None
        if status != highspy.HighsModelStatus.kOptimal:
            # a warm start can end in a numerical dead end: once more from scratch
            h.clearSolver()
            h.run()
            status = h.getModelStatus()
            if status in _INFEASIBLE:
                return None
            if status != highspy.HighsModelStatus.kOptimal:
                raise LPFailed(f"audit LP failed: {h.modelStatusToString(status)}")
        sol = h.getSolution()
        # linprog's sign convention (eqlin.marginals): d objective / d b
        self.row_dual = np.asarray(sol.row_dual) if duals else None
        return np.asarray(sol.col_value)
