"""Tests of stat19.disclosure: primary rule, relations, secondary suppression, LP audit."""

from __future__ import annotations

import importlib
import itertools
import string

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stat19.disclosure import (
    CountMeasure,
    Dimension,
    DisclosureError,
    RelationError,
    audit,
    check_release,
    hidden_column,
    primary_mask,
    suppress,
)

# the module (stat19.disclosure.audit is the function of that name)
disclosure_audit = importlib.import_module("stat19.disclosure.audit")
POP = CountMeasure("population", "public")
VAX = CountMeasure("vaccinated", "share", "population")
CASES = CountMeasure("cases", "threshold")


# --------------------------------------------------------------------------------------------
# helpers: a release is built from its leaf cells, every total by summation


def codes_of(dim: Dimension, leaves: list[str]) -> list[str]:
    """The leaves and all their ancestors, leaves first."""
    out = list(leaves)
    for leaf in leaves:
        up = (dim.parent or {}).get(leaf)
        while up is not None:
            if up not in out:
                out.append(up)
            up = (dim.parent or {}).get(up)
    return out


def under(dim: Dimension, code: str, leaf: str) -> bool:
    while leaf is not None:
        if leaf == code:
            return True
        leaf = (dim.parent or {}).get(leaf)
    return False


Dims = list[tuple[Dimension, list[str]]]  # each dimension with its leaf codes


def release(dims: Dims, leaf_values: dict[str, np.ndarray]) -> pl.DataFrame:
    """Every combination of codes (leaves and totals); each count is the sum of its leaves."""
    codes = [codes_of(d, leaves) for d, leaves in dims]
    member = [np.array([[under(d, c, leaf) for leaf in leaves] for c in cs], dtype=np.int64)
              for (d, leaves), cs in zip(dims, codes, strict=True)]
    letters = string.ascii_lowercase[: len(dims)]
    spec = ",".join(f"{x.upper()}{x}" for x in letters) + f",{letters}->{letters.upper()}"
    cols: dict[str, list] = {d.name: [] for d, _ in dims}
    for combo in itertools.product(*codes):
        for (d, _), c in zip(dims, combo, strict=True):
            cols[d.name].append(c)
    out = pl.DataFrame(cols)
    for name, leaf in leaf_values.items():
        full = np.einsum(spec, *member, leaf)
        out = out.with_columns(pl.Series(name, full.reshape(-1)))
    return out


def hidden(out: pl.DataFrame, measure: str, **where: str) -> bool:
    row = out.filter(*[pl.col(k) == v for k, v in where.items()])
    assert row.height == 1, where
    return bool(row[hidden_column(measure)][0])


def one_dim(values: dict[str, int], total: str = "T") -> tuple[pl.DataFrame, list[Dimension]]:
    dim = Dimension("g", {k: total for k in values})
    df = pl.DataFrame({"g": [*values, total], "cases": [*values.values(), sum(values.values())]})
    return df, [dim]


# --------------------------------------------------------------------------------------------
# primary rule


def test_primary_threshold_and_share_rules() -> None:
    df = pl.DataFrame({
        "population": [0, 10, 20, 20, 20, 25, 25, 100, 100],
        "vaccinated": [0, 0, 17, 16, 15, 0, 4, 96, 5],
    })
    assert primary_mask(df, VAX).tolist() == [
        False,  # 0 of 0: nothing to disclose
        True,  # 0 < d < 20: "none of the 10" discloses each of them
        True,  # d - n = 3
        True,  # d - n = 4
        False,  # d - n = 5, d = 20
        False,  # zero is published
        True,  # 1..4
        True,  # the complement 4 is small
        False,
    ]
    assert not primary_mask(df, POP).any()
    assert primary_mask(df.rename({"vaccinated": "cases"}), CASES).tolist() == [
        False, False, False, False, False, False, True, False, False]


def test_share_above_denominator_is_rejected() -> None:
    df = pl.DataFrame({"population": [3], "vaccinated": [4]})
    with pytest.raises(RelationError, match="exceeds its denominator"):
        primary_mask(df, VAX)


# --------------------------------------------------------------------------------------------
# relations: the declared totals must hold


def test_totals_that_do_not_add_up_raise() -> None:
    df, dims = one_dim({"a": 3, "b": 9})
    bad = df.with_columns(
        pl.when(pl.col("g") == "T").then(13).otherwise(pl.col("cases")).alias("cases"))
    with pytest.raises(RelationError, match=r"'g': 'T'.*= 13 but its children sum to 12"):
        suppress(bad, dims, [CASES])
    with pytest.raises(RelationError, match="do not hold"):
        audit(bad.with_columns(pl.lit(False).alias("cases_hidden")), dims, [CASES])


