"""Tests for stat19.identifiers (the validator), stat19.synth.ids (the generator, make_ids) and
sql/macros/identifiers.sql (rules: shared/spec/domain.md).

The check-digit helper below is written independently of the module on purpose, so the
tests do not just repeat the code under test.
"""

from __future__ import annotations

import datetime
import doctest
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stat19 import identifiers as ids
from stat19.db import install_macros
from stat19.synth.ids import make_ids

SQL_FILE = Path(__file__).resolve().parents[1] / "sql" / "macros" / "identifiers.sql"
W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
DATED = ("fnr", "dnr", "synthetic", "synthetic_dnr")
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def complete(body9: str, remainder: int = 0) -> str | None:
    """body9 + K1 + K2 with (S1 + K1) % 11 == remainder (0 = old model); None if K1 or K2 is 10."""
    s1 = sum(w * int(c) for w, c in zip(W1, body9))
    k1 = (remainder - s1) % 11
    if k1 == 10:
        return None
    s2 = sum(w * int(c) for w, c in zip(W2, body9 + str(k1)))
    k2 = (-s2) % 11
    return None if k2 == 10 else f"{body9}{k1}{k2}"


def np_dates(dates: list[datetime.date]) -> np.ndarray:
    return np.array(dates, dtype="datetime64[D]")


# --------------------------------------------------------------------------- strategies

OLD_DATES = st.dates(datetime.date(1854, 1, 1), datetime.date(2039, 12, 31))


