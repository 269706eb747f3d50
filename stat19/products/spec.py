"""Product specs: the YAML a product is declared in (``assets/products/<name>.yaml``), validated."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from stat19.geography import GEO_COLUMNS
from stat19.paths import SpecError, spec_dirs, spec_files
from stat19.spec_base import NamedSpec, SpecModel, load_spec

TOTAL = "total"
HIDDEN_FLAG = ":"

_AGE = re.compile(r"^(?:(?P<lo>\d+)-(?P<hi>\d+)|(?P<plus>\d+)\+|<(?P<below>\d+))$")
_RESERVED = {*GEO_COLUMNS, "kommune_2024", "fylke_2024", "measure", "period", "period_start", "period_end"}


class ProductError(Exception):
    """A product could not be computed: a broken spec, SQL or a table that does not add up."""


class Category(SpecModel):
    code: str
    label: str | None = None

    @property
    def text(self) -> str:
        return self.label or self.code


class DimensionSpec(NamedSpec):
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


class GeographySpec(SpecModel):
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


class PopulationSpec(SpecModel):
    """The population block: which dimensions the population varies over (it is repeated over
    the others, e.g. over vaccine_group) and on which date it is counted (metadata text)."""

    dimensions: list[str]
    stated_date: str


class _Measure(NamedSpec):
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


class ProductSpec(NamedSpec):
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
    spec = load_spec(path, ProductSpec, "product spec")
    if spec.name != path.stem:
        raise SpecError(f"invalid product spec {path}: name {spec.name!r} must equal the file name")
    if not any((d / spec.template).is_file() for d in spec_dirs("sql")):
        raise SpecError(f"invalid product spec {path}: its SQL sql/{spec.template} does not exist "
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
