"""Statistics products: declarative specs, one generic engine, one Dagster asset per product.

A product is a YAML spec in ``assets/products/<name>.yaml`` (validated by ``ProductSpec``) plus a
jinja2 SQL template in ``sql/products/<name>.sql.j2``. Adding a product is adding those two files;
nothing here knows a product by name.

The SQL template
----------------
Rendered with ``spec`` (the ``ProductSpec``), ``R`` (the reference date, ``YYYY-MM-DD``) and
``residences`` (a relation of the Folkeregister rows as known on R, see ``residences_relation``;
the macros' ``setup`` turns its bosatt rows into ``_bosatt``),
and run on a connection where the linked tables, ``person_birth_dates`` and the ``ref_*`` tables
resolve by plain name. It builds temporary tables, most of them through the shared macros in
``sql/products/_macros.sql.j2``:

``_cells``       one row per counted unit (or partial sum) at the finest level: the product's
                 dimension columns (no ``total`` codes), ``kommune_2024``, ``fylke_2024`` and one
                 column per ``count`` (source cells) and ``sum`` measure;
``_population``  (products with a ``population`` block) the same for the population, over the
                 population's dimensions only;
``_excluded``    one row, ``n``: records left out because age or sex is unknown;
``_periods``     (products with a time dimension; macro ``periods``) every period from the one
                 holding the earliest counted event to the one containing R;
and finishes with ``{{ m.release(spec) }}``, which sums ``_cells``/``_population`` into every
``total`` and every geography level, lays them on the full grid (every 2024 unit, zeros
included; unknown units ``99``/``9999`` only when non-empty) as ``_release``, and lists rows that
found no place on the grid in ``_unmatched``.

The engine (``compute_release``) then checks the grid and every total, applies
``stat19.disclosure`` to the whole release at once, and derives rates, expected and excess
values. Publication is ``stat19.publish``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import duckdb
import numpy as np
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stat19 import disclosure
from stat19.db import render, run_script, sql_literal
from stat19.faults import checkpoint
from stat19.inputs import fingerprint
from stat19.paths import Home, spec_dirs, spec_files

GEO_COLUMNS = ["geo_level", "geo_code", "geo_name"]
NATIONAL_CODE = "NO"
UNKNOWN_FYLKE, UNKNOWN_KOMMUNE = "99", "9999"
TOTAL = "total"
HIDDEN_FLAG = ":"
DISCLOSURE_WIDTH = 5  # primary rule: 1..4 hidden
MIN_DENOMINATOR = 20  # a share is hidden when 0 < d < 20

_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
_AGE = re.compile(r"^(?:(?P<lo>\d+)-(?P<hi>\d+)|(?P<plus>\d+)\+|<(?P<below>\d+))$")
_RESERVED = {*GEO_COLUMNS, "kommune_2024", "fylke_2024", "measure", "period", "period_start", "period_end"}


class ProductError(Exception):
    """A product could not be computed: a broken spec, SQL or a table that does not add up."""


# --------------------------------------------------------------------------------------------
# Specs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(_Strict):
    name: str

    @field_validator("name")
    @classmethod
    def _ident(cls, v: str) -> str:
        if not _IDENT.match(v):
            raise ValueError(f"name {v!r} must be lower_snake_case")
        return v


class Category(_Strict):
    code: str
    label: str | None = None

    @property
    def text(self) -> str:
        return self.label or self.code


class DimensionSpec(_Named):
    """A dimension besides geography. ``kind``: ``category`` (codes listed), ``age_group`` (codes
    are age bands ``a-b``, ``a+``, ``<a`` covering every age from 0), ``iso_week``/``month``
    (time: periods from the earliest period holding a counted event to the one containing R;
    categories come from the data). ``total``: whether the dimension has a ``total`` category
    (time never has one)."""

    label: str
    label_nb: str | None = None  # Norwegian bokmål label (portal metadata)
    kind: Literal["category", "age_group", "iso_week", "month"] = "category"
    total: bool = False
    total_label: str = "Total"
    categories: list[Category] = Field(default_factory=list)
    description: str = ""


    @property
    def is_time(self) -> bool:
        return self.kind in ("iso_week", "month")

    def codes(self) -> list[str]:
        """The category codes in publication order (``total`` last); empty for time."""
        return [c.code for c in self.categories] + ([TOTAL] if self.total else [])

    def labels(self) -> dict[str, str]:
        out = {c.code: c.text for c in self.categories}
        if self.total:
            out[TOTAL] = self.total_label
        return out

    def parent_map(self) -> dict[str, str] | None:
        return {c.code: TOTAL for c in self.categories} if self.total else None

    def age_bins(self) -> list[tuple[str, int, int | None]]:
        """(code, first age, last age or None) of an age_group dimension."""
        out = []
        for c in self.categories:
            m = _AGE.match(c.code)
            assert m is not None  # validated
            if m["lo"] is not None:
                out.append((c.code, int(m["lo"]), int(m["hi"])))
            elif m["plus"] is not None:
                out.append((c.code, int(m["plus"]), None))
            else:
                out.append((c.code, 0, int(m["below"]) - 1))
        return out

    @model_validator(mode="after")
    def _consistent(self) -> "DimensionSpec":
        codes = [c.code for c in self.categories]
        if self.is_time:
            if self.categories or self.total:
                raise ValueError(f"dimension {self.name}: a time dimension has no listed categories and no total")
            return self
        if not codes:
            raise ValueError(f"dimension {self.name}: no categories")
        if len(set(codes)) != len(codes) or TOTAL in codes:
            raise ValueError(f"dimension {self.name}: category codes must be unique and not {TOTAL!r}")
        if self.kind == "age_group":
            bad = [c for c in codes if not _AGE.match(c)]
            if bad:
                raise ValueError(f"dimension {self.name}: age bands must read a-b, a+ or <a, not {bad}")
            expect = 0
            bins = self.age_bins()
            for code, lo, hi in bins:
                if lo != expect:
                    raise ValueError(f"dimension {self.name}: age band {code} should start at {expect}")
                if hi is None:
                    expect = -1
                    break
                expect = hi + 1
            if expect != -1 or bins[-1][2] is not None:
                raise ValueError(f"dimension {self.name}: the last age band must be open (a+)")
        return self


class GeographySpec(_Strict):
    levels: list[Literal["national", "fylke", "kommune"]]
    label: str = "Geography"
    # what places a record: free text for the metadata (the SQL does it)
    residence: str
    # no kommune rows for these codes of a dimension (e.g. disease: [hiv, tuberculosis])
    no_kommune_for: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[str]) -> list[str]:
        if v not in (["national"], ["national", "fylke"], ["national", "fylke", "kommune"]):
            raise ValueError("levels must be [national], [national, fylke] or [national, fylke, kommune]")
        return v

    @property
    def has_fylke(self) -> bool:
        return "fylke" in self.levels

    @property
    def has_kommune(self) -> bool:
        return "kommune" in self.levels


class PopulationSpec(_Strict):
    """The population block: which dimensions the population varies over (it is repeated over
    the others, e.g. over vaccine_group) and on which date it is counted (metadata text)."""

    dimensions: list[str]
    stated_date: str


class _Measure(_Named):
    label: str
    label_nb: str | None = None  # Norwegian bokmål label (portal metadata)
    definition: str
    unit: str


    @property
    def published(self) -> bool:
        return True


class CountSpec(_Measure):
    kind: Literal["count"]
    rule: Literal["public", "threshold", "share"]
    denominator: str | None = None  # share: the count this one is a share of (same row)
    source: Literal["cells", "population"] = "cells"

    @model_validator(mode="after")
    def _rule(self) -> "CountSpec":
        if (self.rule == "share") != (self.denominator is not None):
            raise ValueError(f"measure {self.name}: a denominator goes with rule 'share' and only there")
        if self.source == "population" and self.rule != "public":
            raise ValueError(f"measure {self.name}: the population is public")
        return self


class SumSpec(_Measure):
    """An additive amount (e.g. DDD) used by rates; never published itself."""

    kind: Literal["sum"]
    decimals: int = 6

    @property
    def published(self) -> bool:
        return False


class RateSpec(_Measure):
    """multiplier × numerator / denominator (/ days in the period when ``per_day``), rounded to
    ``decimals`` half away from zero. Hidden when any count in ``hidden_with`` (default: the
    numerator) is hidden, and when a non-public count denominator is hidden (n/d would give d
    away). Null, not hidden, when the denominator is 0."""

    kind: Literal["rate"]
    numerator: str
    denominator: str
    multiplier: int = 1
    per_day: bool = False
    decimals: int = 1
    hidden_with: list[str] = Field(default_factory=list)


class ExpectedSpec(_Measure):
    """Mean of ``of`` in the same period number (ISO week / month) of the ``years`` previous
    years that have data; null when fewer than ``min_years`` have. Hidden when any of the counts
    it averages is hidden (1–4, or hidden by the secondary rule)."""

    kind: Literal["expected"]
    of: str
    years: int = 5
    min_years: int = 3
    decimals: int = 1


class ExcessSpec(_Measure):
    """``observed - expected``; hidden when either is hidden, null when expected is null."""

    kind: Literal["excess"]
    observed: str
    expected: str
    decimals: int = 1


MeasureSpec = Annotated[Union[CountSpec, SumSpec, RateSpec, ExpectedSpec, ExcessSpec], Field(discriminator="kind")]


class ProductSpec(_Named):
    title: str
    title_nb: str | None = None  # Norwegian bokmål title (portal metadata)
    description: str
    unit_of_count: str  # what one counted record is (metadata)
    sql: str | None = None  # template under sql/; default products/<name>.sql.j2
    geography: GeographySpec
    dimensions: list[DimensionSpec]
    population: PopulationSpec | None = None
    measures: list[MeasureSpec]
    choices: list[str] = Field(default_factory=list)  # where products.md is silent


    # -- lookups used by the engine and the templates
    @property
    def template(self) -> str:
        return self.sql or f"products/{self.name}.sql.j2"

    def dim(self, name: str) -> DimensionSpec:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    def measure(self, name: str) -> Any:
        for m in self.measures:
            if m.name == name:
                return m
        raise KeyError(name)

    @property
    def time(self) -> DimensionSpec | None:
        return next((d for d in self.dimensions if d.is_time), None)

    @property
    def dimension_names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    @property
    def counts(self) -> list[CountSpec]:
        return [m for m in self.measures if isinstance(m, CountSpec)]

    @property
    def cell_measures(self) -> list[CountSpec | SumSpec]:
        """Measures summed from _cells."""
        return [m for m in self.measures if isinstance(m, SumSpec) or (isinstance(m, CountSpec) and m.source == "cells")]

    @property
    def population_measures(self) -> list[CountSpec]:
        return [m for m in self.counts if m.source == "population"]

    @property
    def published_measures(self) -> list[Any]:
        return [m for m in self.measures if m.published]

    @property
    def suppressible(self) -> list[CountSpec]:
        return [m for m in self.counts if m.rule != "public"]

    def varies_with(self, measure: str) -> list[str]:
        """The non-geography dimensions a count or sum varies over (population: its own)."""
        m = self.measure(measure)
        if isinstance(m, CountSpec) and m.source == "population":
            assert self.population is not None
            return list(self.population.dimensions)
        return self.dimension_names

    @model_validator(mode="after")
    def _refs(self) -> "ProductSpec":
        dims = self.dimension_names
        if len(set(dims)) != len(dims):
            raise ValueError("dimension names must be unique")
        if set(dims) & _RESERVED:
            raise ValueError(f"dimension names may not be any of {sorted(_RESERVED)}")
        if sum(d.is_time for d in self.dimensions) > 1:
            raise ValueError("at most one time dimension")
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names) or set(names) & (set(dims) | _RESERVED):
            raise ValueError("measure names must be unique and differ from dimension names")
        by = {m.name: m for m in self.measures}

        def need(ref: str, kinds: tuple[type, ...], what: str) -> Any:
            if ref not in by or not isinstance(by[ref], kinds):
                raise ValueError(f"{what}: {ref!r} is not a {'/'.join(k.__name__ for k in kinds)} measure of the product")
            return by[ref]

        for m in self.measures:
            if isinstance(m, CountSpec) and m.denominator:
                need(m.denominator, (CountSpec,), f"measure {m.name}")
            elif isinstance(m, RateSpec):
                need(m.numerator, (CountSpec, SumSpec), f"rate {m.name}")
                need(m.denominator, (CountSpec,), f"rate {m.name}")
                for h in m.hidden_with:
                    need(h, (CountSpec,), f"rate {m.name} hidden_with")
                if isinstance(by[m.numerator], SumSpec) and not m.hidden_with:
                    raise ValueError(f"rate {m.name}: a rate of a sum needs hidden_with (the counts that protect it)")
                if m.per_day and self.time is None:
                    raise ValueError(f"rate {m.name}: per_day needs a time dimension")
            elif isinstance(m, ExpectedSpec):
                need(m.of, (CountSpec,), f"measure {m.name}")
                if self.time is None:
                    raise ValueError(f"measure {m.name}: expected values need a time dimension")
                if not 1 <= m.min_years <= m.years:
                    raise ValueError(f"measure {m.name}: need 1 <= min_years <= years")
            elif isinstance(m, ExcessSpec):
                need(m.observed, (CountSpec,), f"measure {m.name}")
                need(m.expected, (ExpectedSpec,), f"measure {m.name}")
        if self.population_measures and self.population is None:
            raise ValueError("a count with source population needs the population block")
        if self.population is not None:
            for d in self.population.dimensions:
                if d not in dims:
                    raise ValueError(f"population dimension {d!r} is not a dimension of the product")
            if self.time is not None and self.time.name not in self.population.dimensions:
                raise ValueError("the population must vary with the time dimension")
        for d, codes in self.geography.no_kommune_for.items():
            if d not in dims:
                raise ValueError(f"no_kommune_for: {d!r} is not a dimension")
            unknown = set(codes) - set(self.dim(d).codes())
            if unknown:
                raise ValueError(f"no_kommune_for: {sorted(unknown)} are not categories of {d}")
        return self


def load_product_spec(path: Path) -> ProductSpec:
    try:
        spec = ProductSpec.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except Exception as exc:  # pydantic names the field; add the file
        raise ValueError(f"invalid product spec {path}: {exc}") from exc
    if spec.name != path.stem:
        raise ValueError(f"invalid product spec {path}: name {spec.name!r} must equal the file name")
    if not any((d / spec.template).is_file() for d in spec_dirs("sql")):
        raise ValueError(f"invalid product spec {path}: its SQL sql/{spec.template} does not exist "
                         f"(looked in {', '.join(str(d) for d in spec_dirs('sql'))})")
    return spec


@cache
def product_specs() -> dict[str, ProductSpec]:
    """Every product spec in assets/products, by name."""
    return {p.stem: load_product_spec(p) for p in spec_files("*.yaml", "assets", "products")}


def get_product(product: ProductSpec | str) -> ProductSpec:
    """A product spec, given itself or its name."""
    if isinstance(product, ProductSpec):
        return product
    try:
        return product_specs()[product]
    except KeyError:
        raise ProductError(f"unknown product {product!r}; known: {sorted(product_specs())}") from None


# --------------------------------------------------------------------------------------------
# Time


def period_of(kind: str, day: date) -> str:
    if kind == "iso_week":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{day.year}-{day.month:02d}"


def period_start(kind: str, period: str) -> date:
    if kind == "iso_week":
        y, w = period.split("-W")
        return date.fromisocalendar(int(y), int(w), 1)
    y, mth = period.split("-")
    return date(int(y), int(mth), 1)


def period_days(kind: str, period: str) -> int:
    if kind == "iso_week":
        return 7
    start = period_start(kind, period)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return (nxt - start).days


def next_period(kind: str, period: str) -> str:
    start = period_start(kind, period)
    if kind == "iso_week":
        return period_of(kind, start + timedelta(days=7))
    return period_of(kind, date(start.year + (start.month == 12), start.month % 12 + 1, 1))


def period_range(kind: str, first: str, last: str) -> list[str]:
    out = [first]
    while out[-1] < last:
        out.append(next_period(kind, out[-1]))
    return out


def same_period_in_year(kind: str, period: str, year: int) -> str | None:
    """The period with the same number (ISO week / month) in another year; None when that year
    has no such ISO week (week 53)."""
    if kind == "iso_week":
        w = int(period.split("-W")[1])
        try:
            date.fromisocalendar(year, w, 1)
        except ValueError:
            return None
        return f"{year}-W{w:02d}"
    return f"{year}-{period.split('-')[1]}"


# --------------------------------------------------------------------------------------------
# Rounding: exact, half away from zero


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


# --------------------------------------------------------------------------------------------
# Inputs


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


# --------------------------------------------------------------------------------------------
# The engine


def compute_release(
    con: duckdb.DuckDBPyConnection, product: ProductSpec | str, reference_date: date
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Compute a product for reference date R, disclosure-controlled.

    Returns the *internal* release (true values of every cell, one Boolean ``<measure>_hidden``
    column per published measure; it belongs in the vault, never in the published zone: publish
    it with ``stat19.publish.publish``) and its metadata (everything except what publication
    adds: revision, generation time, source deliveries, pipeline version)."""
    spec = get_product(product)
    checkpoint(f"product:{spec.name}")
    raw, excluded = run_product_sql(con, spec, reference_date)
    geo_names = _geo_names(con)
    raw = _order(spec, raw)
    check_grid(spec, raw, geo_names, reference_date)
    check_totals(spec, raw)
    df = disclosure.suppress(raw, disclosure_dimensions(spec, raw), disclosure_measures(spec),
                             width=DISCLOSURE_WIDTH, min_denominator=MIN_DENOMINATOR)
    df = derive_measures(spec, df)
    df = df.select(internal_columns(spec))
    metadata = release_metadata(spec, reference_date, df, excluded)
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