@st.composite
def generated_ids(draw) -> tuple[str, str, str, datetime.date, str]:
    """(id, kind, model, birth date, sex) made by make_ids."""
    kind = draw(st.sampled_from(ids.KINDS))
    model = draw(st.sampled_from(ids.MODELS))
    date = draw(OLD_DATES if model == "old" else st.dates(datetime.date(1800, 1, 1), datetime.date(2099, 12, 31)))
    sex = draw(st.sampled_from(["male", "female"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return make_ids(rng, np_dates([date]), np.array([sex]), kind, model)[0], kind, model, date, sex


@st.composite
def checked_bodies(draw) -> str:
    """11 digits with correct check digits around the date boundaries (day 00/29-32/40/71-72/80,
    month 00/02/04/12/13/40/41/52/53/80/81/92/93), under either model."""
    dd = draw(st.sampled_from([0, 1, 28, 29, 30, 31, 32, 39, 40, 41, 69, 70, 71, 72, 79, 80, 85, 99]))
    mm = draw(st.sampled_from([0, 1, 2, 4, 6, 9, 11, 12, 13, 39, 40, 41, 42, 52, 53, 79, 80, 81, 82, 92, 93, 99]))
    rest = draw(st.text("0123456789", min_size=5, max_size=5))
    done = complete(f"{dd:02d}{mm:02d}{rest}", draw(st.integers(0, 10)))  # 4-10: bad K1, good K2
    return done if done is not None else f"{dd:02d}{mm:02d}{rest}00"


@st.composite
def mutated(draw) -> str:
    s = draw(generated_ids())[0]
    i = draw(st.integers(0, 10))
    c = draw(st.one_of(st.sampled_from("0123456789"), st.characters(codec="utf-8")))
    return s[:i] + c + s[i + 1 :]


ANY_ID = st.one_of(
    generated_ids().map(lambda t: t[0]),
    checked_bodies(),
    mutated(),
    st.text("0123456789", min_size=11, max_size=11),
    st.text("0123456789", max_size=12),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.sampled_from(["", " 01817012309", "01817012309 ", "+1817012309", "٠١٨١٧٠١٢٣٠٩", "0181701230９"]),
    st.none(),
)


# --------------------------------------------------------------------------- make_ids


@FAST
@given(generated_ids())
def test_generated_ids_round_trip(case):
    check_generated(*case)


# The century-table edges and a leap day, for every kind and model.
EDGE_DATES = ["1854-01-01", "1899-12-31", "1900-01-01", "1939-12-31", "1940-01-01", "1999-12-31",
              "2000-01-01", "2000-02-29", "2039-12-31"]


@pytest.mark.parametrize("model", ids.MODELS)
@pytest.mark.parametrize("kind", ids.KINDS)
def test_generated_ids_at_edge_dates(kind, model):
    dates = np.array(EDGE_DATES * 2, dtype="datetime64[D]")
    sexes = np.array(["male"] * len(EDGE_DATES) + ["female"] * len(EDGE_DATES))
    made = make_ids(np.random.default_rng(3), dates, sexes, kind, model)
    for s, date, sex in zip(made, dates.astype(object), sexes):
        check_generated(s, kind, model, date, sex)


def check_generated(s: str, kind: str, model: str, date: datetime.date, sex: str) -> None:
    assert len(s) == 11 and s.isdigit()
    assert ids.is_valid(s)
    assert ids.kind(s) == kind
    if kind == "fhnr":
        assert s[0] in "89"
        assert ids.birth_date(s) is None and ids.sex(s) is None
        return
    # The date part encodes the birth date with the kind's offsets, under both models.
    day_off = 40 if kind in ("dnr", "synthetic_dnr") else 0
    month_off = {"hnr": 40, "synthetic": 80, "synthetic_dnr": 80}.get(kind, 0)
    assert s[:6] == f"{date.day + day_off:02d}{date.month + month_off:02d}{date.year % 100:02d}"
    if model == "old":
        assert ids.check_model(s) == "old"
        assert ids.sex(s) == sex
        assert int(s[8]) % 2 == (sex == "male")
        assert ids.birth_date(s) == (date if kind in DATED else None)
    else:
        assert ids.check_model(s) in ("old", "new")


@pytest.mark.parametrize("model", ids.MODELS)
@pytest.mark.parametrize("kind", ids.KINDS)
def test_make_ids_bulk_checked_in_duckdb(kind, model, sql):
    """20 000 ids per kind and model: all valid, unique, of the right kind, and (old model)
    giving back birth date and sex, checked by the SQL macros."""
    rng = np.random.default_rng(19)
    n = 20_000
    lo = np.datetime64("1854-01-01") if model == "old" else np.datetime64("1800-01-01")
    hi = np.datetime64("2039-12-31") if model == "old" else np.datetime64("2099-12-31")
    dates = lo + rng.integers(0, (hi - lo).astype(int) + 1, n)
    sexes = rng.choice(np.array(["male", "female"]), n)
    made = make_ids(rng, dates, sexes, kind, model)
    assert made.shape == (n,) and len(set(made.tolist())) == n
    rows = sql.execute(
        """SELECT count(*) FILTER (WHERE NOT s19_id_valid(id)),
                  count(*) FILTER (WHERE s19_id_kind(id) IS DISTINCT FROM $kind),
                  count(*) FILTER (WHERE s19_id_birth_date(id) IS DISTINCT FROM
                                   CASE WHEN $dated THEN bd END),
                  count(*) FILTER (WHERE s19_id_sex(id) IS DISTINCT FROM
                                   CASE WHEN $sexed THEN sex END),
                  count(DISTINCT s19_id_check_model(id))
           FROM (SELECT unnest($ids) AS id, unnest($bd) AS bd, unnest($sex) AS sex)""",
        {"ids": made.tolist(), "bd": dates.astype(object).tolist(), "sex": sexes.tolist(),
         "kind": kind, "dated": model == "old" and kind in DATED,
         "sexed": model == "old" and kind != "fhnr"},
    ).fetchone()
    if model == "old":
        assert rows == (0, 0, 0, 0, 1)
    else:  # new-model ids carry no sex or century: only validity and kind are checkable
        assert rows[:2] == (0, 0) and rows[4] == 2


def test_new_model_uses_every_allowed_remainder():
    made = make_ids(np.random.default_rng(1), np.full(1000, np.datetime64("2035-06-01")), None, "fnr", "new")
    remainders = {(sum(w * int(c) for w, c in zip(W1, s)) + int(s[9])) % 11 for s in made}
    assert remainders == {0, 1, 2, 3}


def test_make_ids_unique_in_a_crowded_birth_date():
    # 200 boys born the same day: close to the 1940-99 block's ~250 usable ids per date and sex.
    made = make_ids(np.random.default_rng(2), np.full(200, np.datetime64("1960-05-17")),
                        np.array(["male"] * 200))
    assert len(set(made.tolist())) == 200
    with pytest.raises(ValueError, match="unique"):
        make_ids(np.random.default_rng(2), np.full(400, np.datetime64("1960-05-17")),
                     np.array(["male"] * 400))


@pytest.mark.parametrize(
    "first, last, blocks",
    [("1854-01-01", "1899-12-31", [(500, 749)]),
     ("1900-01-01", "1939-12-31", [(0, 499)]),
     ("1940-01-01", "1999-12-31", [(0, 499), (900, 999)]),
     ("2000-01-01", "2039-12-31", [(500, 999)])],
)
def test_old_model_individnummer_fills_each_block(first, last, blocks):
    rng = np.random.default_rng(4)
    lo, hi = np.datetime64(first), np.datetime64(last)
    dates = lo + rng.integers(0, (hi - lo).astype(int) + 1, 5000)
    made = make_ids(rng, dates, rng.choice(np.array(["male", "female"]), 5000))
    iii = np.array([int(s[6:9]) for s in made])
    in_block = [(iii >= a) & (iii <= b) for a, b in blocks]
    assert np.logical_or.reduce(in_block).all()
    for mask, (a, b) in zip(in_block, blocks):  # each block used, near both of its ends
        assert iii[mask].min() < a + 10 and iii[mask].max() > b - 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "xnr"}, "kind"),
        ({"model": "2032"}, "model"),
        ({"birth_dates": np_dates([datetime.date(1853, 12, 31)])}, "1854"),
        ({"birth_dates": np_dates([datetime.date(2040, 1, 1)])}, "1854"),
        ({"sexes": np.array(["m"])}, "male"),
        ({"sexes": None}, "sexes"),
    ],
)
def test_make_ids_rejects_bad_input(kwargs, match):
    args = {"birth_dates": np_dates([datetime.date(1990, 1, 1)]), "sexes": np.array(["male"])} | kwargs
    with pytest.raises(ValueError, match=match):
        make_ids(np.random.default_rng(0), **args)


