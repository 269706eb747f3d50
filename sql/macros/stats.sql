-- Statistics for the data-quality limits (sql/dq/rate_shift.sql.j2, count_shift.sql.j2).
-- DuckDB has no erf or normal distribution, so the normal upper tail is the Abramowitz & Stegun
-- 26.2.17 polynomial (absolute error < 7.5e-8, far below any false-alarm rate used here).

-- P(Z > z) for a standard normal Z.
CREATE OR REPLACE MACRO s19_normal_sf(z) AS (
    CASE WHEN z IS NULL THEN NULL
         WHEN z >= 0 THEN s19__normal_tail(z)
         ELSE 1 - s19__normal_tail(-z) END);

CREATE OR REPLACE MACRO s19__normal_tail(x) AS (
    exp(-x * x / 2) / sqrt(2 * pi())
    * (0.319381530 * s19__as_t(x) - 0.356563782 * pow(s19__as_t(x), 2) + 1.781477937 * pow(s19__as_t(x), 3)
       - 1.821255978 * pow(s19__as_t(x), 4) + 1.330274429 * pow(s19__as_t(x), 5)));

CREATE OR REPLACE MACRO s19__as_t(x) AS 1 / (1 + 0.2316419 * x);

-- One-sided p-value of a z score for the side tested: low (a drop), high (a rise) or both.
CREATE OR REPLACE MACRO s19_p_value(z, side) AS (
    CASE side WHEN 'low' THEN s19_normal_sf(-z) WHEN 'high' THEN s19_normal_sf(z)
              ELSE 2 * s19_normal_sf(abs(z)) END);

-- P(lo <= X <= hi) for X ~ Binomial(n, p), 0 < p < 1.
CREATE OR REPLACE MACRO s19__binomial_sum(lo, hi, n, p) AS (
    SELECT coalesce(sum(exp(lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * ln(p) + (n - k) * ln(1 - p))), 0)
    FROM range(CAST(lo AS BIGINT), CAST(hi AS BIGINT) + 1) AS t(k));

-- Exact binomial p-value of x successes in n trials at share p, for the side tested: P(X >= x)
-- (high), P(X <= x) (low), twice the smaller (both). For the small days where the normal
-- approximation does not hold (rate_shift.sql.j2); a sum over at most n + 1 terms.
CREATE OR REPLACE MACRO s19_binomial_p(x, n, p, side) AS (
    CASE side WHEN 'high' THEN s19__binomial_sum(x, n, n, p)
              WHEN 'low' THEN s19__binomial_sum(0, x, n, p)
              ELSE least(1, 2 * least(s19__binomial_sum(x, n, n, p), s19__binomial_sum(0, x, n, p))) END);