def _geo_names(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    fylker = dict(con.execute("SELECT fylke_nr, fylke_name FROM ref_fylker").fetchall())
    kommuner = dict(con.execute("SELECT kommune_nr, kommune_name FROM ref_kommuner").fetchall())
    return {"fylke": fylker, "kommune": kommuner}


def _order(spec: ProductSpec, df: pl.DataFrame) -> pl.DataFrame:
    """Columns in publication order: geography, dimensions, measures. (Rows come ordered from
    the release macro: geography level, code, then each dimension's category order, time
    ascending.)"""
    cols = [*GEO_COLUMNS, *spec.dimension_names, *[m.name for m in spec.cell_measures + spec.population_measures]]
    return df.select(cols)


def geo_parent(code: str) -> str | None:
    """Parent of a geography code: kommune -> fylke (first two digits), fylke -> NO."""
    if code == NATIONAL_CODE:
        return None
    return NATIONAL_CODE if len(code) == 2 else code[:2]


def disclosure_dimensions(spec: ProductSpec, df: pl.DataFrame) -> list[disclosure.Dimension]:
    geo = {c: p for c in df["geo_code"].unique().to_list() if (p := geo_parent(c)) is not None}
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


def relation_edges(df: pl.DataFrame, dims: Sequence[tuple[str, Mapping[str, str] | None]]) -> list[tuple[str, pl.DataFrame]]:
    """(dimension, edges) with edges (_prow, _crow): row _crow is a child of row _prow in that
    dimension, every other dimension equal. Only pairs where both rows exist."""
    names = [n for n, _ in dims]
    rows = df.select(names).with_row_index("_row")
    out = []
    for name, parent in dims:
        if not parent:
            continue
        others = [n for n in names if n != name]
        edges = pl.DataFrame({name: list(parent), "_pcode": list(parent.values())},
                             schema={name: pl.String, "_pcode": pl.String})
        link = rows.join(edges, on=name, how="inner").join(
            rows.select(*others, pl.col(name).alias("_pcode"), pl.col("_row").alias("_prow")),
            on=[*others, "_pcode"], how="inner")
        out.append((name, link.select("_prow", pl.col("_row").alias("_crow"))))
    return out


def check_totals(spec: ProductSpec, df: pl.DataFrame) -> None:
    """Every total equals the sum of its parts (counts and sums, every dimension, every
    geography level); a count repeated over a dimension (the population over vaccine_group,
    practitioner_type, ...) equals each part. Shares do not exceed their denominators."""
    dims = [("geo_code", {c: p for c in df["geo_code"].unique().to_list() if (p := geo_parent(c)) is not None})]
    dims += [(d.name, d.parent_map()) for d in spec.dimensions]
    for dim, edges in relation_edges(df, dims):
        for m in spec.cell_measures + spec.population_measures:
            v = df[m.name]
            if v.dtype.is_decimal():
                v = v.cast(pl.Float64)
            e = edges.with_columns(p=v.gather(edges["_prow"]), c=v.gather(edges["_crow"]))
            if dim == "geo_code" or dim in spec.varies_with(m.name):
                bad = e.group_by("_prow").agg(pl.col("p").first(), pl.col("c").sum())
                bad = bad.filter((pl.col("p") - pl.col("c")).abs() > 1e-6)
            else:
                bad = e.filter(pl.col("p") != pl.col("c"))
            if bad.height:
                row = df.row(int(bad["_prow"][0]), named=True)
                cell = {k: row[k] for k in ["geo_code", *spec.dimension_names]}
                raise ProductError(f"{spec.name}: {m.name} at {cell} = {row[m.name]} does not match its parts "
                                   f"over {dim} ({bad['c'][0]})")
    for m in spec.counts:
        if m.denominator and (df[m.name] > df[m.denominator]).any():
            row = df.filter(pl.col(m.name) > pl.col(m.denominator)).row(0, named=True)
            raise ProductError(f"{spec.name}: {m.name} exceeds its denominator {m.denominator} at {row}")


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
                (pl.col("_h") | pl.col("_v").is_between(1, DISCLOSURE_WIDTH - 1)).any().alias("_hh")))
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


