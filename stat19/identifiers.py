"""Norwegian person identifiers: fødselsnummer, D-, H-, FH- and synthetic test numbers.

A validator module in the manner of python-stdnum's ``stdnum.no.fodselsnummer`` (we do not depend
on python-stdnum): ``compact``, ``validate`` raising a ``ValidationError``, ``is_valid``, and what
a valid number tells (``kind``, ``check_model``, ``birth_date``/``get_birth_date``,
``sex``/``get_gender``, ``century``).  The synthetic generator is ``stat19.synth.ids``.

Binding rules: /work/shared/spec/domain.md, "Fødselsnummer and other person identifiers".
Layout DDMMYY III K1 K2.  ``sql/macros/identifiers.sql`` implements the same validation in
DuckDB, and the pipeline validates in bulk there; ``tests/test_identifiers.py`` checks the two
agree.

Decisions where the spec is silent (keep the SQL macros in step when changing them):

* An id is a string of exactly 11 ASCII digits; ``validate`` trims nothing and accepts no
  separators.  ``compact`` strips separators, for callers that ask for it (as ingest's
  record-key rule does in SQL with ``s19_strip_separators``).
* The first digit decides the family: 0-3 plain day, 4-7 D-number day (+40), 8-9 FH-number.
  The month part: 01-12 plain, 41-52 H-number (+40), 81-92 synthetic (+80).
  D-day with H-month is not a defined combination and is invalid.
* Date plausibility only asks that the day-month exists in some year, so 29 February is always
  accepted (whatever YY and individnummer say).  ``birth_date`` then returns None when the
  resolved date does not exist (e.g. 29.02.1900), as it does when the individnummer maps to no
  century (e.g. 600 with YY 45).  Unlike stdnum, a birth date in the future is no error.
* Every old-model number also satisfies the new model (remainder 0 is in {0,1,2,3}), and a
  quarter of new-model numbers have remainder 0.  ``check_model`` reports "old" whenever the old
  rule holds, so sex/birth date of such a new-model number are read as if it were old-model.
  This is why the pipeline uses the Folkeregister's birth_date and kjoenn wherever it can.
* H-numbers give no birth date (their date part is not relied on); FH-numbers give neither
  birth date nor sex.  Error messages never repeat the number (no identifier in a log line).

Examples (synthetic test numbers only, month + 80: no real person has them):

``validate`` returns the number or raises one of the ``ValidationError`` subclasses; ``is_valid``
says whether it would raise.  Both check-digit models are accepted:

>>> validate('01817012309')  # 01.01.1970, individnummer 123, old-model check digits
'01817012309'
>>> is_valid('01817012317')  # the same body with a K1 only the 2032 model allows
True
>>> is_valid('01817012308'), is_valid('018170 12309'), is_valid(None)
(False, False, False)
>>> validate('01817012308')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidChecksum: K2 does not match the first ten digits
>>> validate('41427012490')  # check digits fine, but a D-number day with an H-number month
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidComponent: a D-number day with an H-number month is not defined
>>> validate('30827012382')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidComponent: the day-month part is not a date in any year
>>> validate('0181701230')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidLength: not 11 characters long
>>> validate('0181701230x')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidFormat: not 11 ASCII digits

``compact`` strips the separators the SQL side strips (whitespace, dots, hyphens, no-break
space, en and em dashes); ``validate`` does not, so compact first to accept written forms:

>>> compact('01.81.70 123-09')
'01817012309'
>>> validate(compact('018170\\u00a012309'))
'01817012309'

``kind`` and ``check_model`` (None for an invalid number):

>>> kind('01817012309'), kind('41817024619'), kind('01817012308')
('synthetic', 'synthetic_dnr', None)
>>> check_model('01817012309'), check_model('01817012317'), check_model('01817012308')
('old', 'new', None)

Birth date and sex of an old-model number; ``birth_date`` and ``sex`` return None where the
number does not tell, ``get_birth_date`` and ``get_gender`` (stdnum's names) raise instead:

>>> birth_date('01817012309'), sex('01817012309'), sex('41817024619')
(datetime.date(1970, 1, 1), 'male', 'female')
>>> get_birth_date('29820060006'), get_gender('01817012309'), get_gender('41817024619')
(datetime.date(2000, 2, 29), 'M', 'F')
>>> birth_date('01817012317'), sex('01817012317')  # 2032 model: no century, no sex digit
(None, None)
>>> birth_date('29820010092')  # valid (29 February is always accepted), but 1900 is no leap year
>>> get_birth_date('01814560089')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidComponent: the individnummer gives no century for this year
>>> get_gender('01817012317')
Traceback (most recent call last):
    ...
stat19.identifiers.InvalidComponent: a 2032-model number carries no sex digit

``century`` is the old-model table (individnummer, two-digit year):

>>> century(123, 70), century(501, 99), century(512, 39), century(950, 45), century(600, 45)
(1900, 1800, 2000, 1900, None)
"""

