"""Expressions turning typed records into the contract's text: ids, dates, codes."""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth.reference import geography


def person_id(column: str) -> pl.Expr:
    """11-digit identifier with leading zeros; 0 means empty."""
    return pl.when(pl.col(column) > 0).then(pl.col(column).cast(pl.Utf8).str.zfill(11))


def record_id(column: str, prefix: str, width: int = 10) -> pl.Expr:
    return pl.concat_str(pl.lit(prefix), pl.col(column).cast(pl.Utf8).str.zfill(width))


def iso_date(column: str) -> pl.Expr:
    """Day number -> 'YYYY-MM-DD' (null stays null)."""
    return pl.col(column).cast(pl.Date).cast(pl.Utf8)


def as_date(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Date)


def kommune_code(column: str) -> pl.Expr:
    codes = pl.Series(geography().codes.tolist(), dtype=pl.Utf8)
    return pl.col(column).replace_strict(pl.int_range(codes.len(), eager=True), codes, return_dtype=pl.Utf8)


def lookup(column: str, names: tuple[str, ...]) -> pl.Expr:
    """Small integer code -> its name."""
    return pl.col(column).replace_strict(list(range(len(names))), list(names), return_dtype=pl.Utf8)


def strings(values: np.ndarray, present: np.ndarray | None = None, name: str = "") -> pl.Series:
    """A Utf8 series from a numpy array, null where `present` is False."""
    series = pl.Series(name, np.asarray(values).astype(str), dtype=pl.Utf8)
    if present is None:
        return series
    return pl.select(pl.when(pl.Series(np.asarray(present, dtype=bool))).then(series).alias(name)).to_series()