def test_unknown_code_duplicate_cell_and_nulls_raise() -> None:
    df, dims = one_dim({"a": 3, "b": 9})
    with pytest.raises(RelationError, match="not in its hierarchy"):
        suppress(df.with_columns(pl.col("g").replace("b", "x")), dims, [CASES])
    with pytest.raises(RelationError, match="share their dimension codes"):
        suppress(pl.concat([df, df.head(1)]), dims, [CASES])
    with pytest.raises(RelationError, match="nulls"):
        suppress(df.with_columns(pl.lit(None, pl.Int64).alias("cases")), dims, [CASES])


def test_parent_map_cycle_rejected() -> None:
    with pytest.raises(ValueError, match="cycle"):
        Dimension("g", {"a": "b", "b": "a"})


def test_absent_rows_build_no_relation_but_present_ones_are_checked() -> None:
    # hiv has no kommune rows (forbidden level): its fylke rows are leaves of the release
    geo = Dimension("geo", {"0301": "03", "1101": "11", "1103": "11", "03": "NO", "11": "NO"})
    disease = Dimension("disease")
    rng = np.random.default_rng(3)
    df = release([(geo, ["0301", "1101", "1103"]), (disease, ["covid", "hiv"])],
                 {"cases": rng.integers(0, 30, (3, 2))})
    df = df.filter(~((pl.col("disease") == "hiv") & (pl.col("geo").str.len_chars() == 4)))
    out = suppress(df, [geo, disease], [CASES])
    assert audit(out, [geo, disease], [CASES]) == []
    broken = df.with_columns(
        pl.when((pl.col("geo") == "11") & (pl.col("disease") == "hiv")).then(pl.col("cases") + 1)
        .otherwise(pl.col("cases")).alias("cases"))
    with pytest.raises(RelationError):  # NO = 03 + 11 still holds for hiv and is checked
        suppress(broken, [geo, disease], [CASES])


# --------------------------------------------------------------------------------------------
# the audit


def test_audit_catches_primary_only_suppression_leaking_through_a_total() -> None:
    df, dims = one_dim({"a": 2, "b": 8, "c": 10})
    naive = df.with_columns((pl.col("cases").is_between(1, 4)).alias("cases_hidden"))
    findings = audit(naive, dims, [CASES])
    assert len(findings) == 1
    f = findings[0]
    assert (f.cell, f.value, f.low, f.high) == ({"g": "a"}, 2, 2.0, 2.0)
    assert f.reason == "exactly disclosed"
    with pytest.raises(DisclosureError, match=r"cases \[g=a\] = 2: exactly disclosed"):
        check_release(naive, dims, [CASES])


def test_audit_uses_bounds_not_only_exact_disclosure() -> None:
    # a + b = 3 (total 13 minus the published 10): each lies in [0, 3], narrower than 5
    df, dims = one_dim({"a": 1, "b": 2, "c": 10})
    two = df.with_columns(pl.col("g").is_in(["a", "b"]).alias("cases_hidden"))
    findings = audit(two, dims, [CASES])
    assert {(f.cell["g"], f.low, f.high) for f in findings} == {("a", 0.0, 3.0), ("b", 0.0, 3.0)}
    assert all(f.reason == "interval narrower than the width" for f in findings)
    out = suppress(df, dims, [CASES])
    assert out["cases_hidden"].to_list() == [True, True, True, False]  # c joins, total stays
    assert audit(out, dims, [CASES]) == []


def test_audit_catches_a_published_primary_cell() -> None:
    df, dims = one_dim({"a": 2, "b": 8, "c": 10})
    findings = audit(df.with_columns(pl.lit(False).alias("cases_hidden")), dims, [CASES])
    assert [(f.cell, f.reason) for f in findings] == [({"g": "a"}, "primary cell published")]


