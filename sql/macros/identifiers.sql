-- Norwegian person identifiers (fødselsnummer, D-, H-, FH- and synthetic test numbers) in DuckDB.
-- Same semantics as stat19/identifiers.py (rules and decisions documented there; the tests check
-- the two agree).  Pure SQL macros, no UDFs: validation runs set-based over millions of rows.
--
-- Public:  s19_id_valid(id) BOOLEAN (NULL/empty -> false), s19_id_kind(id) VARCHAR,
--          s19_id_check_model(id) VARCHAR, s19_id_birth_date(id) DATE, s19_id_sex(id) VARCHAR.
-- Helpers: s19__*  (internal; they assume an 11-digit string unless they say otherwise).
--
-- Layout DDMMYY III K1 K2.  Digit i is ord(substr(id, i, 1)) - 48.

-- Digit i (1-based) of id.
CREATE OR REPLACE MACRO s19__d(id, i) AS ord(substr(id, i, 1)) - 48;

-- Exactly 11 ASCII digits.  RE2's [0-9] is ASCII only, like Python's isascii() and isdigit().
CREATE OR REPLACE MACRO s19__is_11_digits(id) AS
    coalesce(length(id) = 11 AND regexp_full_match(id, '[0-9]{11}'), false);

-- (K1 weighted sum + K1) mod 11: 0 = old model, 1-3 = 2032 model only, 4-10 = invalid.
CREATE OR REPLACE MACRO s19__r1(id) AS (
      3 * s19__d(id, 1) + 7 * s19__d(id, 2) + 6 * s19__d(id, 3) + 1 * s19__d(id, 4)
    + 8 * s19__d(id, 5) + 9 * s19__d(id, 6) + 4 * s19__d(id, 7) + 5 * s19__d(id, 8)
    + 2 * s19__d(id, 9) + s19__d(id, 10)) % 11;

-- (K2 weighted sum + K2) mod 11: must be 0 under both models.
CREATE OR REPLACE MACRO s19__r2(id) AS (
      5 * s19__d(id, 1) + 4 * s19__d(id, 2) + 3 * s19__d(id, 3) + 2 * s19__d(id, 4)
    + 7 * s19__d(id, 5) + 6 * s19__d(id, 6) + 5 * s19__d(id, 7) + 4 * s19__d(id, 8)
    + 3 * s19__d(id, 9) + 2 * s19__d(id, 10) + s19__d(id, 11)) % 11;

CREATE OR REPLACE MACRO s19__dd(id) AS 10 * s19__d(id, 1) + s19__d(id, 2);
CREATE OR REPLACE MACRO s19__mm(id) AS 10 * s19__d(id, 3) + s19__d(id, 4);
CREATE OR REPLACE MACRO s19__yy(id) AS 10 * s19__d(id, 5) + s19__d(id, 6);
CREATE OR REPLACE MACRO s19__iii(id) AS 100 * s19__d(id, 7) + 10 * s19__d(id, 8) + s19__d(id, 9);

-- Day and month without the D (+40 day), H (+40 month) and synthetic (+80 month) offsets.
-- mm % 40 lands in 1-12 exactly for 01-12, 41-52 and 81-92; dd % 40 likewise for days
-- (a first digit 8-9 is an FH-number and never gets here).
CREATE OR REPLACE MACRO s19__day(id) AS s19__dd(id) % 40;
CREATE OR REPLACE MACRO s19__month(id) AS s19__mm(id) % 40;

-- The day-month exists in some year: 29 February is always accepted.
CREATE OR REPLACE MACRO s19__date_ok(id) AS
    s19__month(id) BETWEEN 1 AND 12
    AND s19__day(id) BETWEEN 1 AND
        CASE s19__month(id) WHEN 2 THEN 29 WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30
                            WHEN 11 THEN 30 ELSE 31 END;

-- Kind of a valid id, NULL otherwise.  Everything else is derived from it, so the macros cannot
-- disagree about validity.  A D-day with an H-month is not a defined combination: NULL.
CREATE OR REPLACE MACRO s19_id_kind(id) AS
    CASE
        WHEN NOT s19__is_11_digits(id) THEN NULL
        WHEN s19__r2(id) <> 0 OR s19__r1(id) > 3 THEN NULL
        WHEN s19__d(id, 1) >= 8 THEN 'fhnr'  -- random body: no date to check
        WHEN NOT s19__date_ok(id) THEN NULL
        WHEN s19__dd(id) > 40 THEN
            CASE WHEN s19__mm(id) > 80 THEN 'synthetic_dnr'
                 WHEN s19__mm(id) > 40 THEN NULL
                 ELSE 'dnr' END
        ELSE
            CASE WHEN s19__mm(id) > 80 THEN 'synthetic'
                 WHEN s19__mm(id) > 40 THEN 'hnr'
                 ELSE 'fnr' END
    END;

CREATE OR REPLACE MACRO s19_id_valid(id) AS s19_id_kind(id) IS NOT NULL;

-- 'old' whenever the old K1 rule holds (also true of 1 in 4 numbers issued under the 2032
-- model), 'new' when only the 2032 rule holds, NULL when invalid.
CREATE OR REPLACE MACRO s19_id_check_model(id) AS
    CASE WHEN s19_id_kind(id) IS NULL THEN NULL
         WHEN s19__r1(id) = 0 THEN 'old'
         ELSE 'new' END;

-- Old-model century from individnummer and YY; NULL where the table has no entry.
CREATE OR REPLACE MACRO s19__century(id) AS
    CASE WHEN s19__iii(id) < 500 THEN 1900
         WHEN s19__iii(id) < 750 AND s19__yy(id) >= 54 THEN 1800
         WHEN s19__yy(id) < 40 THEN 2000
         WHEN s19__iii(id) >= 900 THEN 1900
    END;

CREATE OR REPLACE MACRO s19__year(id) AS s19__century(id) + s19__yy(id);

-- Birth date of a valid old-model fnr, dnr, synthetic or synthetic_dnr; NULL otherwise, and NULL
-- when the individnummer gives no century or the date does not exist (29 February, non-leap).
CREATE OR REPLACE MACRO s19_id_birth_date(id) AS
    CASE
        WHEN coalesce(s19_id_kind(id) IN ('fnr', 'dnr', 'synthetic', 'synthetic_dnr'), false)
             AND s19__r1(id) = 0
             AND s19__century(id) IS NOT NULL
             AND NOT (s19__month(id) = 2 AND s19__day(id) = 29
                      AND NOT (s19__year(id) % 4 = 0
                               AND (s19__year(id) % 100 <> 0 OR s19__year(id) % 400 = 0)))
        THEN make_date(s19__year(id), s19__month(id), s19__day(id))
    END;

-- Sex from the 9th digit (odd = male) of a valid old-model id other than an FH-number.
CREATE OR REPLACE MACRO s19_id_sex(id) AS
    CASE
        WHEN coalesce(s19_id_kind(id) <> 'fhnr', false) AND s19__r1(id) = 0
        THEN CASE WHEN s19__d(id, 9) % 2 = 1 THEN 'male' ELSE 'female' END
    END;