# --------------------------------------------------------------------------------------------
# Metadata


def disclosure_rule_text(spec: ProductSpec) -> str:
    parts = []
    for m in spec.counts:
        if m.rule == "public":
            parts.append(f"{m.name}: public, never hidden")
        elif m.rule == "threshold":
            parts.append(f"{m.name}: hidden when 1-{DISCLOSURE_WIDTH - 1}")
        else:
            parts.append(f"{m.name}: share of {m.denominator}; hidden when 1-{DISCLOSURE_WIDTH - 1}, when "
                         f"{m.denominator} - {m.name} is 1-{DISCLOSURE_WIDTH - 1}, or when 0 < {m.denominator} < {MIN_DENOMINATOR}")
    for m in spec.measures:
        if isinstance(m, RateSpec):
            with_ = m.hidden_with or [m.numerator]
            extra = "" if spec.measure(m.denominator).rule == "public" else f", and when {m.denominator} is hidden"
            parts.append(f"{m.name}: hidden exactly when {' or '.join(with_)} is hidden{extra}")
        elif isinstance(m, ExpectedSpec):
            parts.append(f"{m.name}: hidden when any of the earlier counts it averages is hidden (1-{DISCLOSURE_WIDTH - 1}, "
                         "or by the secondary rule)")
        elif isinstance(m, ExcessSpec):
            parts.append(f"{m.name}: hidden when {m.observed} or {m.expected} is hidden")
    return ("Primary suppression per measure (" + "; ".join(parts) + "). Secondary suppression over all "
            "geography levels, totals and dimensions of the release at once, so that no hidden count can be "
            f"narrowed to an interval shorter than {DISCLOSURE_WIDTH} (or its whole range when the share "
            "denominator is smaller) by any linear reasoning; checked by a linear-programming audit before "
            "publication. Flags do not say which rule hid a cell.")