def test_a_priori_rule_small_denominator() -> None:
    # k1: 3 of 3 vaccinated (hidden: d < 20). With k2 hidden too, k1 can be anything in [0, 3]:
    # its whole a-priori range, protected although 3 < 5. k2 = 20 of 40 lies in [20, 23]: not.
    geo = Dimension("geo", {"k1": "F", "k2": "F"})
    df = pl.DataFrame(
        {"geo": ["k1", "k2", "F"], "population": [3, 40, 43], "vaccinated": [3, 20, 23]})
    both = df.with_columns(pl.col("geo").is_in(["k1", "k2"]).alias("vaccinated_hidden"))
    findings = audit(both, [geo], [POP, VAX])
    assert [(f.cell["geo"], f.low, f.high, f.required) for f in findings] == [
        ("k2", 20.0, 23.0, 5.0)]
    # k2 = 40 of 40: k1 >= 2, so [2, 3] does not span [0, 3]
    full = both.with_columns(pl.Series("vaccinated", [2, 40, 42]))
    findings = audit(full, [geo], [POP, VAX])
    k1 = [f for f in findings if f.cell["geo"] == "k1"]
    assert [(f.low, f.high, f.required, f.reason) for f in k1] == [
        (2.0, 3.0, 3.0, "range does not span [0, d]")]
    for table in (df, full.drop("vaccinated_hidden")):
        out = suppress(table, [geo], [POP, VAX])
        assert audit(out, [geo], [POP, VAX]) == []
        assert "population_hidden" not in out.columns


def test_hidden_denominator_does_not_bound_its_share() -> None:
    births = CountMeasure("births", "threshold")
    vip = CountMeasure("vip", "share", "births")
    geo = Dimension("geo", {"k1": "F", "k2": "F"})
    df = pl.DataFrame({"geo": ["k1", "k2", "F"], "births": [3, 40, 43], "vip": [3, 20, 23]})
    out = suppress(df, [geo], [vip, births])  # order of declaration does not matter
    assert audit(out, [geo], [births, vip]) == []
    assert hidden(out, "births", geo="k1") and hidden(out, "vip", geo="k1")


# --------------------------------------------------------------------------------------------
# secondary suppression


def test_zero_is_not_hidden_when_a_nonzero_partner_exists() -> None:
    df, dims = one_dim({"a": 2, "b": 0, "c": 7})
    out = suppress(df, dims, [CASES])
    assert out["cases_hidden"].to_list() == [True, False, True, False]
    assert audit(out, dims, [CASES]) == []


def test_zero_is_not_hidden_in_two_dimensions() -> None:
    # the cheapest-by-value partner of the 3 in its row and column would be a 0
    rows = Dimension("r", {"r1": "T", "r2": "T", "r3": "T"})
    cols = Dimension("c", {"c1": "T", "c2": "T", "c3": "T"})
    leaf = np.array([[3, 0, 9], [0, 0, 8], [11, 12, 30]])
    df = release([(rows, ["r1", "r2", "r3"]), (cols, ["c1", "c2", "c3"])], {"cases": leaf})
    out = suppress(df, [rows, cols], [CASES])
    assert audit(out, [rows, cols], [CASES]) == []
    assert not out.filter(pl.col("cases_hidden") & (pl.col("cases") == 0)).height


def test_a_single_small_cell_costs_one_rectangle() -> None:
    rows = Dimension("r", {"r1": "T", "r2": "T", "r3": "T"})
    cols = Dimension("c", {"c1": "T", "c2": "T", "c3": "T"})
    leaf = np.array([[2, 10, 20], [12, 14, 30], [50, 60, 70]])
    df = release([(rows, ["r1", "r2", "r3"]), (cols, ["c1", "c2", "c3"])], {"cases": leaf})
    out = suppress(df, [rows, cols], [CASES])
    hid = out.filter(pl.col("cases_hidden")).select("r", "c").rows()
    assert sorted(hid) == [("r1", "c1"), ("r1", "c2"), ("r2", "c1"), ("r2", "c2")]


def test_geography_levels_with_unknown_units_and_single_child_fylke() -> None:
    geo = Dimension("geo", {"0301": "03", "1101": "11", "1103": "11", "1106": "11", "9999": "99",
                            "03": "NO", "11": "NO", "99": "NO"})
    age = Dimension("age", {"0-17": "total", "18-64": "total", "65+": "total"})
    sex = Dimension("sex", {"male": "total", "female": "total"})
    rng = np.random.default_rng(7)
    pop = rng.integers(0, 60, (5, 3, 2))
    vax = rng.binomial(pop, 0.8)
    dims = [(geo, ["0301", "1101", "1103", "1106", "9999"]), (age, ["0-17", "18-64", "65+"]),
            (sex, ["male", "female"])]
    cases = rng.integers(0, 9, (5, 3, 2))
    df = release(dims, {"population": pop, "vaccinated": vax, "cases": cases})
    measures = [POP, VAX, CASES]
    out = suppress(df, [d for d, _ in dims], measures)
    assert out.select(df.columns).equals(df)
    assert audit(out, [d for d, _ in dims], measures) == []
    # Oslo: fylke 03 = kommune 0301, so each hides with the other
    for a, s in itertools.product(["0-17", "18-64", "65+", "total"], ["male", "female", "total"]):
        oslo = hidden(out, "cases", geo="03", age=a, sex=s)
        assert oslo == hidden(out, "cases", geo="0301", age=a, sex=s)
    assert out.equals(suppress(df, [d for d, _ in dims], measures))  # deterministic


