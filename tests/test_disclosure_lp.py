"""The warm LP audit against an independent slow one: on random sparse hierarchical tables (most
cells 0-3, the small-population case), every hidden cell's interval, computed from scratch by
two ``linprog`` calls per cell over all relations without caps, is at least the protection width;
nothing 1-4 is published; values never change; and ``audit`` agrees with the slow LP on tables
with a cell published or hidden at random."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog
from test_disclosure import CASES, POP, VAX, Dims, hierarchies, release

from stat19.disclosure import WIDTH, audit, build_relations, hidden_column, highs, lp, suppress
from stat19.disclosure.highs import Model


@st.composite
def sparse_tables(draw: st.DrawFn) -> tuple[Dims, dict[str, np.ndarray]]:
    dims, values = draw(hierarchies())
    shape = values["population"].shape
    size = int(np.prod(shape))
    sparse = st.sampled_from([0, 0, 0, 1, 1, 2, 3, 4, 6, 25])
    pop = np.array(draw(st.lists(sparse, min_size=size, max_size=size))).reshape(shape)
    share = np.array(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=size, max_size=size)))
    vaccinated = np.round(pop * share.reshape(shape)).astype(np.int64)
    cases = np.array(draw(st.lists(sparse, min_size=size, max_size=size))).reshape(shape)
    return dims, {"population": pop, "vaccinated": vaccinated, "cases": cases}


def slow_intervals(df: pl.DataFrame, dims: list, measure: str, denominator: str | None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, required) of every hidden cell of measure: min and max by linprog over all
    relations, published cells fixed, hidden cells in [0, d] (d the published denominator) or
    [0, inf). Nothing shared with stat19.disclosure.lp."""
    matrix = build_relations(df, dims).matrix.toarray()
    v = df[measure].to_numpy().astype(float)
    hid = df[hidden_column(measure)].to_numpy()
    upper = df[denominator].to_numpy().astype(float) if denominator else np.full(v.size, np.inf)
    cells = np.flatnonzero(hid)
    a = matrix[:, cells]
    b = -(matrix[:, ~hid] @ v[~hid])
    rows = np.abs(a).sum(axis=1) > 0
    bounds = [(0.0, None if np.isinf(u) else u) for u in upper[cells]]
    lo, hi = np.empty(cells.size), np.empty(cells.size)
    for k in range(cells.size):
        if not rows.any() or not a[rows][:, k].any():  # in no relation: its a-priori range
            lo[k], hi[k] = 0.0, upper[cells[k]]
            continue
        for sense, out in ((1.0, lo), (-1.0, hi)):
            c = np.zeros(cells.size)
            c[k] = sense
            res = linprog(c, A_eq=a[rows], b_eq=b[rows], bounds=bounds, method="highs")
            if res.status == 3:  # unbounded
                out[k] = np.inf
                continue
            assert res.status == 0, res.message
            out[k] = res.x[k]
    return lo, hi, np.minimum(float(WIDTH), upper[cells])


MEASURES = [POP, VAX, CASES]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_tables())
def test_sparse_tables_are_protected_by_an_independent_lp(case: tuple[Dims, dict[str, np.ndarray]]) -> None:
    dims, values = case
    df = release(dims, values)
    dimensions = [d for d, _ in dims]
    out = suppress(df, dimensions, MEASURES)
    assert out.select(df.columns).equals(df)  # published cells hold the true values
    for m, den in (("vaccinated", "population"), ("cases", None)):
        assert not out.filter(pl.col(m).is_between(1, WIDTH - 1) & ~pl.col(hidden_column(m))).height
        lo, hi, required = slow_intervals(out, dimensions, m, den)
        assert (hi - lo >= required - 1e-6).all(), (m, lo, hi, required)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_tables(), st.integers(0, 10_000))
def test_audit_agrees_with_the_slow_lp(case: tuple[Dims, dict[str, np.ndarray]], pick: int) -> None:
    """A random mask (the suppressed one with one cell flipped): the audit's unprotected hidden
    cells are exactly those the slow LP finds narrower than the width, with the same interval."""
    dims, values = case
    df = release(dims, values)
    dimensions = [d for d, _ in dims]
    out = suppress(df, dimensions, MEASURES)
    mask = out["cases_hidden"].to_numpy().copy()
    mask[pick % mask.size] = ~mask[pick % mask.size]
    mask |= out["cases"].is_between(1, WIDTH - 1).to_numpy()  # only interval findings
    tampered = out.with_columns(pl.Series("cases_hidden", mask))
    findings = [f for f in audit(tampered, dimensions, [CASES])]
    lo, hi, required = slow_intervals(tampered, dimensions, "cases", None)
    cells = np.flatnonzero(mask)
    narrow = hi - lo < required - 1e-6
    keys = tampered.select(d.name for d in dimensions).rows()
    want = {keys[cells[k]]: (lo[k], hi[k]) for k in np.flatnonzero(narrow)}
    got = {tuple(f.cell[d.name] for d in dimensions): (f.low, f.high) for f in findings}
    assert got.keys() == want.keys()
    for key, (low, high) in got.items():
        assert abs(low - want[key][0]) < 1e-6 and abs(high - want[key][1]) < 1e-6


def _small_lp() -> tuple:
    """x0 + x1 = 3, x1 + x2 = 2, 0 <= x <= 2: a unique optimum for each objective below."""
    a = sp.csc_array(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]))
    return a, np.array([3.0, 2.0]), np.zeros(3), np.full(3, 2.0)