# --------------------------------------------------------------------------- validation


@FAST
@given(generated_ids(), st.integers(0, 10), st.integers(1, 9))
def test_any_single_digit_change_is_caught(case, position, delta):
    # Every K2 weight (and K2's own weight 1) is non-zero mod the prime 11, so changing one
    # digit by delta (1-9) always changes the K2 sum mod 11: caught under both models.
    s = case[0]
    changed = s[:position] + str((int(s[position]) + delta) % 10) + s[position + 1 :]
    assert ids.is_valid(s)
    assert not ids.is_valid(changed)


def test_every_single_digit_change_of_the_examples_is_caught():
    for s in ("01817012309", "01817012317", "86123456701", "41817024619"):
        for i in range(11):
            for c in "0123456789".replace(s[i], ""):
                assert not ids.is_valid(s[:i] + c + s[i + 1 :]), (s, i, c)


# Hand-checked examples.  Only synthetic (month + 80), future-dated or FH-style numbers, so none
# can be a real person's fødselsnummer.  S1 = sum(w1 * d1..d9), S2 = sum(w2 * d1..d10).
#
# 018170123 (synthetic, 01.01.70, individnummer 123):
#   S1 = 3*0 + 7*1 + 6*8 + 1*1 + 8*7 + 9*0 + 4*1 + 5*2 + 2*3 = 132;  132 = 12*11  -> K1 = 0
#   S2 = 5*0 + 4*1 + 3*8 + 2*1 + 7*7 + 6*0 + 5*1 + 4*2 + 3*3 + 2*0 = 101;  101 mod 11 = 2 -> K2 = 9
#   -> 01817012309.  123 < 500 -> 1900s; 9th digit 3 is odd -> male.
# Same body, new model only: K1 = 1 gives (132 + 1) mod 11 = 1 (allowed from 2032, not before);
#   S2 = 101 + 2*1 = 103;  103 mod 11 = 4 -> K2 = 7  -> 01817012317.
# 311239512 (fnr, 31.12.2039: nobody alive has it):
#   S1 = 9 + 7 + 6 + 2 + 24 + 81 + 20 + 5 + 4 = 158;  158 mod 11 = 4 -> K1 = 7
#   S2 = 15 + 4 + 3 + 4 + 21 + 54 + 25 + 4 + 6 + 14 = 150;  150 mod 11 = 7 -> K2 = 4
#   -> 31123951274.  512 with YY 39 < 40 -> 2000s; 9th digit 2 -> female.
# 418170246 (synthetic D-number, day 41 - 40 = 1, month 81 - 80 = 1, 1970):
#   S1 = 12 + 7 + 48 + 1 + 56 + 0 + 8 + 20 + 12 = 164;  164 mod 11 = 10 -> K1 = 1
#   S2 = 20 + 4 + 24 + 2 + 49 + 0 + 10 + 16 + 18 + 2 = 145;  145 mod 11 = 2 -> K2 = 9
#   -> 41817024619, female (6).
# 014139513 (H-number, month 41 - 40 = 1, 2039):
#   S1 = 0 + 7 + 24 + 1 + 24 + 81 + 20 + 5 + 6 = 168;  168 mod 11 = 3 -> K1 = 8
#   S2 = 0 + 4 + 12 + 2 + 21 + 54 + 25 + 4 + 9 + 16 = 147;  147 mod 11 = 4 -> K2 = 7
#   -> 01413951387, male (3).
# 861234567 (FH-number):
#   S1 = 24 + 42 + 6 + 2 + 24 + 36 + 20 + 30 + 14 = 198 = 18*11 -> K1 = 0
#   S2 = 40 + 24 + 3 + 4 + 21 + 24 + 25 + 24 + 21 + 0 = 186;  186 mod 11 = 10 -> K2 = 1
#   -> 86123456701.
# 298200100 (synthetic 29.02.1900, 1900 is not a leap year):
#   S1 = 6 + 63 + 48 + 2 + 0 + 0 + 4 + 0 + 0 = 123;  123 mod 11 = 2 -> K1 = 9
#   S2 = 10 + 36 + 24 + 4 + 0 + 0 + 5 + 0 + 0 + 18 = 97;  97 mod 11 = 9 -> K2 = 2
#   -> 29820010092: valid (29 February is always accepted), but no birth date exists.
# 298200600 (synthetic 29.02.2000, a leap year: 600 with YY 00 -> 2000s):
#   S1 = 6 + 63 + 48 + 2 + 0 + 0 + 24 + 0 + 0 = 143 = 13*11 -> K1 = 0
#   S2 = 10 + 36 + 24 + 4 + 0 + 0 + 30 + 0 + 0 + 0 = 104;  104 mod 11 = 5 -> K2 = 6
#   -> 29820060006.
# K1 = 10: 018170129 has S1 = 132 + 2*9 - 2*3 = 144;  144 mod 11 = 1 -> K1 = 11 - 1 = 10: no
#   old-model number has this body.  New model: K1 = 0 gives remainder 1;
#   S2 = 5*0 + 4*1 + 3*8 + 2*1 + 7*7 + 6*0 + 5*1 + 4*2 + 3*9 + 2*0 = 119;  119 mod 11 = 9
#   -> K2 = 2  -> 01817012902 (new model only).
# K2 = 10: 018170124 has S1 = 134;  134 mod 11 = 2 -> K1 = 9;
#   S2 = 4 + 24 + 2 + 49 + 5 + 8 + 12 + 18 = 122;  122 mod 11 = 1 -> K2 = 10: invalid whatever K2.
EXAMPLES = [
    # id, kind, check_model, birth_date, sex
    ("01817012309", "synthetic", "old", datetime.date(1970, 1, 1), "male"),
    ("01817012317", "synthetic", "new", None, None),
    ("31123951274", "fnr", "old", datetime.date(2039, 12, 31), "female"),
    ("41817024619", "synthetic_dnr", "old", datetime.date(1970, 1, 1), "female"),
    ("01413951387", "hnr", "old", None, "male"),
    ("86123456701", "fhnr", "old", None, None),
    ("29820010092", "synthetic", "old", None, "female"),
    ("29820060006", "synthetic", "old", datetime.date(2000, 2, 29), "female"),
    ("01817012902", "synthetic", "new", None, None),
]