def measure_metadata(spec: ProductSpec, m: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "kind": m.kind, "label": m.label, "definition": m.definition, "unit": m.unit}
    if isinstance(m, CountSpec):
        out.update(rule=m.rule, denominator=m.denominator, varies_with=spec.varies_with(m.name))
    elif isinstance(m, RateSpec):
        out.update(numerator=m.numerator, denominator=m.denominator, multiplier=m.multiplier,
                   per_day_of_period=m.per_day, decimals=m.decimals, rounding="half away from zero",
                   hidden_with=m.hidden_with or [m.numerator])
    elif isinstance(m, ExpectedSpec):
        out.update(of=m.of, years=m.years, min_years=m.min_years, decimals=m.decimals, rounding="half away from zero")
    elif isinstance(m, ExcessSpec):
        out.update(observed=m.observed, expected=m.expected, decimals=m.decimals, rounding="half away from zero")
    return out


def release_metadata(spec: ProductSpec, reference_date: date, df: pl.DataFrame, excluded: int) -> dict[str, Any]:
    geo = df.select(GEO_COLUMNS).unique(maintain_order=True)
    dims: list[dict[str, Any]] = [{
        "name": "geo", "columns": GEO_COLUMNS, "label": spec.geography.label, "levels": spec.geography.levels,
        "residence": spec.geography.residence,
        "no_kommune_for": spec.geography.no_kommune_for,
        "categories": [{"code": c, "label": n, "level": lv} for lv, c, n in geo.iter_rows()],
    }]
    for d in spec.dimensions:
        entry: dict[str, Any] = {"name": d.name, "label": d.label, "kind": d.kind, "total": d.total}
        if d.description:
            entry["description"] = d.description
        if d.is_time:
            entry["categories"] = [{"code": p, "label": p} for p in sorted(df[d.name].unique().to_list())]
        else:
            entry["categories"] = [{"code": c, "label": lab} for c, lab in d.labels().items()]
        dims.append(entry)
    hidden = {m.name: int(df[hidden_col(m.name)].sum()) for m in spec.published_measures}
    return {
        "product": spec.name,
        "title": spec.title,
        "description": spec.description,
        "unit_of_count": spec.unit_of_count,
        "reference_date": reference_date.isoformat(),
        "population": spec.population.model_dump() if spec.population else None,
        "dimensions": dims,
        "measures": [measure_metadata(spec, m) for m in spec.published_measures],
        "disclosure": {
            "rule": disclosure_rule_text(spec),
            "width": DISCLOSURE_WIDTH,
            "min_denominator": MIN_DENOMINATOR,
            "flags": {"": "published", HIDDEN_FLAG: "hidden by disclosure control (value null)"},
            "hidden_cells": hidden,
            "hidden_values_total": sum(hidden.values()),
        },
        "cells": df.height,
        "excluded_records": excluded,
        "choices": list(spec.choices),
    }