from __future__ import annotations

import datetime
import re

__all__ = [
    "KINDS", "MODELS", "ValidationError", "InvalidFormat", "InvalidLength", "InvalidChecksum",
    "InvalidComponent", "compact", "validate", "is_valid", "kind", "check_model", "century",
    "get_birth_date", "birth_date", "get_gender", "sex",
]

KINDS = ("fnr", "dnr", "hnr", "fhnr", "synthetic", "synthetic_dnr")
MODELS = ("old", "new")

# Check-digit weights (K1 over digits 1-9, K2 over digits 1-10 including K1).
W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)

# Offsets added to the day and month parts, per kind (FH-numbers have no date part).
DAY_OFFSET = {"fnr": 0, "dnr": 40, "hnr": 0, "synthetic": 0, "synthetic_dnr": 40}
MONTH_OFFSET = {"fnr": 0, "dnr": 0, "hnr": 40, "synthetic": 80, "synthetic_dnr": 80}
# (40, 40), a D-day with an H-month, is deliberately absent: invalid.
_KIND_BY_OFFSETS = {(DAY_OFFSET[k], MONTH_OFFSET[k]): k for k in DAY_OFFSET}
# Longest day per month, 29 February allowed (see module docstring).
_MAX_DAY = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# s19__separator() in sql/macros/scrub.sql.  RE2's \s is ASCII [\t\n\f\r ], Python's is not.
_SEPARATORS = re.compile("[\t\n\f\r .\\-\u00a0\u2013\u2014]")


# --------------------------------------------------------------------------- errors


class ValidationError(ValueError):
    """Why a number is not a valid identifier; only its subclasses are raised."""

    message = "not a valid identifier"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.message


class InvalidFormat(ValidationError):
    """Not a string of ASCII digits."""

    message = "not 11 ASCII digits"


class InvalidLength(InvalidFormat):
    """Not 11 characters long (a kind of InvalidFormat, as in stdnum)."""

    message = "not 11 characters long"


class InvalidChecksum(ValidationError):
    """A check digit does not match under either check-digit model."""

    message = "the check digits do not match"


class InvalidComponent(ValidationError):
    """A part of the number is impossible: no date in its day-month, an undefined combination of
    offsets, or (get_birth_date, get_gender) no birth date or sex in it."""

    message = "a part of the number is not valid"


# --------------------------------------------------------------------------- validation


def compact(number: str) -> str:
    """The number without separators (as s19_strip_separators): ASCII whitespace, '.', '-',
    no-break space, en and em dash, wherever they stand."""
    return _SEPARATORS.sub("", number)


def _check(number: object) -> tuple[str, str, tuple[int, ...]]:
    """(kind, model, digits) of a valid number; raises a ValidationError.  Mirrored by the SQL."""
    if not isinstance(number, str):
        raise InvalidFormat("not a string")
    if len(number) != 11:
        raise InvalidLength()
    if not (number.isascii() and number.isdigit()):
        raise InvalidFormat()
    d = tuple(ord(c) - 48 for c in number)
    if (sum(w * x for w, x in zip(W2, d)) + d[10]) % 11 != 0:
        raise InvalidChecksum("K2 does not match the first ten digits")
    r1 = (sum(w * x for w, x in zip(W1, d)) + d[9]) % 11
    if r1 > 3:
        raise InvalidChecksum("K1 fits neither the old nor the 2032 check-digit rule")
    model = "old" if r1 == 0 else "new"
    if d[0] >= 8:
        return "fhnr", model, d  # FH-numbers are random: no date to check
    day_off = 40 if d[0] >= 4 else 0
    mm = 10 * d[2] + d[3]
    month_off = 80 if mm > 80 else 40 if mm > 40 else 0
    kind_ = _KIND_BY_OFFSETS.get((day_off, month_off))
    if kind_ is None:
        raise InvalidComponent("a D-number day with an H-number month is not defined")
    day, month = 10 * d[0] + d[1] - day_off, mm - month_off
    if not 1 <= month <= 12 or not 1 <= day <= _MAX_DAY[month - 1]:
        raise InvalidComponent("the day-month part is not a date in any year")
    return kind_, model, d