def test_missing_hidden_column_is_an_error() -> None:
    df, dims = one_dim({"a": 2, "b": 8, "c": 10})
    with pytest.raises(RelationError, match="cases_hidden missing"):
        audit(df, dims, [CASES])


# --------------------------------------------------------------------------------------------
# property: random hierarchical tables


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[Dims, dict[str, np.ndarray]]:
    n_dims = draw(st.integers(2, 3))
    dims: Dims = []
    for i in range(n_dims):
        name = f"d{i}"
        last = i == n_dims - 1  # at most one partition (no total), as the last dimension
        kinds = ["flat", "two_level", "partition"] if last else ["flat", "two_level"]
        kind = draw(st.sampled_from(kinds))
        if kind == "partition":  # no total: time, vaccine group, disease
            leaves = [f"{name}p{k}" for k in range(draw(st.integers(1, 2)))]
            dims.append((Dimension(name), leaves))
        elif kind == "flat":
            leaves = [f"{name}l{k}" for k in range(draw(st.integers(2, 4)))]
            dims.append((Dimension(name, {leaf: f"{name}T" for leaf in leaves}), leaves))
        else:  # groups of 1-3 leaves under a total (a group of one: Oslo)
            parent: dict[str, str] = {}
            leaves = []
            for g in range(draw(st.integers(2, 3))):
                parent[f"{name}g{g}"] = f"{name}T"
                for k in range(draw(st.integers(1, 3 if n_dims == 2 else 2))):
                    parent[f"{name}g{g}l{k}"] = f"{name}g{g}"
                    leaves.append(f"{name}g{g}l{k}")
            dims.append((Dimension(name, parent), leaves))
    shape = tuple(len(leaves) for _, leaves in dims)
    size = int(np.prod(shape))
    small = st.integers(0, 6)
    def cells(elements: st.SearchStrategy) -> np.ndarray:
        return np.array(draw(st.lists(elements, min_size=size, max_size=size))).reshape(shape)

    pop = cells(st.one_of(small, st.integers(0, 40)))
    share = cells(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]))
    vaccinated = np.round(pop * share).astype(np.int64)
    cases = cells(st.one_of(small, st.integers(0, 30)))
    return dims, {"population": pop, "vaccinated": vaccinated, "cases": cases}


@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies())
def test_suppressed_random_tables_pass_the_audit(case: tuple[Dims, dict[str, np.ndarray]]) -> None:
    dims, values = case
    df = release(dims, values)
    dimensions = [d for d, _ in dims]
    measures = [POP, VAX, CASES]
    out = suppress(df, dimensions, measures)
    assert out.select(df.columns).equals(df)  # values never change
    assert "population_hidden" not in out.columns
    for m in ("vaccinated", "cases"):  # no 1-4 published
        assert not out.filter(pl.col(m).is_between(1, 4) & ~pl.col(f"{m}_hidden")).height
    rest, d = out["population"] - out["vaccinated"], out["population"]
    must = (rest.is_between(1, 4) | ((d > 0) & (d < 20))).to_numpy()
    assert not (must & ~out["vaccinated_hidden"].to_numpy()).any()  # the share rules
    assert audit(out, dimensions, measures) == []


def kommune_by_sex(seed: int, most: int) -> tuple[pl.DataFrame, Dimension, Dimension]:
    """12 kommuner in 3 fylker by sex, with totals; cases drawn from 0..most-1."""
    geo = Dimension("geo", {f"k{i}": f"f{i % 3}" for i in range(12)}
                    | {f"f{i}": "NO" for i in range(3)})
    sex = Dimension("sex", {"male": "total", "female": "total"})
    rng = np.random.default_rng(seed)
    df = release([(geo, [f"k{i}" for i in range(12)]), (sex, ["male", "female"])],
                 {"cases": rng.integers(0, most, (12, 2))})
    return df, geo, sex