@pytest.mark.parametrize("s, kind, model, born, sex", EXAMPLES)
def test_hand_checked_examples(s, kind, model, born, sex):
    assert ids.is_valid(s)
    assert (ids.kind(s), ids.check_model(s), ids.birth_date(s), ids.sex(s)) == (kind, model, born, sex)


def test_hand_checked_k_equals_10():
    # K1 would be 10: no K1 K2 at all makes an old-model number of this body.
    assert not any(ids.check_model(f"018170129{k:02d}") == "old" for k in range(100))
    assert ids.check_model("01817012902") == "new"
    # K2 would be 10 (with the old-model K1 = 9): no last digit helps.
    assert not any(ids.is_valid(f"0181701249{k}") for k in range(10))
    # Neither does any other K1 with remainder 0: K1 = 9 is the only one.
    assert [k for k in range(10) if (134 + k) % 11 == 0] == [9]


CENTURY_TABLE = [(0, 0, 1900), (499, 99, 1900), (500, 54, 1800), (749, 99, 1800), (500, 53, None),
 (750, 54, None), (899, 99, None), (500, 39, 2000), (999, 0, 2000), (900, 40, 1900),
 (999, 99, 1900), (899, 40, None), (600, 45, None)]

MALFORMED = [None, "", "0181701230", "018170123090", " 1817012309", "0181701230x",
                                 "٠١٨١٧٠١٢٣٠٩", 1817012309, b"01817012309"]