def _parsed(number: object) -> tuple[str, str, tuple[int, ...]] | None:
    try:
        return _check(number)
    except ValidationError:
        return None


def validate(number: object) -> str:
    """The number itself when it is 11 ASCII digits with check digits valid under either model
    and a plausible date; else raises InvalidLength, InvalidFormat, InvalidChecksum or
    InvalidComponent (all ValidationError, a ValueError)."""
    _check(number)
    return number  # type: ignore[return-value]  # _check accepted it: a str


def is_valid(number: object) -> bool:
    """True when ``validate`` accepts the number."""
    return _parsed(number) is not None


def kind(number: object) -> str | None:
    """One of KINDS, or None when the number is invalid."""
    p = _parsed(number)
    return p[0] if p else None


def check_model(number: object) -> str | None:
    """'old' when K1 satisfies the old rule (also true of 1 in 4 new-model ids), 'new' when only
    the 2032 rule holds, None when invalid."""
    p = _parsed(number)
    return p[1] if p else None


def century(individnummer: int, yy: int) -> int | None:
    """Old-model century (1800, 1900, 2000) from individnummer and two-digit year, or None."""
    if individnummer < 500:
        return 1900
    if individnummer < 750 and yy >= 54:
        return 1800
    if yy < 40:
        return 2000
    if individnummer >= 900:
        return 1900
    return None  # e.g. 500-899 with YY 40-53: no old-model century


def _old_model(number: object, what: str) -> tuple[str, tuple[int, ...]]:
    """(kind, digits) of a valid number with old-model check digits and a ``what`` digit."""
    kind_, model, d = _check(number)
    if kind_ == "fhnr":
        raise InvalidComponent(f"an FH-number carries no {what}")
    if model != "old":
        raise InvalidComponent(f"a 2032-model number carries no {what}")
    return kind_, d


def get_birth_date(number: object) -> datetime.date:
    """Birth date of a valid old-model fnr, dnr, synthetic or synthetic_dnr.  Raises
    InvalidComponent for other kinds and models, for an individnummer that gives the year no
    century and for 29 February of a non-leap year (other ValidationErrors when invalid)."""
    kind_, d = _old_model(number, "birth date")
    if kind_ == "hnr":
        raise InvalidComponent("an H-number carries no birth date")
    yy = 10 * d[4] + d[5]
    c = century(100 * d[6] + 10 * d[7] + d[8], yy)
    if c is None:
        raise InvalidComponent("the individnummer gives no century for this year")
    try:
        return datetime.date(c + yy, (10 * d[2] + d[3]) % 40, (10 * d[0] + d[1]) % 40)
    except ValueError:
        raise InvalidComponent("29 February of a year that is not a leap year") from None


def birth_date(number: object) -> datetime.date | None:
    """``get_birth_date``, or None where it raises (as s19_id_birth_date gives NULL)."""
    try:
        return get_birth_date(number)
    except ValidationError:
        return None


def get_gender(number: object) -> str:
    """'M' (odd 9th digit) or 'F', as stdnum: for a valid old-model number other than an
    FH-number; raises InvalidComponent for those (other ValidationErrors when invalid)."""
    return "M" if _old_model(number, "sex digit")[1][8] % 2 else "F"


def sex(number: object) -> str | None:
    """'male' (odd 9th digit) or 'female' for a valid old-model id other than fhnr; else None
    (the values of s19_id_sex and of the synthetic generator)."""
    try:
        return "male" if get_gender(number) == "M" else "female"
    except ValidationError:
        return None
