"""Portal-grade release files: codelists, labels in English and Norwegian bokmål, licence,
contact and notes, the status of cells absent by design, and a Table Schema for ``data.csv``.

Everything here is derived from the product spec (``title_nb``, ``label_nb``), the shared
codelists in ``assets/codelists/<dimension>.yaml`` and ``assets/portal.yaml``; nothing knows a
product by name. Category labels come from a codelist for listed categories, and are made by
rule for age bands (``0-4`` -> "0–4 years" / "0–4 år"), periods (``2026-W02``, ``2026-01``) and
geography (names from the reference data, the same in both languages but for Norway and the
unknown units).

Files beside ``data.csv`` in each release:

``codelists.csv``     every dimension's codes in publication order with both labels, parent
                      (``total`` or the geography above) and geography level;
``data.schema.json``  a Frictionless Table Schema of ``data.csv``: types, missing values per
                      field, primary key and the row order, so that a reader gets the Parquet's
                      types (``geo_code`` stays text, counts stay integers).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import polars as pl
import yaml

from stat19.paths import ASSETS_DIR, spec_files
from stat19.geography import GEO_COLUMNS, geo_parent
from stat19.products import TOTAL, ProductSpec

LANGUAGES = ("en", "nb")
ABSENT = "."  # JSON-stat status of a cell absent by design
GEO_LEVEL_ORDER = ("national", "fylke", "kommune")

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_AGE = re.compile(r"^(?:(\d+)-(\d+)|(\d+)\+|<(\d+))$")


@cache
def settings() -> dict[str, Any]:
    """assets/portal.yaml: publisher, licence, contact, notes, status legend, common words."""
    return yaml.safe_load((ASSETS_DIR / "portal.yaml").read_text(encoding="utf-8"))


@cache
def codelists() -> dict[str, dict[str, Any]]:
    """The shared codelists by id (assets/codelists/<id>.yaml)."""
    out = {}
    for path in spec_files("*.yaml", "assets", "codelists"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if doc.get("id") != path.stem:
            raise ValueError(f"{path.name}: id {doc.get('id')!r} must be the file name")
        out[doc["id"]] = doc
    return out


def status_legend(lang: str = "en") -> dict[str, str]:
    return {code: text[lang] for code, text in settings()["status"].items()}


def _word(key: str, lang: str) -> str:
    return settings()["words"][key][lang]


def age_label(code: str, lang: str) -> str:
    m = _AGE.match(code)
    if m is None:
        raise ValueError(f"{code!r} is not an age band")
    lo, hi, plus, below = m.groups()
    if lo is not None:
        return f"{lo}–{hi} {_word('years', lang)}"
    if plus is not None:
        return f"{plus} {_word('years_or_older', lang)}"
    return f"{_word('under', lang)} {below} {_word('years', lang)}"


def period_label(code: str, lang: str) -> str:
    if m := _WEEK.match(code):
        return f"{m[1]} {_word('week', lang)} {int(m[2])}"
    if m := _MONTH.match(code):
        return f"{settings()['months'][lang][int(m[2]) - 1]} {m[1]}"
    raise ValueError(f"{code!r} is not an ISO week (YYYY-Www) or a month (YYYY-MM)")


def geo_label(code: str, name: str, lang: str) -> str:
    return settings()["geo_names_en"].get(code, name) if lang == "en" else name


def _category_labels(dim: Mapping[str, Any], code: str, where: str) -> dict[str, str]:
    if code == TOTAL:
        return {lang: _word("total", lang) for lang in LANGUAGES}
    kind = dim.get("kind", "category")
    if kind == "age_group":
        return {lang: age_label(code, lang) for lang in LANGUAGES}
    if kind in ("iso_week", "month"):
        return {lang: period_label(code, lang) for lang in LANGUAGES}
    codes = {c["code"]: c for c in codelists().get(dim["name"], {}).get("codes", [])}
    if code not in codes:
        raise ValueError(f"{where}: code {code!r} of dimension {dim['name']} is not in "
                         f"assets/codelists/{dim['name']}.yaml")
    return {lang: codes[code][lang] for lang in LANGUAGES}


# --------------------------------------------------------------------------------------------
# Release metadata


def describe_release(spec: ProductSpec, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The release metadata with everything a portal needs added: both languages for the title,
    every dimension, category and measure; the codelist of each dimension; licence, contact,
    publisher and notes; the status legend and the cells absent by design; the row order."""
    where = f"{spec.name}/{metadata['reference_date']}"
    doc = copy.deepcopy(dict(metadata))
    s = settings()
    doc["title_nb"] = spec.title_nb or spec.title
    dims = doc["dimensions"]
    geo = dims[0]
    geo["label_nb"] = _word("geography", "nb")
    geo["codelist"] = "geo"
    geo["level_labels"] = {lv: {lang: _word(lv, lang) for lang in LANGUAGES} for lv in geo["levels"]}
    for c in geo["categories"]:
        c["label_nb"] = c["label"]
        c["label"] = geo_label(c["code"], c["label"], "en")
    for d, d_spec in zip(dims[1:], spec.dimensions):
        d["label_nb"] = d_spec.label_nb or d["label"]
        d["codelist"] = d["name"] if d["name"] in codelists() else None
        for c in d["categories"]:
            labels = _category_labels(d, c["code"], where)
            c["label"], c["label_nb"] = labels["en"], labels["nb"]
    for m in doc["measures"]:
        m["label_nb"] = spec.measure(m["name"]).label_nb or m["label"]
    doc["languages"] = list(LANGUAGES)
    doc["publisher"] = s["publisher"]
    doc["licence"] = s["licence"]
    doc["contact"] = s["contact"]
    doc["notes"] = s["notes"]
    doc["status"] = s["status"]
    doc["absent_by_design"] = absent_by_design(spec)
    doc["row_order"] = row_order(metadata)
    return doc


