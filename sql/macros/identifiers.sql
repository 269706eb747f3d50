-- Norwegian person identifiers (fødselsnummer, D-, H-, FH- and synthetic test numbers) in DuckDB.
-- Same semantics as stat19/identifiers.py (rules and decisions documented there; the tests check
-- the two agree).  Pure SQL macros, no UDFs: validation runs set-based over millions of rows.
--
-- Public:  s19_id_valid(id) BOOLEAN (NULL/empty -> false), s19_id_kind(id) VARCHAR,
--          s19_id_check_model(id) VARCHAR, s19_id_birth_date(id) DATE, s19_id_sex(id) VARCHAR.
-- Helpers: s19__*  (internal).  Layout DDMMYY III K1 K2.
--
-- Why it is written this way (measured on DuckDB 2.0, 5 M rows):
-- * Macros are inlined, so s19__n(id) appears dozens of times in one expression.  DuckDB's
--   common subexpression elimination computes it once, but only where evaluation is
--   unconditional: not inside CASE THEN/ELSE branches nor AND/OR operands after the first.
--   A version written with AND and CASE took 3-9 s; this one is ~5x faster.  So conditions are
--   combined as 0/1 integer products, and choices are list lookups (index 0 or NULL -> NULL).
-- * Digits come from integer division of the id cast to BIGINT: about twice as fast as
--   ord(substr(id, i, 1)).  The cast runs only after the regex accepted the string (a failing
--   TRY_CAST is slow on text).

-- The id as a BIGINT when it is exactly 11 ASCII digits, else NULL; NULL then propagates through
-- every helper below.  RE2's [0-9] is ASCII only, like Python's isascii() and isdigit().
CREATE OR REPLACE MACRO s19__n(id) AS
    CASE WHEN regexp_full_match(id, '[0-9]{11}') THEN CAST(id AS BIGINT) END;

-- A condition as 0/1 (NULL stays NULL).
CREATE OR REPLACE MACRO s19__flag(b) AS CAST(b AS INTEGER);

-- Digit i (1-based, from the left) of the 11-digit number n.
CREATE OR REPLACE MACRO s19__d(n, i) AS
    n // [10000000000, 1000000000, 100000000, 10000000, 1000000, 100000, 10000, 1000, 100, 10, 1][i] % 10;

-- (K1 weighted sum + K1) mod 11: 0 = old model, 1-3 = 2032 model only, 4-10 = invalid.
CREATE OR REPLACE MACRO s19__r1(n) AS (
      3 * s19__d(n, 1) + 7 * s19__d(n, 2) + 6 * s19__d(n, 3) + 1 * s19__d(n, 4)
    + 8 * s19__d(n, 5) + 9 * s19__d(n, 6) + 4 * s19__d(n, 7) + 5 * s19__d(n, 8)
    + 2 * s19__d(n, 9) + s19__d(n, 10)) % 11;

-- (K2 weighted sum + K2) mod 11: must be 0 under both models.
CREATE OR REPLACE MACRO s19__r2(n) AS (
      5 * s19__d(n, 1) + 4 * s19__d(n, 2) + 3 * s19__d(n, 3) + 2 * s19__d(n, 4)
    + 7 * s19__d(n, 5) + 6 * s19__d(n, 6) + 5 * s19__d(n, 7) + 4 * s19__d(n, 8)
    + 3 * s19__d(n, 9) + 2 * s19__d(n, 10) + s19__d(n, 11)) % 11;

CREATE OR REPLACE MACRO s19__dd(n) AS n // 1000000000;            -- digits 1-2
CREATE OR REPLACE MACRO s19__mm(n) AS n // 10000000 % 100;        -- digits 3-4
CREATE OR REPLACE MACRO s19__yy(n) AS n // 100000 % 100;          -- digits 5-6
CREATE OR REPLACE MACRO s19__iii(n) AS n // 100 % 1000;           -- digits 7-9

-- Day and month without the D (+40 day), H (+40 month) and synthetic (+80 month) offsets.
-- mm % 40 lands in 1-12 exactly for 01-12, 41-52 and 81-92; dd % 40 likewise for days 01-31
-- and 41-71 (a first digit 8-9 is an FH-number, which has no date).
CREATE OR REPLACE MACRO s19__day(n) AS s19__dd(n) % 40;
CREATE OR REPLACE MACRO s19__month(n) AS s19__mm(n) % 40;

-- 1 for an FH-number (first digit 8 or 9), else 0.
CREATE OR REPLACE MACRO s19__is_fh(n) AS s19__flag(s19__dd(n) >= 80);

