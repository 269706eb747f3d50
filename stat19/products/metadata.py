"""The release metadata: dimensions, measures, the disclosure rule in words, counts."""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

from stat19.disclosure import MIN_DENOMINATOR, WIDTH
from stat19.geography import GEO_COLUMNS
from stat19.products.derive import hidden_col
from stat19.products.spec import HIDDEN_FLAG, CountSpec, ExcessSpec, ExpectedSpec, ProductSpec, RateSpec


def disclosure_rule_text(spec: ProductSpec) -> str:
    parts = []
    for m in spec.counts:
        if m.rule == "public":
            parts.append(f"{m.name}: public, never hidden")
        elif m.rule == "threshold":
            parts.append(f"{m.name}: hidden when 1-{WIDTH - 1}")
        else:
            parts.append(f"{m.name}: share of {m.denominator}; hidden when 1-{WIDTH - 1}, when "
                         f"{m.denominator} - {m.name} is 1-{WIDTH - 1}, or when 0 < {m.denominator} < {MIN_DENOMINATOR}")
    for m in spec.measures:
        if isinstance(m, RateSpec):
            with_ = m.hidden_with or [m.numerator]
            extra = "" if spec.measure(m.denominator).rule == "public" else f", and when {m.denominator} is hidden"
            parts.append(f"{m.name}: hidden exactly when {' or '.join(with_)} is hidden{extra}")
        elif isinstance(m, ExpectedSpec):
            parts.append(f"{m.name}: hidden when any of the earlier counts it averages is hidden (1-{WIDTH - 1}, "
                         "or by the secondary rule)")
        elif isinstance(m, ExcessSpec):
            parts.append(f"{m.name}: hidden when {m.observed} or {m.expected} is hidden")
    return ("Primary suppression per measure (" + "; ".join(parts) + "). Secondary suppression over all "
            "geography levels, totals and dimensions of the release at once, so that no hidden count can be "
            f"narrowed to an interval shorter than {WIDTH} (or its whole range when the share "
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


def release_metadata(spec: ProductSpec, reference_date: date, df: pl.DataFrame, excluded: int,
                     series: dict[str, Any] | None = None) -> dict[str, Any]:
    """``series``: the series disclosure control block (rule, the neighbour releases it was
    protected against, those without an internal copy, cells it hid per measure), when applied."""
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
            "width": WIDTH,
            "min_denominator": MIN_DENOMINATOR,
            "flags": {"": "published", HIDDEN_FLAG: "hidden by disclosure control (value null)"},
            "hidden_cells": hidden,
            "hidden_values_total": sum(hidden.values()),
            **({"series": series} if series is not None else {}),
        },
        "cells": df.height,
        "excluded_records": excluded,
        "choices": list(spec.choices),
    }
