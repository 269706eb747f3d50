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
