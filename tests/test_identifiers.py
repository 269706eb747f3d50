"""Person identifiers: generation, both check-digit models, and the SQL macros agreeing with Python."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stat19.db import configure
from stat19.identifiers import KINDS, birth_date, check_model, is_valid, kind, make_ids, sex

W1 = [3, 7, 6, 1, 8, 9, 4, 5, 2]
W2 = [5, 4, 3, 2, 7, 6, 5, 4, 3, 2]

dates = st.dates(min_value=dt.date(1854, 1, 1), max_value=dt.date(2039, 12, 31))
sexes = st.sampled_from(["male", "female"])


def one(kind_: str, model: str, day: dt.date, sex_: str, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return str(make_ids(rng, np.array([np.datetime64(day)]), np.array([sex_]), kind=kind_, model=model)[0])


@settings(max_examples=300, deadline=None)
@given(kind_=st.sampled_from(KINDS), model=st.sampled_from(["old", "new"]), day=dates, sex_=sexes, seed=st.integers(0, 2**32))
def test_every_generated_identifier_validates_as_its_kind(kind_, model, day, sex_, seed):
    if model == "new" and kind_ != "fhnr":
        day = max(day, dt.date(2000, 1, 1))  # new-model numbers are issued from 2032: recent births
    identifier = one(kind_, model, day, sex_, seed)
    assert len(identifier) == 11 and identifier.isdigit()
    assert is_valid(identifier)
    assert kind(identifier) == kind_
    if model == "old" and kind_ in ("fnr", "dnr", "synthetic", "synthetic_dnr"):
        assert birth_date(identifier) == day
        assert sex(identifier) == sex_


@settings(max_examples=200, deadline=None)
@given(model=st.sampled_from(["old", "new"]), day=dates, sex_=sexes, seed=st.integers(0, 2**32),
       position=st.integers(0, 10), delta=st.integers(1, 9))
def test_any_single_digit_change_of_a_fodselsnummer_is_caught(model, day, sex_, seed, position, delta):
    identifier = one("fnr", model, day, sex_, seed)
    changed = identifier[:position] + str((int(identifier[position]) + delta) % 10) + identifier[position + 1:]
    assert not is_valid(changed)


def _k1_k2_old(nine: str) -> str:
    k1 = (11 - sum(w * int(c) for w, c in zip(W1, nine)) % 11) % 11
    k2 = (11 - sum(w * int(c) for w, c in zip(W2, nine + str(k1))) % 11) % 11
    return "" if 10 in (k1, k2) else f"{k1}{k2}"


def test_hand_computed_examples():
    # 010190 123 ..: S1 = 0+7+0+1+72+0+4+10+6 = 100, 100 mod 11 = 1, K1 = 10 -> never issued (old model)
    assert _k1_k2_old("010190123") == ""
    # 150574 008 ..: S1 = 3+35+0+5+56+36+0+0+16 = 151, mod 11 = 8, K1 = 3;
    #   S2 = 5+20+0+10+49+24+0+0+24+6 = 138, mod 11 = 6, K2 = 5 -> 15057400835 (old model; 9th digit 8: female)
    assert _k1_k2_old("150574008") == "35"
    assert is_valid("15057400835") and check_model("15057400835") == "old"
    assert birth_date("15057400835") == dt.date(1974, 5, 15) and sex("15057400835") == "female"
    # new model: K1 may leave a remainder of 1, 2 or 3. With K1 = 4: S1 + 4 = 155, mod 11 = 1;
    #   S2 = 138 - 6 + 2*4 = 140, mod 11 = 8, K2 = 3 -> 15057400843
    assert is_valid("15057400843") and check_model("15057400843") == "new"
    assert sex("15057400843") is None
    # D-number of the same person: day + 40 -> 55057400835 with its own check digits
    d_number = "550574008" + _k1_k2_old("550574008")
    assert kind(d_number) == "dnr" and birth_date(d_number) == dt.date(1974, 5, 15)
    # H-number: month + 40; FH-number: first digit 8 or 9, no date
    h_number = "154574008" + _k1_k2_old("154574008")
    assert kind(h_number) == "hnr" and birth_date(h_number) is None
    fh = next(n + _k1_k2_old(n) for n in (f"8{i:08d}" for i in range(100)) if _k1_k2_old(n))
    assert kind(fh) == "fhnr"
    for bad in ["", "1505740083", "150574008355", "1505740083a", "32057400835", None]:
        assert not is_valid(bad)


def _sql(values: list) -> list[tuple]:
    con = duckdb.connect()
    configure(con, None)
    return con.execute(
        "SELECT s19_id_valid(x), s19_id_kind(x), s19_id_birth_date(x), s19_id_sex(x) FROM unnest(?) AS t(x)", [values]
    ).fetchall()


candidates = st.one_of(
    st.builds(one, st.sampled_from(KINDS), st.sampled_from(["old", "new"]), dates, sexes, st.integers(0, 2**32)),
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.text(alphabet="0123456789", min_size=0, max_size=13),
    st.text(min_size=0, max_size=12),
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(candidates, min_size=1, max_size=40))
def test_the_sql_macros_agree_with_python(values):
    for value, (valid, kind_, born, sex_) in zip(values, _sql(values)):
        assert bool(valid) == is_valid(value), value
        assert kind_ == kind(value), value
        assert born == birth_date(value), value
        assert sex_ == sex(value), value


def test_the_sql_macros_handle_null():
    assert _sql([None]) == [(False, None, None, None)]


def test_make_ids_makes_distinct_valid_numbers_fast_enough_for_a_population():
    rng = np.random.default_rng(1)
    n = 200_000
    births = np.datetime64("1940-01-01") + rng.integers(0, 365 * 80, n).astype("timedelta64[D]")
    ids = make_ids(rng, births, rng.choice(np.array(["male", "female"]), n))
    assert len(set(ids.tolist())) == n
    sample = ids[rng.integers(0, n, 2000)].tolist()
    assert all(is_valid(i) for i in sample)
    with pytest.raises(ValueError):
        make_ids(rng, births[:2], np.array(["male", "other"]))