def _answers(model: Model) -> list:
    out = []
    for cost in ([1.0, 0.0, 0.0], [0.0, 0.0, -1.0]):
        model.set_cost(np.array(cost))
        out.append(model.solve(duals=True).round(9).tolist())
    model.set_bounds(np.array([0]), np.array([0.0]), np.array([0.0]))  # x0 = 0 forces x1 = 3 > 2
    out.append(model.solve())
    return out


def test_highspy_and_the_cold_linprog_fallback_agree_and_the_fallback_warns_once(monkeypatch) -> None:
    warm = _answers(Model(*_small_lp()))
    assert warm == [[1.0, 2.0, 0.0], [2.0, 1.0, 1.0], None]
    monkeypatch.setattr(highs, "highspy", None)
    monkeypatch.setattr(highs, "_warned", False)
    with pytest.warns(RuntimeWarning, match="highspy") as caught:
        cold = [_answers(Model(*_small_lp())) for _ in range(2)]
    assert len(caught) == 1
    assert cold == [warm, warm]


def test_the_solver_prints_nothing() -> None:
    """HiGHS writes its banner to the process's stdout (not Python's sys.stdout), in the middle of
    `stat19 run`'s progress lines, unless silenced before highspy.Highs enables its callbacks."""
    code = ("import numpy as np, scipy.sparse as sp; from stat19.disclosure.highs import Model; "
            "m = Model(sp.csc_array(np.ones((1, 2))), np.array([1.0]), np.zeros(2), np.ones(2)); m.solve()")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert (run.stdout, run.stderr) == ("", "")


def test_components_are_packed_greedily_into_groups_of_at_most_the_limit() -> None:
    limit = lp._GROUP_VARIABLES
    sizes = np.array([limit - 1000, 1000, 1, limit + 1000, 10, limit - 10, 5, limit])
    # fills up to the limit exactly; the larger one alone; then the rest greedily
    assert lp._pack(sizes).tolist() == [0, 0, 1, 2, 3, 3, 4, 5]
    assert lp._pack(np.array([limit + 1, 1, 1])).tolist() == [0, 1, 1]
    assert lp._pack(np.array([], np.int64)).tolist() == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sparse_tables())
def test_groups_solved_side_by_side_give_the_same_release_as_one_after_another(
        case: tuple[Dims, dict[str, np.ndarray]]) -> None:
    """Each component its own group (so there are many), solved on one thread, then on two: the
    same hidden cells and the same LPs, and the audit finds nothing."""
    from stat19.disclosure import Stats, secondary

    dims, values = case
    df = release(dims, values)
    dimensions = [d for d, _ in dims]
    outs, lps = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lp, "_GROUP_VARIABLES", 1)
        for threads in (1, 2):
            mp.setattr(lp, "_THREADS", threads)
            secondary._SOLVED.clear()  # else the second call reuses the first's masks
            stats = Stats()
            outs.append(suppress(df, dimensions, MEASURES, stats=stats))
            lps.append(stats.lps)
    assert outs[0].equals(outs[1]) and lps[0] == lps[1]
    assert audit(outs[1], dimensions, MEASURES) == []


def test_exact_lps_for_a_sample_of_the_failing_cells_still_protect_every_cell(monkeypatch) -> None:
    """The suppressor asks exact LPs (repair duals) of a sample of the cells failing the reach
    tests and leaves the rest unproven for the next round. With a sample of one, on tables where
    a round has several failing cells in independent tables, the cells left out are tested again and
    the result passes a full audit from scratch: leaving them out never publishes an unproven cell
    (marking them proven fails here)."""
    from stat19.disclosure import Dimension, secondary

    monkeypatch.setattr(secondary, "EXACT_SAMPLE", 1)
    cut = []
    run = lp._Audit.run

    def spy(self, targets, limit=None, sample=None):
        bad = run(self, targets, limit=limit, sample=sample)
        cut.append(int((targets & ~self.ok()).sum()) - int(bad.sum()))  # failing, left out
        return bad

    monkeypatch.setattr(lp._Audit, "run", spy)
    geo = Dimension("geo", {f"k{i}": f"f{i % 5}" for i in range(30)} | {f"f{i}": "NO" for i in range(5)})
    age = Dimension("age", {a: "total" for a in ("0-17", "18-64", "65-79", "80+")})
    sex = Dimension("sex", {"male": "total", "female": "total"})
    group = Dimension("group")  # no total: independent tables, so one repair cannot fix them all
    dims = [(group, ["a", "b", "c"]), (geo, [f"k{i}" for i in range(30)]),
            (age, ["0-17", "18-64", "65-79", "80+"]), (sex, ["male", "female"])]
    for seed in range(3):
        rng = np.random.default_rng(seed)
        df = release(dims, {"cases": rng.choice([0, 0, 0, 1, 2, 3, 6, 25], (3, 30, 4, 2))})
        secondary._SOLVED.clear()
        out = suppress(df, [group, geo, age, sex], [CASES])
        assert not out.filter(pl.col("cases").is_between(1, WIDTH - 1) & ~pl.col("cases_hidden")).height
        assert audit(out, [group, geo, age, sex], [CASES]) == []
    assert max(cut) > 0  # the sample did leave failing cells for a later round