DATE_RULES = [
    ("010170", "fnr"), ("310170", "fnr"), ("290270", "fnr"), ("300470", "fnr"),
    ("300270", None), ("310470", None), ("320170", None), ("000170", None),
    ("011370", None), ("010070", None),
    ("410170", "dnr"), ("710170", "dnr"), ("400170", None), ("720170", None),
    ("014170", "hnr"), ("015270", "hnr"), ("014070", None), ("015370", None),
    ("018170", "synthetic"), ("019270", "synthetic"), ("018070", None), ("019370", None),
    ("418170", "synthetic_dnr"), ("414270", None), ("714170", None),  # D-day + H-month: undefined
    ("800000", "fhnr"), ("999999", "fhnr"),  # FH-numbers: no date check
]


@pytest.mark.parametrize("ddmmyy, kind", DATE_RULES)
def test_date_rules(ddmmyy, kind):
    made = date_rule_ids(ddmmyy)
    assert len(made) >= 2
    for s in made:
        assert ids.kind(s) == kind, s
        assert ids.is_valid(s) == (kind is not None)


def date_rule_ids(ddmmyy: str) -> list[str]:
    made = (complete(ddmmyy + iii, r) for iii in ("123", "456", "789") for r in (0, 2))
    return [s for s in made if s is not None]


@pytest.mark.parametrize("iii, yy, century", CENTURY_TABLE)
def test_century_table(iii, yy, century):
    assert ids.century(iii, yy) == century
    s = century_id(iii, yy)
    expected = None if century is None else datetime.date(century + yy, 6, int(s[:2]))
    assert ids.birth_date(s) == expected


def century_id(iii: int, yy: int) -> str:
    """An old-model fnr born in June of year YY with this individnummer."""
    return next(filter(None, (complete(f"{day:02d}06{yy:02d}{iii:03d}") for day in range(1, 31))))


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_input_is_invalid(bad):
    assert not ids.is_valid(bad)
    assert ids.kind(bad) is ids.check_model(bad) is ids.birth_date(bad) is ids.sex(bad) is None
    with pytest.raises(ids.InvalidFormat):  # InvalidLength is an InvalidFormat, as in stdnum
        ids.validate(bad)


# --------------------------------------------------------------------------- the stdnum-style API


def test_module_doctests():
    result = doctest.testmod(ids)
    assert result.attempted > 0 and result.failed == 0


def test_errors_are_one_family():
    for cls in (ids.InvalidFormat, ids.InvalidLength, ids.InvalidChecksum, ids.InvalidComponent):
        assert issubclass(cls, ids.ValidationError) and issubclass(cls, ValueError)
        assert str(cls()) == cls.message  # a message without arguments
    assert issubclass(ids.InvalidLength, ids.InvalidFormat)


def error_of(s) -> type | None:
    try:
        assert ids.validate(s) == s
    except ids.ValidationError as e:
        assert not (isinstance(s, str) and len(s) >= 11 and s in str(e))  # no id in a message
        return type(e)
    return None


@pytest.mark.parametrize("s, error", [
    ("01817012309", None), ("01817012317", None),
    ("0181701230", ids.InvalidLength), ("018170123090", ids.InvalidLength), ("", ids.InvalidLength),
    ("0181701230x", ids.InvalidFormat), ("٠١٨١٧٠١٢٣٠٩", ids.InvalidFormat), (1817012309, ids.InvalidFormat),
    (None, ids.InvalidFormat), (b"01817012309", ids.InvalidFormat),
    ("01817012308", ids.InvalidChecksum),  # K2
    (complete("018170123", 4), ids.InvalidChecksum),  # K2 right, K1 remainder 4
    (complete("414270124"), ids.InvalidComponent),  # D-day with H-month
    (complete("308270123"), ids.InvalidComponent),  # 30 February
    (complete("011370123"), ids.InvalidComponent),  # month 13
])
def test_validate_raises_the_matching_error(s, error):
    assert error_of(s) is error