def absent_by_design(spec: ProductSpec) -> list[dict[str, Any]]:
    """The cells the product never computes (kommune rows for some codes), with the reason."""
    template = settings()["absent_by_design"]
    return [{
        "geo_level": "kommune",
        "dimension": dim,
        "codes": list(codes),
        "status": ABSENT,
        "reason": {lang: template[lang].format(codes=", ".join(codes), level="kommune") for lang in LANGUAGES},
    } for dim, codes in spec.geography.no_kommune_for.items()]


def row_order(metadata: Mapping[str, Any]) -> list[str]:
    """How the rows of data.csv and data.parquet are ordered (the order the release macro lays
    them in, checked by the tests)."""
    out = ["geo_level (national, fylke, kommune)", "geo_code (ascending)"]
    for d in metadata["dimensions"][1:]:
        out.append(f"{d['name']} ({'ascending' if d.get('kind') in ('iso_week', 'month') else 'codelist order, total last'})")
    return out


def jsonstat_extension(metadata: Mapping[str, Any], lang: str = "en") -> dict[str, Any]:
    """What a JSON-stat dataset of a release carries in ``extension`` besides the release's id:
    the status legend, the cells absent by design, licence and contact."""
    return {
        "status": status_legend(lang),
        "absent_by_design": metadata.get("absent_by_design", []),
        "licence": metadata.get("licence"),
        "contact": metadata.get("contact"),
    }


def translated(metadata: Mapping[str, Any], lang: str) -> dict[str, Any]:
    """The metadata with every ``label`` (and the title) in ``lang`` (en or nb)."""
    if lang not in LANGUAGES:
        raise ValueError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
    doc = copy.deepcopy(dict(metadata))
    if lang == "en":
        return doc
    doc["title"] = doc.get("title_nb", doc["title"])
    for item in [*doc["dimensions"], *doc["measures"], *[c for d in doc["dimensions"] for c in d["categories"]]]:
        item["label"] = item.get("label_nb", item["label"])
    return doc


# --------------------------------------------------------------------------------------------
# Files


def codelist_table(metadata: Mapping[str, Any]) -> pl.DataFrame:
    """Every dimension's codes in publication order: dimension, code, label_en, label_nb,
    parent, level (geography only), sort_order."""
    rows: list[dict[str, Any]] = []
    for d in metadata["dimensions"]:
        for i, c in enumerate(d["categories"]):
            if d["name"] == "geo":
                parent, level = geo_parent(c["code"]), c["level"]
            else:
                parent, level = (TOTAL if d.get("total") and c["code"] != TOTAL else None), None
            rows.append({"dimension": d["name"], "code": c["code"], "label_en": c["label"],
                         "label_nb": c.get("label_nb", c["label"]), "parent": parent, "level": level,
                         "sort_order": i + 1})
    return pl.DataFrame(rows, schema={"dimension": pl.String, "code": pl.String, "label_en": pl.String,
                                      "label_nb": pl.String, "parent": pl.String, "level": pl.String,
                                      "sort_order": pl.Int64})


_TABLE_SCHEMA_TYPES = {pl.String: "string", pl.Int64: "integer", pl.Float64: "number"}


def table_schema(table: pl.DataFrame, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A Frictionless Table Schema of the published CSV. Values are missing when empty (a
    hidden or undefined value); a flag is never missing: empty means published."""
    measures = {m["name"]: m for m in metadata["measures"]}
    dims = {d["name"]: d for d in metadata["dimensions"]}
    fields = []
    for name, dtype in table.schema.items():
        if dtype not in _TABLE_SCHEMA_TYPES:
            raise ValueError(f"column {name}: no Table Schema type for {dtype}")
        field: dict[str, Any] = {"name": name, "type": _TABLE_SCHEMA_TYPES[dtype]}
        if name in measures:
            m = measures[name]
            field.update(title=m["label"], description=m["definition"], unit=m["unit"])
            if "decimals" in m and m["kind"] != "count":
                field["decimals"] = m["decimals"]
            field["missingValues"] = [""]
        elif name.endswith("_flag") and name.removesuffix("_flag") in measures:
            field.update(title=f"Status of {name.removesuffix('_flag')}",
                         description="empty: published; ':' hidden by disclosure control",
                         constraints={"enum": ["", ":"]}, missingValues=[])
        else:
            dim = dims["geo"] if name in GEO_COLUMNS else dims[name]
            field.update(title=dim["label"] if name != "geo_level" else "Geography level",
                         constraints={"required": True}, missingValues=[])
            codes = ([*dim["levels"]] if name == "geo_level" else
                     None if name in ("geo_code", "geo_name") else [c["code"] for c in dim["categories"]])
            if codes is not None:
                field["constraints"]["enum"] = codes
        fields.append(field)
    return {
        "$schema": "https://datapackage.org/profiles/2.0/tableschema.json",
        "fields": fields,
        "missingValues": [""],
        "primaryKey": ["geo_code", *[d["name"] for d in metadata["dimensions"][1:]]],
        "fieldsMatch": "exact",
        "x_row_order": metadata.get("row_order", row_order(metadata)),
    }
