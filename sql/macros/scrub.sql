-- Masking identifier-shaped tokens in free text before it leaves the vault (sources.md: no
-- identifier outside the vault). A token is a run of digits in which up to three separators
-- (whitespace, no-break space, dots, hyphens, en and em dashes) may stand between two digits,
-- so "01019012345", "010190 12345", "01.01.90-123.45" are all one token. A token is masked as a
-- whole when any 11 consecutive digits of it form an identifier valid under either check-digit
-- model (s19_id_valid, every kind); digits that only look alike (wrong check digit, impossible
-- date, 10 digits) stay. Set-based, no UDF: the text is split around its tokens and put back
-- together with the masked ones replaced.
--
-- Public: s19_scrub(text) VARCHAR (NULL stays NULL), s19_scrub_list(list) VARCHAR[],
-- s19_strip_separators(text) VARCHAR.

-- The separators that may stand between the digits of one identifier. The record-key rule
-- (identifier_in_key, sql/ingest/check.sql.j2) strips the same ones, so a key the scrubber would
-- mask is also a key ingest refuses. (Built into constant patterns: DuckDB folds them.)
CREATE OR REPLACE MACRO s19__separator() AS '[\s.\-\x{00A0}\x{2013}\x{2014}]';
CREATE OR REPLACE MACRO s19__token() AS '[0-9](?:' || s19__separator() || '{0,3}[0-9])*';
CREATE OR REPLACE MACRO s19_strip_separators(text) AS regexp_replace(text, s19__separator(), '', 'g');

-- True when some 11-digit window of the digit string d is a valid identifier. The windows are
-- made BIGINTs first: inside a lambda DuckDB does not share repeated subexpressions, so the
-- validity test must work on a plain number (measured: 60x faster than s19_id_valid on text).
CREATE OR REPLACE MACRO s19__has_id(d) AS coalesce(list_bool_or(list_transform(
    list_transform(range(1, length(d) - 9), lambda i: CAST(substr(d, i, 11) AS BIGINT)),
    lambda n: s19__valid_flag(n) = 1)), false);

-- A token, with its separators, masked or kept.
CREATE OR REPLACE MACRO s19__mask_token(token) AS
    CASE WHEN s19__has_id(regexp_replace(token, '[^0-9]', '', 'g')) THEN '[fnr]' ELSE token END;

-- The text is cut into the pieces between tokens (one more than the tokens) and put together
-- again with each token masked or kept.
CREATE OR REPLACE MACRO s19__rejoin(pieces, tokens) AS
    pieces[1] || array_to_string(list_transform(list_zip(list_transform(tokens, lambda t: s19__mask_token(t)), pieces[2:]),
                                                lambda p: p[1] || p[2]), '');

-- The quick test first skips the work for text without 11 digits close together.
CREATE OR REPLACE MACRO s19_scrub(text) AS
    CASE WHEN regexp_matches(text, '[0-9](?:' || s19__separator() || '{0,3}[0-9]){10}') THEN
        s19__rejoin(string_split_regex(text, s19__token()), regexp_extract_all(text, s19__token()))
    ELSE text END;

CREATE OR REPLACE MACRO s19_scrub_list(list) AS list_transform(list, lambda x: s19_scrub(x));