# --------------------------------------------------------------------------------------------
# Dagster


Connect = Callable[[Home], AbstractContextManager[duckdb.DuckDBPyConnection]]
SourceDeliveries = Callable[[duckdb.DuckDBPyConnection, date], Sequence[Mapping[str, Any]]]


def _default_connect(home: Home) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    from stat19 import linkage  # the lead's module; imported late so products import without it

    return linkage.linked_connection(home)


def last_deliveries(con: duckdb.DuckDBPyConnection, reference_date: date) -> list[dict[str, str]]:
    """Source and last delivery date of every source loaded up to R (from the vault's
    ``loaded_deliveries``; empty when the connection has no such table)."""
    try:
        rows = con.execute(
            "SELECT source, max(delivery_date) FROM loaded_deliveries WHERE delivery_date <= ? GROUP BY source ORDER BY source",
            [reference_date],
        ).fetchall()
    except duckdb.Error:
        return []
    return [{"source": s, "last_delivery_date": d.isoformat()} for s, d in rows]


def release_inputs(con: duckdb.DuckDBPyConnection, spec: ProductSpec, reference_date: date) -> str:
    """Fingerprint of everything a release for R is computed from: the linked snapshot's inputs
    (every loaded delivery, the key, the code) plus the product and R; '' without a snapshot record.

    Conservative on purpose: any delivery loaded since, even a later one, recomputes the release,
    since identity resolution follows the current identifier chains."""
    try:  # linked_state and release_inputs are the vault's (made by stat19.linkage.link)
        row = con.execute("SELECT inputs_sha256 FROM linked_state").fetchone()
    except duckdb.CatalogException:
        return ""
    try:  # data-quality waivers for R travel in the release's metadata: a new one is a new input
        waivers = con.execute("SELECT coalesce(string_agg(check_name || '/' || waived_at, ';' ORDER BY waived_at), '') "
                              "FROM dq_waivers WHERE delivery_date = ?", [reference_date]).fetchone()[0]
    except duckdb.CatalogException:
        waivers = ""
    return fingerprint(row[0], spec.name, reference_date, waivers) if row else ""


