"""The engine: a product's SQL, the grid and totals checks, then disclosure control on the whole release."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date
from typing import Any

import duckdb
import numpy as np
import polars as pl

from stat19 import disclosure
from stat19.db import render, run_script, sql_literal
from stat19.faults import checkpoint
from stat19.geography import GEO_COLUMNS, NATIONAL_CODE, UNKNOWN_FYLKE, UNKNOWN_KOMMUNE, geo_names, geo_parents
from stat19.products.derive import derive_measures, hidden_col, internal_columns
from stat19.products.metadata import release_metadata
from stat19.products.periods import period_of, period_range
from stat19.products.spec import ProductError, ProductSpec, SumSpec, get_product


def residences_relation(con: duckdb.DuckDBPyConnection, reference_date: date) -> str:
    """SQL for the Folkeregister rows as known on R (pid, status, kommune_2024, valid_from,
    valid_to; a NULL valid_from means "since birth"): ``residences`` filtered on
    _known_from/_known_to when it carries them (docs/linked_model.md), else the linked zone's
    ``residences_as_of(R)`` table macro. Without either, R's residences cannot be known: error."""
    r = sql_literal(reference_date.isoformat())
    try:
        res = con.execute("SELECT * FROM residences LIMIT 0")
        cols = [d[0] for d in res.description]
        res.fetchall()
    except duckdb.Error:
        cols = []
    if "_known_from" in cols:
        return (f"(SELECT * FROM residences WHERE _known_from <= DATE {r} "
                f"AND (_known_to IS NULL OR _known_to > DATE {r}))")
    try:
        con.execute(f"SELECT * FROM residences_as_of(DATE {r}) LIMIT 0").fetchall()
        return f"residences_as_of(DATE {r})"
    except duckdb.Error as exc:
        raise ProductError("the connection has neither residences with _known_from/_known_to nor the "
                           f"residences_as_of(DATE) macro, so residence as known on R is unknown: {exc}") from exc