-- Kind code from the offsets: 1 fnr, 2 dnr, 3 hnr, 4 D-day with H-month (undefined: invalid),
-- 5 synthetic, 6 synthetic_dnr, 7 fhnr.
CREATE OR REPLACE MACRO s19__code(n) AS
    7 * s19__is_fh(n)
    + (1 - s19__is_fh(n)) * (1 + s19__flag(s19__dd(n) >= 40) + 2 * (s19__mm(n) // 40));

-- 1 when the day-month exists in some year (29 February always accepted), else 0.
CREATE OR REPLACE MACRO s19__date_ok(n) AS
      s19__flag(s19__month(n) BETWEEN 1 AND 12)
    * s19__flag(s19__day(n) BETWEEN 1 AND 31 - s19__flag(s19__month(n) IN (4, 6, 9, 11))
                                             - 2 * s19__flag(s19__month(n) = 2));

-- 1 when valid under either model, 0 when not, NULL when not 11 digits.
CREATE OR REPLACE MACRO s19__valid_flag(n) AS
      s19__flag(s19__r2(n) = 0)
    * s19__flag(s19__r1(n) <= 3)
    * greatest(s19__is_fh(n),  -- FH-number: random body, no date to check
               s19__date_ok(n) * s19__flag(s19__code(n) <> 4));

CREATE OR REPLACE MACRO s19_id_valid(id) AS coalesce(s19__valid_flag(s19__n(id)) = 1, false);

CREATE OR REPLACE MACRO s19_id_kind(id) AS
    ['fnr', 'dnr', 'hnr', NULL, 'synthetic', 'synthetic_dnr', 'fhnr'][
        s19__valid_flag(s19__n(id)) * s19__code(s19__n(id))];

-- 1 when the old K1 rule holds (also true of 1 in 4 numbers issued under the 2032 model).
CREATE OR REPLACE MACRO s19__old_flag(n) AS s19__flag(s19__r1(n) = 0);

-- 'old' whenever the old K1 rule holds, 'new' when only the 2032 rule holds, NULL when invalid.
CREATE OR REPLACE MACRO s19_id_check_model(id) AS
    ['new', 'old'][s19__valid_flag(s19__n(id)) * (1 + s19__old_flag(s19__n(id)))];

-- Old-model century from individnummer and YY (the three cases exclude each other); NULL where
-- the table has no entry (index 0).
CREATE OR REPLACE MACRO s19__century(n) AS
    [1800, 1900, 2000][
          1 * s19__flag(s19__iii(n) BETWEEN 500 AND 749 AND s19__yy(n) >= 54)
        + 2 * s19__flag(s19__iii(n) < 500 OR (s19__iii(n) >= 900 AND s19__yy(n) >= 40))
        + 3 * s19__flag(s19__iii(n) >= 500 AND s19__yy(n) < 40)];

CREATE OR REPLACE MACRO s19__year(n) AS s19__century(n) + s19__yy(n);

-- 1 unless the date is 29 February of a non-leap year.
CREATE OR REPLACE MACRO s19__not_bad_leap_day(n) AS
    1 - s19__flag(s19__month(n) = 2) * s19__flag(s19__day(n) = 29)
        * s19__flag(NOT (s19__year(n) % 4 = 0 AND (s19__year(n) % 100 <> 0 OR s19__year(n) % 400 = 0)));

-- Birth date of a valid old-model fnr, dnr, synthetic or synthetic_dnr; NULL otherwise, and NULL
-- when the individnummer gives no century or the date does not exist (29 February, non-leap).
-- The year is NULLed (index 0) for every other row, so make_date never sees an impossible date.
CREATE OR REPLACE MACRO s19_id_birth_date(id) AS
    make_date(
        [s19__year(s19__n(id))][
              s19__valid_flag(s19__n(id))
            * s19__old_flag(s19__n(id))
            * s19__flag(s19__code(s19__n(id)) IN (1, 2, 5, 6))
            * s19__not_bad_leap_day(s19__n(id))],
        s19__month(s19__n(id)),
        s19__day(s19__n(id)));

-- Sex from the 9th digit (odd = male) of a valid old-model id other than an FH-number.
CREATE OR REPLACE MACRO s19_id_sex(id) AS
    ['female', 'male'][
        s19__valid_flag(s19__n(id)) * s19__old_flag(s19__n(id)) * (1 - s19__is_fh(s19__n(id)))
        * (1 + s19__d(s19__n(id), 9) % 2)];