def _content_sha256(target: Path) -> str | None:
    try:
        return json.loads((target / "metadata.json").read_text(encoding="utf-8")).get("content_sha256")
    except (OSError, ValueError):
        return None


def kept_release(con: duckdb.DuckDBPyConnection, product: str, reference_date: date, inputs: str,
                 target: Path) -> dict[str, Any] | None:
    """The metadata of the release in place when it was made from exactly these inputs (and is
    still the one recorded for them), else None: then the release must be computed."""
    if not inputs:
        return None
    row = con.execute("SELECT content_sha256 FROM release_inputs WHERE product = ? AND reference_date = ? "
                      "AND inputs_sha256 = ?", [product, reference_date, inputs]).fetchone()
    if row is None or _content_sha256(target) != row[0]:
        return None
    return json.loads((target / "metadata.json").read_text(encoding="utf-8"))


def record_release_inputs(con: duckdb.DuckDBPyConnection, product: str, reference_date: date, inputs: str,
                          target: Path) -> None:
    """Remember which inputs gave the release now in place (after it is in place: a crash in
    between only costs one more computation)."""
    content = _content_sha256(target)
    if inputs and content:
        con.execute("INSERT OR REPLACE INTO release_inputs VALUES (?, ?, ?, ?)",
                    [product, reference_date, inputs, content])


