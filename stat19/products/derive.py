"""Derived measures (rates, expected and excess values) and the public table, after suppression.

Rounding is exact, half away from zero (``round_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from stat19 import disclosure
from stat19.geography import GEO_COLUMNS
from stat19.products.periods import period_days, same_period_in_year
from stat19.products.spec import HIDDEN_FLAG, CountSpec, ExcessSpec, ExpectedSpec, ProductSpec, RateSpec, get_product


def round_ratio(num: Sequence[Any], den: Sequence[int], decimals: int) -> list[float | None]:
    """num/den rounded to ``decimals`` half away from zero, exactly (num: ints, or Decimals /
    Fractions for sums); None where den is 0 or either is None."""
    from fractions import Fraction

    scale = 10**decimals
    out: list[float | None] = []
    for n, d in zip(num, den, strict=True):
        if n is None or d is None or d == 0:
            out.append(None)
            continue
        if isinstance(n, int) and isinstance(d, int):
            p, q = n * scale, d
        else:
            f = Fraction(n) * scale / Fraction(d)
            p, q = f.numerator, f.denominator
        if q < 0:
            p, q = -p, -q
        r = (2 * abs(p) + q) // (2 * q)  # floor(|x| + 1/2)
        out.append((r if p >= 0 else -r) / scale)
    return out


def hidden_col(measure: str) -> str:
    return disclosure.hidden_column(measure)


def derive_measures(spec: ProductSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Rates, expected and excess values and their hidden flags, after count suppression."""
    for m in spec.counts:
        if m.rule == "public":
            df = df.with_columns(pl.lit(False).alias(hidden_col(m.name)))
    time = spec.time
    days = None
    if time is not None:
        lengths = {p: period_days(time.kind, p) for p in df[time.name].unique().to_list()}
        days = df[time.name].replace_strict(lengths, return_dtype=pl.Int64)
    for m in spec.measures:
        if isinstance(m, RateSpec):
            den = df[m.denominator]
            den_scaled = (den * (days if m.per_day else 1)).to_list()
            num = df[m.numerator]
            nums = num.to_list()
            nums = [None if n is None else n * m.multiplier for n in nums]
            value = round_ratio(nums, den_scaled, m.decimals)
            hidden = np.zeros(df.height, dtype=bool)
            for h in m.hidden_with or [m.numerator]:
                hidden |= df[hidden_col(h)].to_numpy()
            if isinstance(spec.measure(m.numerator), CountSpec):
                hidden |= df[hidden_col(m.numerator)].to_numpy()
            if spec.measure(m.denominator).rule != "public":
                hidden |= df[hidden_col(m.denominator)].to_numpy()
            df = df.with_columns(pl.Series(m.name, value, dtype=pl.Float64), pl.Series(hidden_col(m.name), hidden))
        elif isinstance(m, ExpectedSpec):
            df = _expected(spec, m, df)
        elif isinstance(m, ExcessSpec):
            exp = spec.measure(m.expected)
            sums, ks = df[f"_{m.expected}_sum"].to_list(), df[f"_{m.expected}_years"].to_list()
            obs = df[m.observed].to_list()
            num = [None if s is None else o * k - s for o, s, k in zip(obs, sums, ks, strict=True)]
            value = round_ratio(num, [k or 0 for k in ks], m.decimals)
            hidden = df[hidden_col(m.observed)].to_numpy() | df[hidden_col(exp.name)].to_numpy()
            df = df.with_columns(pl.Series(m.name, value, dtype=pl.Float64), pl.Series(hidden_col(m.name), hidden))
    return df


def _expected(spec: ProductSpec, m: ExpectedSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Mean of m.of in the same period number of the m.years previous years that have data.

    A year has data for a period when that period lies within the release's periods (from the
    earliest period holding a counted event): earlier weeks are before the register's data, not
    weeks without deaths."""
    time = spec.time
    assert time is not None
    periods = sorted(df[time.name].unique().to_list())
    first = periods[0]
    keys = ["geo_code", *[d for d in spec.dimension_names if d != time.name]]
    base = df.select(*keys, pl.col(time.name).alias("_src"), pl.col(m.of).alias("_v"),
                     pl.col(hidden_col(m.of)).alias("_h"))
    pairs = []
    for p in periods:
        year = int(p[:4])
        for k in range(1, m.years + 1):
            q = same_period_in_year(time.kind, p, year - k)
            if q is not None and first <= q:
                pairs.append((p, q))
    pairs_df = pl.DataFrame(pairs, schema={time.name: pl.String, "_src": pl.String}, orient="row")
    agg = (df.select(*keys, time.name)
           .join(pairs_df, on=time.name, how="inner")
           .join(base, on=[*keys, "_src"], how="inner")
           .group_by([*keys, time.name])
           .agg(pl.col("_v").sum().alias("_s"), pl.len().cast(pl.Int64).alias("_k"),
                (pl.col("_h") | pl.col("_v").is_between(1, disclosure.WIDTH - 1)).any().alias("_hh")))
    df = df.join(agg, on=[*keys, time.name], how="left", maintain_order="left")
    enough = pl.col("_k").fill_null(0) >= m.min_years
    df = df.with_columns(
        pl.when(enough).then(pl.col("_s")).otherwise(None).alias(f"_{m.name}_sum"),
        pl.when(enough).then(pl.col("_k")).otherwise(None).alias(f"_{m.name}_years"),
        (enough & pl.col("_hh").fill_null(False)).alias(hidden_col(m.name)),
    ).drop("_s", "_k", "_hh")
    value = round_ratio(df[f"_{m.name}_sum"].to_list(), [k or 0 for k in df[f"_{m.name}_years"].to_list()], m.decimals)
    return df.with_columns(pl.Series(m.name, value, dtype=pl.Float64))


def internal_columns(spec: ProductSpec) -> list[str]:
    cols = [*GEO_COLUMNS, *spec.dimension_names]
    for m in spec.measures:
        cols.append(m.name)
        if m.published:
            cols.append(hidden_col(m.name))
    return cols


def public_table(spec: ProductSpec | str, df: pl.DataFrame) -> pl.DataFrame:
    """The published table: dimension columns, then each published measure (null when hidden)
    followed by ``<measure>_flag`` ('' published, ':' hidden). Hidden values never leave here."""
    spec = get_product(spec)
    cols: list[pl.Expr] = [pl.col(c).cast(pl.String) for c in [*GEO_COLUMNS, *spec.dimension_names]]
    for m in spec.published_measures:
        hidden = pl.col(hidden_col(m.name))
        dtype = pl.Int64 if isinstance(m, CountSpec) else pl.Float64
        cols.append(pl.when(hidden).then(None).otherwise(pl.col(m.name)).cast(dtype).alias(m.name))
        cols.append(pl.when(hidden).then(pl.lit(HIDDEN_FLAG)).otherwise(pl.lit("")).alias(f"{m.name}_flag"))
    return df.select(cols)