def test_check_release_stops_early_on_a_bad_release() -> None:
    df, geo, sex = kommune_by_sex(11, 7)
    naive = df.with_columns(pl.col("cases").is_between(1, 4).alias("cases_hidden"))
    with pytest.raises(DisclosureError) as err:
        check_release(naive, [geo, sex], [CASES], max_findings=3)
    assert len(err.value.findings) == 3
    assert len(audit(naive, [geo, sex], [CASES])) > 3


def test_release_without_totals_hides_only_primary_cells() -> None:
    df = pl.DataFrame({"week": ["2026-W01", "2026-W02", "2026-W03"], "cases": [3, 0, 12]})
    out = suppress(df, [Dimension("week")], [CASES])
    assert out["cases_hidden"].to_list() == [True, False, False]
    assert audit(out, [Dimension("week")], [CASES]) == []


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hierarchies(), st.integers(0, 10_000))
def test_the_remembered_proof_never_hides_a_finding(case: tuple[Dims, dict[str, np.ndarray]],
                                                    pick: int) -> None:
    """check_release skips the LPs only for the release suppress proved: the same release passes,
    and with any one hidden cell published instead it judges exactly as the full audit does."""
    dims, values = case
    df = release(dims, values)
    dimensions = [d for d, _ in dims]
    measures = [POP, VAX, CASES]
    out = suppress(df, dimensions, measures)
    check_release(out, dimensions, measures)
    hidden_rows = np.flatnonzero(out["cases_hidden"].to_numpy())
    if hidden_rows.size == 0:
        return
    mask = out["cases_hidden"].to_numpy().copy()
    mask[hidden_rows[pick % hidden_rows.size]] = False
    tampered = out.with_columns(pl.Series("cases_hidden", mask))
    full = audit(tampered, dimensions, measures)
    if full:
        with pytest.raises(DisclosureError):
            check_release(tampered, dimensions, measures)
    else:
        check_release(tampered, dimensions, measures)


def test_check_release_solves_no_lp_for_the_release_suppress_proved(monkeypatch) -> None:
    df, geo, sex = kommune_by_sex(5, 9)
    out = suppress(df, [geo, sex], [CASES])
    assert out["cases_hidden"].sum() > 0

    def no_lp(*args, **kwargs):
        raise AssertionError("LP solved")

    monkeypatch.setattr("stat19.disclosure.lp._model", no_lp)
    audits: list[int] = []
    real = disclosure_audit._audit_lp
    monkeypatch.setattr(disclosure_audit, "_audit_lp", lambda *a, **k: audits.append(1) or real(*a, **k))
    check_release(out, [geo, sex], [CASES])  # proven: no LP
    # the same table built again (not the object suppress returned) is recognised too
    check_release(pl.DataFrame(out.to_dicts()), [geo, sex], [CASES])
    assert not audits
    # another mask: the full audit (here its elimination finds cells pinned without an LP)
    with pytest.raises((AssertionError, DisclosureError)):
        check_release(out.with_columns(pl.col("cases_hidden").not_()), [geo, sex], [CASES])
    assert audits
    with pytest.raises(AssertionError, match="LP solved"):  # another width: the full audit
        check_release(out, [geo, sex], [CASES], width=6)


def test_the_same_table_again_is_suppressed_without_lps(monkeypatch) -> None:
    """suppress remembers the masks it found (by a digest of relations, values, bounds, primary
    cells and width): a rerun, or a day on which nothing changed, costs no LP; any change does."""
    df, geo, sex = kommune_by_sex(23, 9)
    first = suppress(df, [geo, sex], [CASES])
    assert first["cases_hidden"].sum() > 0

    def no_lp(*args, **kwargs):
        raise AssertionError("LP solved")

    monkeypatch.setattr("stat19.disclosure.lp._model", no_lp)
    assert suppress(pl.DataFrame(df.to_dicts()), [geo, sex], [CASES]).equals(first)
    changed = df.with_columns(
        pl.when(pl.col("geo").is_in(["k0", "f0", "NO"]) & pl.col("sex").is_in(["male", "total"]))
        .then(pl.col("cases") + 1).otherwise(pl.col("cases")).alias("cases"))
    with pytest.raises(AssertionError, match="LP solved"):
        suppress(changed, [geo, sex], [CASES])
