"""Issue 11: two releases together must not disclose what neither does alone.

An independent attacker (tests/series_attack.py: its own LP over both releases, scipy's linprog,
nothing shared with stat19.disclosure.lp or series) is run on hand-made pairs (it must catch the
two leaks of the issue), on two consecutive vaccine_coverage releases computed from a synthetic
landing (today's single-release suppression leaks; with the series protection nothing is left),
and on random hierarchical pairs against ``protect_series`` and ``series_audit``."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from series_attack import AttackStats, Leak, attack
from test_disclosure import CASES, POP, VAX, Dims, hierarchies, release

from stat19.cli import main
from stat19.disclosure import (CountMeasure, Dimension, DisclosureError, audit, check_series, protect_series,
                               series_audit, suppress)

# --------------------------------------------------------------------------------------------
# the attacker on the two cases, built by hand

GEO = Dimension("geo", {"a": "T", "b": "T", "c": "T"})


def table(values: dict[str, int], hidden: set[str]) -> pl.DataFrame:
    """One kommune-like level under a total T, cases and their hidden mask."""
    codes = [*values, "T"]
    return pl.DataFrame({"geo": codes, "cases": [*values.values(), sum(values.values())],
                         "cases_hidden": [c in hidden for c in codes]})


def leaks_of(new: pl.DataFrame, old: pl.DataFrame) -> set[tuple]:
    return {(leak.kind, leak.cell["geo"], leak.value, leak.low, leak.high)
            for leak in attack(new, old, [GEO], [CASES])}


def test_a_published_count_that_grows_by_one_discloses_one_person() -> None:
    old = table({"a": 30, "b": 27}, set())
    new = table({"a": 31, "b": 27}, set())
    assert leaks_of(new, old) == {("published difference", "a", 1, 1.0, 1.0),
                                  ("published difference", "T", 1, 1.0, 1.0)}
    # a change of the width or more is no leak, and neither is no change
    assert leaks_of(table({"a": 35, "b": 27}, set()), old) == set()
    assert leaks_of(old, old) == set()


def test_a_protection_that_gives_up_is_withheld_by_the_gate(monkeypatch) -> None:
    """When protect_series stops without settling (no rounds left), the release it returns still
    leaks, and check_series must run its LPs on it and refuse it, not take it as proven."""
    from stat19.disclosure import series

    # the second case (next test) with a and b changed by one each way, so that the new
    # release is not the neighbour's table again (whose mask it would start from)
    old = table({"a": 3, "b": 7, "c": 10}, {"a", "b"})
    new = table({"a": 4, "b": 6, "c": 10}, {"a", "c"})
    monkeypatch.setattr(series, "_MAX_ROUNDS", 0)  # no partner rounds, no combined audit rounds
    out = protect_series(new, {"old": old}, [GEO], [CASES])
    assert out["cases_hidden"].to_list() == [True, False, True, False]  # left as it was: it leaks
    with pytest.raises(DisclosureError):
        check_series(out, {"old": old}, [GEO], [CASES])
    monkeypatch.setattr(series, "_MAX_ROUNDS", 50)
    settled = protect_series(new, {"old": old}, [GEO], [CASES])
    check_series(settled, {"old": old}, [GEO], [CASES])  # a settled protection passes the gate


def test_a_cell_hidden_yesterday_and_published_today_pins_yesterdays_value() -> None:
    """Yesterday a (3) and its partner b hidden, today a and c: each release passes its audit,
    but b published today at 7 (not smaller than yesterday's) and c not smaller than yesterday's
    published 10 leave a exactly 3 on both days."""
    values = {"a": 3, "b": 7, "c": 10}
    old, new = table(values, {"a", "b"}), table(values, {"a", "c"})
    assert audit(old, [GEO], [CASES]) == [] and audit(new, [GEO], [CASES]) == []
    found = leaks_of(new, old)
    assert ("hidden old", "a", 3, 3.0, 3.0) in found
    assert ("hidden new", "a", 3, 3.0, 3.0) in found
    # the same mask on both days gives the attacker nothing the single audit did not
    assert leaks_of(old, old) == set()


def test_a_hidden_cell_whose_difference_is_pinned_is_a_leak() -> None:
    """a and b hidden on both days, T and c published: T grew by 2 and c did not move, so a and
    b together grew by 2; the attacker knows each only grew, so each grew by 0..2."""
    old = table({"a": 3, "b": 7, "c": 10}, {"a", "b"})
    new = table({"a": 5, "b": 7, "c": 10}, {"a", "b"})
    found = {(kind, geo) for kind, geo, *_ in leaks_of(new, old)}
    assert {("difference", "a"), ("difference", "b"), ("published difference", "T")} <= found


SHARE = [POP, VAX]


def shares(pop: list[int], vax: list[int], hidden: list[bool]) -> tuple[pl.DataFrame, Dimension]:
    geo = Dimension("geo", {f"k{i}": "T" for i in range(1, len(pop))})
    codes = [f"k{i}" for i in range(1, len(pop))] + ["T"]
    return pl.DataFrame({"geo": codes, "population": pop, "vaccinated": vax, "vaccinated_hidden": hidden}), geo


def test_a_bound_derived_through_todays_margins_is_not_a_priori() -> None:
    """(Helper A's hand-made hole.) k1: 2 of 2 yesterday, 2 of 5 today, hidden both days; the
    total T (32) did not move, so no cell did, and today's k1 is yesterday's, at most 2: 3 or more
    of 5 unvaccinated. Yesterday's population of 2 bounds today's k1 only through today's
    published T, so it is a finding, and hiding T protects it."""
    old, geo = shares([2, 30, 30, 62], [2, 20, 10, 32], [True, True, True, False])
    new, _ = shares([5, 30, 30, 65], [2, 20, 10, 32], [True, True, True, False])
    assert audit(old, [geo], SHARE) == [] and audit(new, [geo], SHARE) == []
    leaks = attack(new, old, [geo], SHARE)
    assert ("hidden new", "k1", 0.0, 2.0) in {(x.kind, x.cell["geo"], x.low, x.high) for x in leaks}
    found = series_audit(new, {"old": old}, [geo], SHARE)
    assert {"geo": "k1", "release": "new"} in [f.cell for f in found]
    protected = protect_series(new, {"old": old}, [geo], SHARE)
    assert series_audit(protected, {"old": old}, [geo], SHARE) == [] and not attack(protected, old, [geo], SHARE)


def test_what_no_mask_of_today_avoids_is_not_a_finding() -> None:
    """Yesterday k1 3 of 10 and k2 4 of 10 (hidden), T 7 published: k1 lies in [0, 7]. Today
    both populations fell (4 and 5) with nothing vaccinated since, and today hides everything.
    A count that did not fall is not above today's public population, so yesterday's k1 is
    now in [2, 4]: narrowed, but by what yesterday published and today's populations (public),
    not by any cell today could hide. Demanding it would withhold the product every day after
    (yesterday stays the last release published); so it is no finding, and protection does
    not give up. The attacker without its baseline shows the narrowing is real."""
    old, geo = shares([10, 10, 20], [3, 4, 7], [True, True, False])
    new, _ = shares([4, 5, 9], [3, 4, 7], [True, True, True])
    assert audit(old, [geo], SHARE) == [] and audit(new, [geo], SHARE) == []
    narrowed = {(x.kind, x.cell["geo"], x.low, x.high) for x in attack(new, old, [geo], SHARE, baseline=False)}
    assert ("hidden old", "k1", 2.0, 4.0) in narrowed
    assert series_audit(new, {"old": old}, [geo], SHARE) == []
    assert protect_series(new, {"old": old}, [geo], SHARE)["vaccinated_hidden"].to_list() == [True] * 3


# --------------------------------------------------------------------------------------------
# the attack on real releases: vaccine_coverage on two consecutive days of a synthetic landing,
# loaded delivery by delivery and linked as test_specs does (3x faster than `stat19 run`, which
# would also compute every product)

KEY = "series attack test key, not a secret, 32 bytes or more"
START, DAYS, PERSONS, SEED = date(2026, 1, 5), 7, 3000, 11
R = date(2026, 1, 11)  # vaccinations of the 9th-11th are first known on the 11th


@pytest.fixture(scope="module")
def linked_home(tmp_path_factory) -> Path:
    """A synthetic landing loaded delivery by delivery and linked (the products' view)."""
    from stat19.linkage import link
    from test_ingest import Env

    root = tmp_path_factory.mktemp("series")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STAT19_PSEUDONYM_KEY", KEY)
        assert main(["synth", "--persons", str(PERSONS), "--start", START.isoformat(), "--days", str(DAYS),
                     "--seed", str(SEED), "--out", str(root / "landing"), "--no-delivery-faults"]) == 0
        env = Env(root)
        deliveries = sorted((d.name, s.name) for s in env.landing.iterdir() if s.is_dir()
                            for d in s.iterdir() if d.is_dir())
        for day, source in deliveries:
            outcome = env.load(source, day)
            assert outcome.status == "loaded", outcome.message
        link(env.home)
    return env.home


@pytest.fixture(scope="module")
def coverage(linked_home):
    """vaccine_coverage on R-1 and on R, each suppressed on its own (today's code)."""
    from stat19.linkage import linked_connection
    from stat19.products import compute_release
    from stat19.products.engine import disclosure_dimensions, disclosure_measures
    from stat19.products.spec import get_product

    spec = get_product("vaccine_coverage")
    with linked_connection(linked_home) as con:
        old, _ = compute_release(con, spec, R - timedelta(days=1))
        new, _ = compute_release(con, spec, R)
    return {"spec": spec, "old": old, "new": new,
            "dimensions": disclosure_dimensions(spec, new), "measures": disclosure_measures(spec)}


SERIES = pytest.mark.xdist_group("disclosure_series_landing")  # one worker builds the landing once


def _report(leaks: list[Leak], stats: AttackStats, seconds: float) -> str:
    kinds: dict[tuple[str, str], int] = {}
    for leak in leaks:
        kinds[leak.measure, leak.kind] = kinds.get((leak.measure, leak.kind), 0) + 1
    return f"{len(leaks)} leaks {kinds} in {seconds:.0f}s, {stats.lps} LPs, largest component {stats.largest_component}"


@SERIES
@pytest.mark.slow
def test_todays_releases_differenced_disclose_small_counts(coverage) -> None:
    """Without series protection (today's code before issue 11) the attacker derives
    differences of 1..4 between R-1 and R: published ones, and hidden ones the LP pins."""
    stats, clock = AttackStats(), time.perf_counter()
    leaks = attack(coverage["new"], coverage["old"], coverage["dimensions"], coverage["measures"],
                   cells=False, stats=stats)
    print("\nunprotected:", _report(leaks, stats, time.perf_counter() - clock))
    assert leaks, "two consecutive releases should leak without the series protection"
    assert all(1 <= abs(leak.value) <= 4 for leak in leaks if leak.kind == "published difference")
    assert any(leak.kind == "difference" for leak in leaks), "no difference derived by LP"


@SERIES
@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("STAT19_SLOW_SERIES") != "1",
                    reason="over 10 minutes on 2 cores (protecting a whole vaccine_coverage pair); "
                    "STAT19_SLOW_SERIES=1 runs it; open in issue 11")
def test_protected_releases_differenced_disclose_nothing(coverage, linked_home) -> None:
    """With compute_release(..., neighbours={R-1}) no difference of 1..4 is derivable."""
    from stat19.linkage import linked_connection
    from stat19.products import compute_release

    clock = time.perf_counter()
    with linked_connection(linked_home) as con:
        protected, meta = compute_release(con, coverage["spec"], R, neighbours={"R-1": coverage["old"]})
    print(f"\ncompute_release with the series protection: {time.perf_counter() - clock:.0f}s")
    new = coverage["new"]
    assert protected.drop(pl.col("^.*_hidden$")).equals(new.drop(pl.col("^.*_hidden$")))  # values unchanged
    for m in coverage["measures"]:
        h = f"{m.name}_hidden"
        assert not (new[h] & ~protected[h]).any(), f"{h}: the protection un-hid a cell"
    assert meta["series"]["protected_against"] == ["R-1"]
    stats, clock = AttackStats(), time.perf_counter()
    leaks = attack(protected, coverage["old"], coverage["dimensions"], coverage["measures"],
                   cells=False, stats=stats)
    print("\nprotected:", _report(leaks, stats, time.perf_counter() - clock))
    assert leaks == [], "\n".join(map(str, leaks[:20]))


# --------------------------------------------------------------------------------------------
# random pairs of hierarchical tables with small changes

MEASURES = [POP, VAX, CASES]
STEP = st.sampled_from([0, 0, 0, 0, 1, 1, 2, 3, 5, -1])


@st.composite
def pairs(draw: st.DrawFn) -> tuple[list[Dimension], pl.DataFrame, pl.DataFrame]:
    """(dimensions, old release, new release): the new one's leaves are the old ones plus
    small changes, mostly increases (a cumulative count), sometimes a decrease."""
    dims, values = draw(hierarchies())
    shape = values["population"].shape
    size = int(np.prod(shape))

    def steps() -> np.ndarray:
        return np.array(draw(st.lists(STEP, min_size=size, max_size=size))).reshape(shape)

    pop = np.maximum(values["population"] + draw(st.sampled_from([0, 1])) * steps(), 0)
    new = {"population": pop,
           "vaccinated": np.clip(values["vaccinated"] + steps(), 0, pop),
           "cases": np.maximum(values["cases"] + steps(), 0)}
    dimensions = [d for d, _ in dims]
    return dimensions, release(dims, values), release(dims, new)


def _as_findings(leaks: list[Leak], dimensions: list[Dimension]) -> set[tuple]:
    """The attacker's leaks named as series_audit names its findings."""
    out = set()
    for leak in leaks:
        where = ("release", "old") if leak.kind == "hidden old" else (
            ("release", "new") if leak.kind == "hidden new" else ("difference", "old -> new"))
        out.add((leak.measure, *(leak.cell[d.name] for d in dimensions), where))
    return out


def _findings(findings, dimensions: list[Dimension]) -> set[tuple]:
    out = set()
    for f in findings:
        where = ("release", f.cell["release"]) if "release" in f.cell else ("difference", f.cell["difference"])
        out.add((f.measure, *(f.cell[d.name] for d in dimensions), where))
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_protected_random_pairs_pass_the_series_audit_and_the_attacker(case) -> None:
    dimensions, old_raw, new_raw = case
    old = suppress(old_raw, dimensions, MEASURES)
    new = suppress(new_raw, dimensions, MEASURES)
    out = protect_series(new, {"old": old}, dimensions, MEASURES)  # never gives up (see below)
    assert out.select(new_raw.columns).equals(new_raw)  # values never change
    for m in ("vaccinated", "cases"):
        assert not (new[f"{m}_hidden"] & ~out[f"{m}_hidden"]).any()  # never un-hides
    assert series_audit(out, {"old": old}, dimensions, MEASURES) == []
    leaks = attack(out, old, dimensions, MEASURES)
    assert leaks == [], "\n".join(map(str, leaks))


def _merged(found: set[tuple]) -> set[tuple]:
    """series_audit names an old hidden cell pinned to its hidden new cell (difference known 0)
    once, as the new cell: an old cell reported with its new cell counts as that one."""
    new = {f[:-1] for f in found if f[-1] == ("release", "new")}
    return {f for f in found if not (f[-1] == ("release", "old") and f[:-1] in new)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs())
def test_series_audit_agrees_with_the_attacker_without_protection(case) -> None:
    """Each day suppressed on its own (today's code): the same leaky cells and differences. Both
    leave out what no mask of the new release avoids (the attacker's baseline)."""
    dimensions, old_raw, new_raw = case
    old = suppress(old_raw, dimensions, MEASURES)
    new = suppress(new_raw, dimensions, MEASURES)
    got = _merged(_findings(series_audit(new, {"old": old}, dimensions, MEASURES), dimensions))
    want = _merged(_as_findings(attack(new, old, dimensions, MEASURES), dimensions))
    assert got == want, f"series_audit only: {got - want}\nattacker only: {want - got}"


def test_the_random_pairs_do_leak_without_protection() -> None:
    """The pairs above are not trivially safe: some leak with today's suppression (so the two
    tests above check something). Drawn with a fixed seed."""
    rng = np.random.default_rng(5)
    leaky = 0
    for _ in range(10):
        leaves = {k: int(rng.integers(0, 30)) for k in "abc"}
        grown = {k: v + int(rng.choice([0, 0, 1, 2])) for k, v in leaves.items()}
        old = suppress(table(leaves, set()).drop("cases_hidden"), [GEO], [CASES])
        new = suppress(table(grown, set()).drop("cases_hidden"), [GEO], [CASES])
        leaky += bool(attack(new, old, [GEO], [CASES]))
    assert leaky >= 3


def test_protection_that_examines_a_sample_of_the_failing_cells_still_settles_safely(monkeypatch) -> None:
    """protect_series asks exact LPs of a sample of the failing cells per round (lp.EXACT_SAMPLE)
    and settles only on a whole answer. With a sample of one, on pairs where a round leaves
    failing cells unexamined, the protected release passes the series audit from scratch and
    the independent attacker (settling on a sample's answer alone fails here, and so does
    counting the unexamined cells as proven)."""
    from stat19.disclosure import series

    monkeypatch.setattr(series, "EXACT_SAMPLE", 1)
    unexamined = []
    failing = series._System.failing

    def spy(self, *args, **kwargs):
        out = failing(self, *args, **kwargs)
        unexamined.append(self.unexamined.size)
        return out

    monkeypatch.setattr(series._System, "failing", spy)
    geo = Dimension("geo", {f"k{i}": f"f{i % 3}" for i in range(12)} | {f"f{i}": "NO" for i in range(3)})
    sex = Dimension("sex", {"male": "total", "female": "total"})
    group = Dimension("group")  # independent tables: one cell hidden cannot fix them all
    dims = [(group, ["a", "b", "c"]), (geo, [f"k{i}" for i in range(12)]), (sex, ["male", "female"])]
    dimensions = [d for d, _ in dims]
    for seed in range(12):
        rng = np.random.default_rng(seed)
        before = rng.choice([0, 2, 6, 9, 25, 40], (3, 12, 2))
        after = before + rng.choice([0, 0, 0, 1, 2, 5], (3, 12, 2))
        old = suppress(release(dims, {"cases": before}), dimensions, [CASES])
        new = suppress(release(dims, {"cases": after}), dimensions, [CASES])
        out = protect_series(new, {"old": old}, dimensions, [CASES])
        assert series_audit(out, {"old": old}, dimensions, [CASES]) == []
        assert attack(out, old, dimensions, [CASES]) == []
    assert max(unexamined) > 0  # some round did leave failing cells for later


def test_the_same_table_again_starts_from_the_mask_its_twin_was_published_with() -> None:
    """R computed again from unchanged data (its inputs changed, its values did not) is
    protected against its own revision 1 too. It starts from revision 1's mask, so it is that
    release again (the publication then writes nothing) and not a revision 2 with other cells
    hidden. Without the twin's mask it would publish c and the total, which revision 1 hid."""
    values = {"a": 3, "b": 7, "c": 10}
    published = table(values, {"a", "b", "c", "T"})  # revision 1, hidden more widely (a neighbour's doing)
    again = suppress(table(values, set()).drop("cases_hidden"), [GEO], [CASES])
    assert again["cases_hidden"].to_list() != published["cases_hidden"].to_list()
    out = protect_series(again, {"2026-01-14 r1": published}, [GEO], [CASES])
    assert out["cases_hidden"].to_list() == published["cases_hidden"].to_list()
    check_series(out, {"2026-01-14 r1": published}, [GEO], [CASES])