@FAST
@given(ANY_ID)
def test_validate_agrees_with_the_other_functions(s):
    error = error_of(s)
    assert ids.is_valid(s) == (error is None)
    assert (ids.kind(s) is None) == (ids.check_model(s) is None) == (error is not None)
    for get, lenient, values in ((ids.get_birth_date, ids.birth_date, None),
                                 (ids.get_gender, ids.sex, {"M": "male", "F": "female"})):
        try:
            got = get(s)
        except ids.ValidationError as e:  # the number's own error, or valid but not telling
            assert type(e) is error or error is None and type(e) is ids.InvalidComponent
            assert lenient(s) is None
        else:
            assert error is None and lenient(s) == (values[got] if values else got)


# The separators of s19__separator() (sql/macros/scrub.sql), some whitespace RE2's \s does not
# know (vertical tab, Unicode spaces), and other punctuation.
SEPARATOR_LIKE = list(" \t\n\f\r.-\u00a0\u2013\u2014") + list("\x0b\u2028\u3000\u2009_/:,+")


@FAST
@given(st.lists(st.one_of(generated_ids().map(lambda t: t[0]), st.text("0123456789", max_size=12),
                          st.text(st.sampled_from(SEPARATOR_LIKE), max_size=3)), max_size=6).map("".join))
def test_compact_is_s19_strip_separators(macros, text):
    """compact strips what the SQL strips, so validate(compact(x)) is the record-key rule
    s19_id_valid(s19_strip_separators(x)) of sql/ingest/check.sql.j2."""
    stripped, valid = macros.execute("SELECT s19_strip_separators($t), s19_id_valid(s19_strip_separators($t))",
                                  {"t": text}).fetchone()
    assert ids.compact(text) == stripped
    assert ids.is_valid(ids.compact(text)) == valid


# --------------------------------------------------------------------------- SQL macros


@pytest.fixture(scope="module")
def macros():
    """A connection with all of sql/macros/ (s19_strip_separators is in scrub.sql)."""
    con = duckdb.connect()
    install_macros(con)
    yield con
    con.close()


@pytest.fixture(scope="module")
def sql():
    con = duckdb.connect()
    con.execute(SQL_FILE.read_text())
    yield con
    con.close()


def test_sql_file_runs_on_a_fresh_connection_twice():
    con = duckdb.connect()
    con.execute(SQL_FILE.read_text())
    con.execute(SQL_FILE.read_text())  # CREATE OR REPLACE: re-running is harmless
    assert con.execute("SELECT s19_id_valid(NULL), s19_id_valid(''), s19_id_kind('01817012309')").fetchone() == (
        False, False, "synthetic")


# Few, large batches: DuckDB plans the inlined macros in ~0.1 s per query, whatever the rows.
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(ANY_ID, min_size=1, max_size=150))
def test_sql_macros_agree_with_python(sql, batch):
    assert_sql_agrees(sql, batch)


def test_sql_macros_agree_on_fixed_cases(sql):
    """Every hand-made case above (examples, date rules, century table, malformed input, K = 10
    bodies), through the macros."""
    batch = [e[0] for e in EXAMPLES]
    batch += [s for ddmmyy, _ in DATE_RULES for s in date_rule_ids(ddmmyy)]
    batch += [century_id(iii, yy) for iii, yy, _ in CENTURY_TABLE]
    batch += [b for b in MALFORMED if b is None or isinstance(b, str)]
    batch += [f"018170129{k:02d}" for k in range(100)] + [f"0181701249{k}" for k in range(10)]
    assert_sql_agrees(sql, batch)


def assert_sql_agrees(sql, batch: list[str | None]) -> None:
    rows = sql.execute(
        """SELECT id, s19_id_valid(id), s19_id_kind(id), s19_id_check_model(id),
                  s19_id_birth_date(id), s19_id_sex(id)
           FROM (SELECT unnest($batch::VARCHAR[]) AS id)""",
        {"batch": batch},
    ).fetchall()
    assert len(rows) == len(batch)
    for s, *got in rows:
        assert tuple(got) == (ids.is_valid(s), ids.kind(s), ids.check_model(s), ids.birth_date(s), ids.sex(s)), s