# The blocking asset check on every product: the disclosure audit publish() runs before writing.
AUDIT_CHECK = "disclosure_audit"


def product_assets(
    upstream_keys: Iterable[Any],
    *,
    connect: Connect | None = None,
    source_deliveries: SourceDeliveries | None = None,
    partitions_def: Any = None,
    resource_key: str = "stat19",
    group_name: str = "published",
    pool: str | None = "duckdb",
    retry_policy: Any = None,
    specs: Mapping[str, ProductSpec] | None = None,
) -> list[Any]:
    """One daily-partitioned asset ``published/<product>`` per product spec (partition = R).

    Each depends on ``upstream_keys``; its body opens a connection with ``connect(home)`` (default
    ``stat19.linkage.linked_connection``), computes the release, takes the source deliveries
    from ``source_deliveries(con, R)`` (default ``last_deliveries``) and publishes it
    (``stat19.publish.publish``: audit, revisions, catalog). The home comes from the resource
    ``resource_key`` (its ``home`` attribute, a path)."""
    import warnings

    from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetKey, DailyPartitionsDefinition,
                         Failure, MaterializeResult, PreviewWarning, asset)

    from stat19 import publish as pub
    from stat19.progress import say

    deps = [k if isinstance(k, AssetKey) else AssetKey(k) for k in upstream_keys]
    if partitions_def is None:
        partitions_def = DailyPartitionsDefinition(start_date=os.environ.get("STAT19_FIRST_DATE", "2025-01-01"),
                                                   timezone="Europe/Oslo", end_offset=1)
    opener = connect or _default_connect
    deliveries_of = source_deliveries or last_deliveries

    def make(spec: ProductSpec) -> Any:
        key = AssetKey(["published", spec.name])
        with warnings.catch_warnings():  # partitioned check specs are a Dagster preview we opt into
            warnings.simplefilter("ignore", PreviewWarning)
            audit_check = AssetCheckSpec(
                AUDIT_CHECK, asset=key, blocking=True, partitions_def=partitions_def,
                description="The disclosure audit of the release (primary rule, every additive relation, the "
                "LP intervals of hidden cells, derived values and flags): a failure publishes nothing.")

        @asset(
            key=key,
            deps=deps,
            partitions_def=partitions_def,
            group_name=group_name,
            description=f"{spec.title}: disclosure-controlled release for the partition's reference date "
                        "(Parquet, CSV, JSON-stat 2.0, metadata).",
            required_resource_keys={resource_key},
            retry_policy=retry_policy,
            pool=pool,
            kinds={"duckdb", "parquet"},
            check_specs=[audit_check],
        )
        def _product(context):  # type: ignore[no-untyped-def]  # (no annotations: resolved lazily by Dagster)
            res = getattr(context.resources, resource_key)
            home = Home(Path(res.home))
            day = date.fromisoformat(context.partition_key)
            target = pub.release_dir(home, spec.name, day)
            with opener(home) as con:
                inputs = release_inputs(con, spec, day)
                kept = kept_release(con, spec.name, day, inputs, target)
                if kept is None:
                    df, meta = compute_release(con, spec, day)
                    deliveries = list(deliveries_of(con, day))
            if kept is not None:  # the release in place was made from the same inputs: not computed again
                line = f"{day}  {spec.name:<21}unchanged revision {kept['revision']}: inputs unchanged, not recomputed"
                context.log.info(line)
                say(line)
                yield MaterializeResult(
                    metadata={"status": "unchanged", "revision": kept["revision"], "path": str(target),
                              "recomputed": False},
                    check_results=[AssetCheckResult(
                        check_name=AUDIT_CHECK, passed=True,
                        description=f"revision {kept['revision']} passed the audit when it was published")])
                return
            try:
                result = pub.publish(home, spec, day, df, meta, source_deliveries=deliveries)
            except pub.DisclosureAuditFailed as exc:
                # the check fails with the finding, and the step with it: nothing was written
                yield AssetCheckResult(check_name=AUDIT_CHECK, passed=False, severity=AssetCheckSeverity.ERROR,
                                       description=str(exc)[:2000])
                raise Failure(description=str(exc), allow_retries=False) from exc
            with opener(home) as con:
                record_release_inputs(con, spec.name, day, inputs, target)
            line = (f"{day}  {spec.name:<21}{result.status} revision {result.revision}: {meta['cells']:,} cells, "
                    f"{meta['disclosure']['hidden_values_total']:,} values hidden")
            context.log.info(line)
            say(line)
            hidden = meta["disclosure"]["hidden_values_total"]
            yield MaterializeResult(
                metadata={
                    "status": result.status,
                    "revision": result.revision,
                    "path": str(result.path),
                    "cells": meta["cells"],
                    "hidden_values": hidden,
                    "excluded_records": meta["excluded_records"],
                },
                check_results=[AssetCheckResult(
                    check_name=AUDIT_CHECK, passed=True,
                    description=f"passed: {meta['cells']:,} cells, {hidden:,} values hidden",
                    metadata={"cells": meta["cells"], "hidden_values": hidden})])

        return _product

    return [make(s) for s in (specs or product_specs()).values()]