def compute_release(
    con: duckdb.DuckDBPyConnection, product: ProductSpec | str, reference_date: date,
    timings: dict[str, float] | None = None, neighbours: Mapping[str, pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Compute a product for reference date R, disclosure-controlled.

    Returns the *internal* release (true values of every cell, one Boolean ``<measure>_hidden``
    column per published measure; it belongs in the vault, never in the published zone: publish
    it with ``stat19.publish.publish``) and its metadata (everything except what publication
    adds: revision, generation time, source deliveries, pipeline version). ``neighbours`` (label
    -> internal release, ``stat19.publish.neighbours``): the published releases it must not be
    differenced against; the single-release suppression is then widened by
    ``disclosure.protect_series`` and the metadata says against which. ``timings``, when given,
    receives the seconds of its phases (``sql``, ``checks``, ``suppression``, ``series``)."""
    spec = get_product(product)
    checkpoint(f"product:{spec.name}")
    clock = time.perf_counter()
    raw, excluded = run_product_sql(con, spec, reference_date)
    raw = _order(spec, raw)
    sql_done = time.perf_counter()
    check_grid(spec, raw, geo_names(con), reference_date)
    dimensions = disclosure_dimensions(spec, raw)
    relations = disclosure.build_relations(raw, dimensions)  # once: the totals check and suppression share them
    check_totals(spec, raw, relations)
    checks_done = time.perf_counter()
    measures = disclosure_measures(spec)
    df = disclosure.suppress(raw, dimensions, measures, relations=relations)
    suppressed = time.perf_counter()
    if timings is not None:
        timings.update(sql=sql_done - clock, checks=checks_done - sql_done, suppression=suppressed - checks_done)
    series = None
    if neighbours is not None:
        single = df
        df = disclosure.protect_series(df, neighbours, dimensions, measures, relations=relations)
        if timings is not None:
            timings["series"] = time.perf_counter() - suppressed
        series = {
            "rule": disclosure.SERIES_RULE,
            "protected_against": sorted(neighbours),
            # published before the vault kept internal copies: not compared (README "Publication")
            "without_internal_copy": sorted(getattr(neighbours, "without_copy", [])),
            # cells hidden to protect the differences, beyond the single-release suppression
            "hidden_cells": {m.name: int((df[hidden_col(m.name)] & ~single[hidden_col(m.name)]).sum())
                             for m in measures},
        }
    df = derive_measures(spec, df)
    df = df.select(internal_columns(spec))
    metadata = release_metadata(spec, reference_date, df, excluded, series=series)
    return df, metadata


def run_product_sql(con: duckdb.DuckDBPyConnection, spec: ProductSpec, reference_date: date) -> tuple[pl.DataFrame, int]:
    """Run the product's SQL; the full table of counts (no suppression) and excluded_records."""
    sql = render(spec.template, spec=spec, R=reference_date.isoformat(),
                 residences=residences_relation(con, reference_date))
    before = _temp_tables(con)
    try:
        try:
            run_script(con, sql)
        except duckdb.Error as exc:
            raise ProductError(f"{spec.name}: its SQL failed for {reference_date}: {exc}") from exc
        unmatched = con.execute("SELECT count(*) FROM _unmatched").fetchall()[0][0]
        if unmatched:
            example = con.sql("SELECT * FROM _unmatched LIMIT 1").pl().row(0, named=True)
            raise ProductError(f"{spec.name}: {unmatched} aggregated row(s) found no place in the release grid "
                               f"(a code outside the spec or the 2024 geography?), e.g. {example}")
        df = con.sql("SELECT * FROM _release").pl()
        excluded = int(con.execute("SELECT coalesce(sum(n), 0) FROM _excluded").fetchall()[0][0])
    finally:
        for t in _temp_tables(con) - before:
            con.execute(f'DROP TABLE IF EXISTS temp.main."{t}"')
    casts = [pl.col(m.name).cast(pl.Int64) for m in spec.counts]
    return df.with_columns(casts), excluded


def _temp_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}


def _order(spec: ProductSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Columns in publication order: geography, dimensions, measures. (Rows come ordered from
    the release macro: geography level, code, then each dimension's category order, time
    ascending.)"""
    cols = [*GEO_COLUMNS, *spec.dimension_names, *[m.name for m in spec.cell_measures + spec.population_measures]]
    return df.select(cols)



def disclosure_dimensions(spec: ProductSpec, df: pl.DataFrame) -> list[disclosure.Dimension]:
    geo = geo_parents(df["geo_code"].unique().to_list())
    return [disclosure.Dimension("geo_code", geo)] + [disclosure.Dimension(d.name, d.parent_map()) for d in spec.dimensions]


def disclosure_measures(spec: ProductSpec) -> list[disclosure.CountMeasure]:
    """The counts disclosure control decides on (public ones are never hidden and need no
    relation: the population is repeated, not summed, over some dimensions)."""
    return [disclosure.CountMeasure(m.name, m.rule, m.denominator) for m in spec.suppressible]


def check_grid(spec: ProductSpec, df: pl.DataFrame, geo_names: Mapping[str, Mapping[str, str]],
               reference_date: date) -> None:
    """Every 2024 unit at every level, every category, every period from the first to the one
    containing R, each exactly once; unknown units only when non-empty."""
    where = f"{spec.name} for {reference_date}"
    if df.height == 0:
        raise ProductError(f"{where}: the release is empty")
    keys = [*GEO_COLUMNS[:2], *spec.dimension_names]
    dup = df.select(keys).is_duplicated()
    if dup.any():
        raise ProductError(f"{where}: cells listed twice, e.g. {df.filter(dup).row(0, named=True)}")
    for m in spec.counts + [m for m in spec.cell_measures if isinstance(m, SumSpec)]:
        if df[m.name].null_count():
            raise ProductError(f"{where}: measure {m.name} has nulls")
    levels = set(df["geo_level"].unique().to_list())
    if levels != set(spec.geography.levels):
        raise ProductError(f"{where}: geography levels {sorted(levels)}, spec says {spec.geography.levels}")
    # expected geography per level
    unknown = df.filter(pl.col("geo_code").is_in([UNKNOWN_FYLKE, UNKNOWN_KOMMUNE]))
    measures = [m.name for m in spec.cell_measures + spec.population_measures]
    if unknown.height and not unknown.select(pl.any_horizontal(pl.col(c) != 0 for c in measures).any()).item():
        raise ProductError(f"{where}: the unknown unit is listed although empty")
    with_unknown = unknown.height > 0
    units: list[tuple[str, str]] = [("national", NATIONAL_CODE)]
    if spec.geography.has_fylke:
        units += [("fylke", c) for c in geo_names["fylke"]] + ([("fylke", UNKNOWN_FYLKE)] if with_unknown else [])
    if spec.geography.has_kommune:
        units += [("kommune", c) for c in geo_names["kommune"]] + ([("kommune", UNKNOWN_KOMMUNE)] if with_unknown else [])
    grid = pl.DataFrame(units, schema={"geo_level": pl.String, "geo_code": pl.String}, orient="row")
    for d in spec.dimensions:
        if d.is_time:
            found = sorted(df[d.name].unique().to_list())
            last = period_of(d.kind, reference_date)
            if found[-1] != last:
                raise ProductError(f"{where}: the last {d.name} is {found[-1]}, not the one containing R ({last})")
            codes = period_range(d.kind, found[0], last)
        else:
            codes = d.codes()
        grid = grid.join(pl.DataFrame({d.name: codes}, schema={d.name: pl.String}), how="cross")
    for dim, codes in spec.geography.no_kommune_for.items():
        grid = grid.filter(~((pl.col("geo_level") == "kommune") & pl.col(dim).is_in(codes)))
    have = df.select(keys)
    missing = grid.join(have, on=keys, how="anti")
    extra = have.join(grid, on=keys, how="anti")
    if missing.height or extra.height:
        example = (missing if missing.height else extra).row(0, named=True)
        raise ProductError(f"{where}: {missing.height} cell(s) missing and {extra.height} unexpected, e.g. {example}")


def check_totals(spec: ProductSpec, df: pl.DataFrame, relations: disclosure.Relations | None = None) -> None:
    """Every total equals the sum of its parts (counts and sums, every dimension, every
    geography level); a count repeated over a dimension (the population over vaccine_group,
    practitioner_type, ...) equals each part. Shares do not exceed their denominators."""
    rel = relations or disclosure.build_relations(df, disclosure_dimensions(spec, df))
    child_rel, child = rel.children()
    for m in spec.cell_measures + spec.population_measures:
        col = df[m.name]
        v = (col.cast(pl.Float64) if col.dtype.is_decimal() else col).to_numpy().astype(float)
        summed = np.array([d == "geo_code" or d in spec.varies_with(m.name) for d in rel.dimensions], dtype=bool)
        summed = summed[rel.dimension] if rel.dimension.size else np.zeros(0, dtype=bool)
        residual = rel.matrix @ v  # total minus the sum of its parts
        bad = summed & (np.abs(residual) > 1e-6)
        repeated = ~summed[child_rel] & (v[child] != v[rel.parent[child_rel]])
        bad[child_rel[repeated]] = True
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            row = df.row(int(rel.parent[r]), named=True)
            cell = {k: row[k] for k in ["geo_code", *spec.dimension_names]}
            parts = v[rel.parent[r]] - residual[r] if summed[r] else v[child[child_rel == r]].tolist()
            raise ProductError(f"{spec.name}: {m.name} at {cell} = {row[m.name]} does not match its parts "
                               f"over {rel.dimensions[rel.dimension[r]]} ({parts})")
    for m in spec.counts:
        if m.denominator and (df[m.name] > df[m.denominator]).any():
            row = df.filter(pl.col(m.name) > pl.col(m.denominator)).row(0, named=True)
            raise ProductError(f"{spec.name}: {m.name} exceeds its denominator {m.denominator} at {row}")
