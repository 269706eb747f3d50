"""`stat19 serve`: a read-only HTTP API over the published releases, and the statistics browser.

Shaped like FHI Statistikk's open API (``/api/open/v1/...``): one source (``stat19``) whose
tables are the products. A table has releases (reference dates), each with revisions; every
endpoint takes ``release`` (``latest``, the default, or ``YYYY-MM-DD``) and ``revision`` (default:
the current one). Queries filter each dimension by ``item`` (the listed codes), ``all``, ``top``
(the first n codes in codelist order) or ``bottom`` (the last n: ``bottom 4`` on a time dimension
is the latest four periods) and answer JSON-stat 2.0 or CSV, labels in English or bokmål
(``lang=en|nb``).

In a JSON-stat answer every combination of the selected categories has a value: cells hidden
by disclosure control are null with status ``:``, cells absent by design (kommune rows for
hiv and tuberculosis) null with status ``.``; the legend is in ``extension.status``.

Everything is read from ``<home>/published`` (catalog.json, each release's files); the server
never writes. OpenAPI documentation at ``/docs``; the browser at ``/``.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import lru_cache
from math import prod
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

import stat19
from stat19 import jsonstat, portal
from stat19.paths import PACKAGE_DIR, Home
from stat19.geography import GEO_COLUMNS
from stat19.publish import CATALOG, DATA_FILES, csv_bytes

API = "/api/open/v1"
SOURCE = "stat19"
BROWSER_DIR = PACKAGE_DIR / "browser"
# a JSON-stat answer holds every combination of the selected categories: beyond this many
# values the client is asked to filter (the whole table stays available as files)
MAX_VALUES = 2_000_000

ReleaseParam = Annotated[str, Query(description="`latest` or a reference date YYYY-MM-DD", pattern=r"^(latest|\d{4}-\d{2}-\d{2})$")]
RevisionParam = Annotated[int | None, Query(ge=1, description="a revision of the release (default: the current one)")]
LangParam = Annotated[Literal["en", "nb"], Query(description="labels in English (en) or Norwegian bokmål (nb)")]


class DimensionFilter(BaseModel):
    code: str = Field(description="a dimension id: `geo`, a product dimension, or `measure`")
    filter: Literal["item", "all", "top", "bottom"] = "item"
    values: list[str] = Field(default_factory=list, description="codes for `item`; `[\"n\"]` for top and bottom")


class ResponseFormat(BaseModel):
    format: Literal["json-stat2", "csv"] = "json-stat2"


class DataQuery(BaseModel):
    dimensions: list[DimensionFilter] = Field(default_factory=list, description="dimensions left out are taken whole")
    response: ResponseFormat = Field(default_factory=ResponseFormat)


# --------------------------------------------------------------------------------------------
# Reading the published zone


@lru_cache(maxsize=256)
def _read_json_cached(path: str, mtime_ns: int) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json(path: Path) -> Any:
    try:
        return _read_json_cached(str(path), path.stat().st_mtime_ns)
    except FileNotFoundError:
        raise HTTPException(404, f"{path.name} not found: nothing published there") from None


class Published:
    def __init__(self, home: Home):
        self.home = home

    def catalog(self) -> dict[str, Any]:
        return _json(self.home.published / CATALOG)

    def product(self, table: str) -> dict[str, Any]:
        products = self.catalog()["products"]
        if table not in products:
            raise HTTPException(404, f"no table {table!r}; the tables are {', '.join(sorted(products))}")
        return products[table]

    def folder(self, table: str, release: str = "latest", revision: int | None = None) -> Path:
        entry = self.product(table)
        day = entry["latest"]["reference_date"] if release == "latest" else release
        found = next((r for r in entry["releases"] if r["reference_date"] == day), None)
        if found is None:
            raise HTTPException(404, f"table {table} has no release {day}; releases: "
                                f"{', '.join(r['reference_date'] for r in entry['releases'])}")
        folder = self.home.published / table / day
        if revision is None or revision == found["revision"]:
            return folder
        if revision not in found["earlier_revisions"]:
            raise HTTPException(404, f"{table}/{day} has no revision {revision}; revisions: "
                                f"{', '.join(map(str, [*found['earlier_revisions'], found['revision']]))}")
        return folder / "revisions" / str(revision)

    def metadata(self, folder: Path) -> dict[str, Any]:
        return _json(folder / "metadata.json")


# --------------------------------------------------------------------------------------------
# Queries


def _dimension_codes(meta: dict[str, Any]) -> dict[str, list[str]]:
    out = {d["name"]: [c["code"] for c in d["categories"]] for d in meta["dimensions"]}
    out["measure"] = [m["name"] for m in meta["measures"]]
    return out


def select(meta: dict[str, Any], filters: list[DimensionFilter]) -> dict[str, list[str]]:
    """The chosen codes of every dimension, in codelist order (400 on a bad filter)."""
    codes = _dimension_codes(meta)
    chosen = dict(codes)
    for f in filters:
        if f.code not in codes:
            raise HTTPException(400, f"no dimension {f.code!r}; the dimensions are {', '.join(codes)}")
        all_codes = codes[f.code]
        if f.filter == "all":
            chosen[f.code] = all_codes
        elif f.filter in ("top", "bottom"):
            if len(f.values) != 1 or not f.values[0].isdigit() or int(f.values[0]) < 1:
                raise HTTPException(400, f"dimension {f.code}: filter {f.filter} takes one value, a number n >= 1")
            n = int(f.values[0])
            chosen[f.code] = all_codes[:n] if f.filter == "top" else all_codes[-n:]
        else:
            unknown = [v for v in f.values if v not in all_codes]
            if unknown or not f.values:
                raise HTTPException(400, f"dimension {f.code}: unknown codes {unknown}" if unknown
                                    else f"dimension {f.code}: filter item needs at least one code")
            wanted = set(f.values)
            chosen[f.code] = [c for c in all_codes if c in wanted]
    return chosen


def _subset_metadata(meta: dict[str, Any], chosen: dict[str, list[str]]) -> dict[str, Any]:
    out = dict(meta)
    out["dimensions"] = [{**d, "categories": [c for c in d["categories"] if c["code"] in set(chosen[d["name"]])]}
                         for d in meta["dimensions"]]
    out["measures"] = [m for m in meta["measures"] if m["name"] in set(chosen["measure"])]
    return out


def query_table(folder: Path, meta: dict[str, Any], chosen: dict[str, list[str]]) -> pl.DataFrame:
    """The published rows of the chosen categories (a filtered scan of data.parquet)."""
    conditions = [pl.col("geo_code" if d["name"] == "geo" else d["name"]).is_in(chosen[d["name"]])
                  for d in meta["dimensions"]]
    keep = [*GEO_COLUMNS, *[d["name"] for d in meta["dimensions"][1:]],
            *[c for m in chosen["measure"] for c in (m, f"{m}_flag")]]
    return pl.scan_parquet(folder / "data.parquet").filter(*conditions).select(keep).collect()


def jsonstat_answer(table: pl.DataFrame, meta: dict[str, Any], lang: str) -> dict[str, Any]:
    """A JSON-stat 2.0 dataset of the chosen cells with every combination present: absent by
    design means null with status '.' (the published grid is complete but for those)."""
    doc = jsonstat.dataset(table, portal.translated(meta, lang), updated=meta.get("generated_at"), extension={
        "product": meta["product"], "reference_date": meta["reference_date"], "revision": meta["revision"],
        **portal.jsonstat_extension(meta, lang),
    }, absent_status=portal.ABSENT)
    doc["note"] = [n[lang] for n in meta.get("notes", [])]
    return doc


def query_template(meta: dict[str, Any]) -> dict[str, Any]:
    """The request body that asks for the whole table (FHI's /query): edit it to filter."""
    return {"dimensions": [{"code": name, "filter": "item", "values": codes}
                           for name, codes in _dimension_codes(meta).items()],
            "response": {"format": "json-stat2"}}


# --------------------------------------------------------------------------------------------
# The application


def create_app(home: Home | Path | str) -> FastAPI:
    home = home if isinstance(home, Home) else Home(Path(home))
    published = Published(home)
    app = FastAPI(
        title="Stat19 statistics API",
        version=stat19.__version__,
        description="Read-only access to the anonymous, disclosure-controlled statistics published by Stat19 "
                    "(synthetic data), in the style of FHI Statistikk's open API. Licence: NLOD 2.0.",
    )

    def table_info(table: str, entry: dict[str, Any]) -> dict[str, Any]:
        meta = published.metadata(published.folder(table))
        return {
            "tableId": table,
            "sourceId": SOURCE,
            "title": meta["title"],
            "title_nb": meta.get("title_nb", meta["title"]),
            "description": meta["description"],
            "latest": entry["latest"],
            "modifiedAt": entry["releases"][-1].get("generated_at"),
            "releases": [{k: r[k] for k in ("reference_date", "revision", "earlier_revisions", "generated_at")}
                         for r in entry["releases"]],
            "dimensions": [d["name"] for d in meta["dimensions"]] + ["measure"],
            "time_dimension": next((d["name"] for d in meta["dimensions"] if d.get("kind") in ("iso_week", "month")), None),
            "geo_levels": meta["dimensions"][0]["levels"],
            "registers": meta.get("source_deliveries", []),  # the deliveries the latest release used
            "licence": meta.get("licence"),
        }

    def check_source(source: str) -> None:
        if source != SOURCE:
            raise HTTPException(404, f"no source {source!r}; the only source is {SOURCE!r}")

    @app.get(f"{API}/Common/source", summary="The sources (one: stat19) and what they publish")
    def sources() -> list[dict[str, Any]]:
        s = portal.settings()
        return [{"id": SOURCE, "title": s["publisher"]["en"], "title_nb": s["publisher"]["nb"],
                 "licence": s["licence"], "contact": s["contact"],
                 "tables": sorted(published.catalog()["products"])}]

    @app.get(f"{API}/Common/codelist", summary="The shared codelists")
    def shared_codelists() -> list[dict[str, Any]]:
        return [{"id": c["id"], "label": c["label"]["en"], "label_nb": c["label"]["nb"]} for c in portal.codelists().values()]

    @app.get(f"{API}/Common/codelist/{{codelist_id}}", summary="One shared codelist, labels in both languages")
    def shared_codelist(codelist_id: str) -> dict[str, Any]:
        if codelist_id not in portal.codelists():
            raise HTTPException(404, f"no codelist {codelist_id!r}; codelists: {', '.join(portal.codelists())}")
        return portal.codelists()[codelist_id]

    @app.get(f"{API}/Common/flag", summary="The status legend of every table")
    def flags(lang: LangParam = "en") -> list[dict[str, str]]:
        return [{"symbol": k, "description": v} for k, v in portal.status_legend(lang).items()]

    @app.get(f"{API}/{{source}}/table", summary="The tables (products) of a source")
    def tables(source: str, modifiedAfter: date | None = None) -> list[dict[str, Any]]:  # noqa: N803 (FHI's name)
        check_source(source)
        out = [table_info(t, e) for t, e in sorted(published.catalog()["products"].items())]
        if modifiedAfter is not None:
            out = [t for t in out if (t["modifiedAt"] or "") > modifiedAfter.isoformat()]
        return out

    @app.get(f"{API}/{{source}}/table/{{table}}", summary="One table: releases, dimensions, licence")
    def table(source: str, table: str) -> dict[str, Any]:
        check_source(source)
        return table_info(table, published.product(table))

    @app.get(f"{API}/{{source}}/table/{{table}}/metadata", summary="The release metadata (definitions, disclosure, notes)")
    def metadata(source: str, table: str, release: ReleaseParam = "latest", revision: RevisionParam = None,
                 lang: LangParam = "en") -> dict[str, Any]:
        check_source(source)
        return portal.translated(published.metadata(published.folder(table, release, revision)), lang)

    @app.get(f"{API}/{{source}}/table/{{table}}/dimension", summary="Dimensions with their categories (codelists)")
    def dimensions(source: str, table: str, release: ReleaseParam = "latest", revision: RevisionParam = None,
                   lang: LangParam = "en") -> list[dict[str, Any]]:
        check_source(source)
        meta = portal.translated(published.metadata(published.folder(table, release, revision)), lang)
        out = [{"code": d["name"], "label": d["label"], "kind": d.get("kind", "geo" if d["name"] == "geo" else "category"),
                "codelist": d.get("codelist"), "total": d.get("total", False),
                "categories": [{k: c[k] for k in ("code", "label", "level") if k in c} for c in d["categories"]]}
               for d in meta["dimensions"]]
        out.append({"code": "measure", "label": portal.settings()["words"]["measure"][lang], "kind": "measure",
                    "categories": [{"code": m["name"], "label": m["label"], "unit": m["unit"],
                                    "decimals": m.get("decimals", 0)} for m in meta["measures"]]})
        return out

    @app.get(f"{API}/{{source}}/table/{{table}}/codelist", summary="The release's codelists.csv as JSON")
    def table_codelists(source: str, table: str, release: ReleaseParam = "latest",
                        revision: RevisionParam = None) -> list[dict[str, Any]]:
        check_source(source)
        folder = published.folder(table, release, revision)
        return pl.read_csv(folder / "codelists.csv", infer_schema=False).to_dicts()

    @app.get(f"{API}/{{source}}/table/{{table}}/flag", summary="The status legend of a table")
    def table_flags(source: str, table: str, lang: LangParam = "en") -> list[dict[str, str]]:
        check_source(source)
        published.product(table)
        return flags(lang)

    @app.get(f"{API}/{{source}}/table/{{table}}/revisions", summary="The revisions of a release")
    def revisions(source: str, table: str, release: ReleaseParam = "latest") -> dict[str, Any]:
        check_source(source)
        folder = published.folder(table, release)
        current = published.metadata(folder)
        out = []
        for n in [*current["earlier_revisions"], current["revision"]]:
            meta = current if n == current["revision"] else published.metadata(folder / "revisions" / str(n))
            out.append({"revision": n, "generated_at": meta.get("generated_at"),
                        "source_deliveries": meta.get("source_deliveries"),
                        "hidden_values": meta["disclosure"]["hidden_values_total"], "cells": meta["cells"]})
        return {"tableId": table, "reference_date": current["reference_date"], "current": current["revision"],
                "revisions": out}

    @app.get(f"{API}/{{source}}/table/{{table}}/query", summary="The request body for the whole table (edit to filter)")
    def query(source: str, table: str, release: ReleaseParam = "latest", revision: RevisionParam = None) -> dict[str, Any]:
        check_source(source)
        return query_template(published.metadata(published.folder(table, release, revision)))

    def answer(table: str, release: str, revision: int | None, lang: str, body: DataQuery) -> Response:
        folder = published.folder(table, release, revision)
        meta = published.metadata(folder)
        chosen = select(meta, body.dimensions)
        sub = _subset_metadata(meta, chosen)
        n_values = prod(len(v) for v in chosen.values())
        if body.response.format == "json-stat2" and n_values > MAX_VALUES:
            raise HTTPException(413, f"the query selects {n_values:,} values, more than {MAX_VALUES:,}: filter some "
                                "dimensions, or download the release's data.parquet")
        rows = query_table(folder, meta, chosen)
        if body.response.format == "csv":
            return Response(csv_bytes(rows, sub), media_type="text/csv; charset=utf-8")
        return Response(json.dumps(jsonstat_answer(rows, sub, lang), ensure_ascii=False, separators=(",", ":")),
                        media_type="application/json")

    @app.post(f"{API}/{{source}}/table/{{table}}/data", summary="Query a table: dimension filters, JSON-stat 2.0 or CSV")
    def data(source: str, table: str, body: Annotated[DataQuery, Body()], release: ReleaseParam = "latest",
             revision: RevisionParam = None, lang: LangParam = "en") -> Response:
        check_source(source)
        return answer(table, release, revision, lang, body)

    @app.get(f"{API}/{{source}}/table/{{table}}/data",
             summary="Query a table from the address: DIMENSION=code,code,... (item filters)")
    def data_get(source: str, table: str, release: ReleaseParam = "latest", revision: RevisionParam = None,
                 lang: LangParam = "en", format: Literal["json-stat2", "csv"] = "json-stat2",  # noqa: A002
                 filters: Annotated[list[str], Query(alias="filter", description="DIMENSION:code,code or DIMENSION:bottom:n")] = []) -> Response:  # noqa: B006
        check_source(source)
        dims = []
        for f in filters:
            m = re.fullmatch(r"([a-z_]+):(?:(top|bottom|all):)?(.*)", f)
            if m is None:
                raise HTTPException(400, f"filter {f!r}: write DIMENSION:code,code or DIMENSION:top:n")
            name, kind, values = m.groups()
            dims.append(DimensionFilter(code=name, filter=kind or "item", values=values.split(",") if values else []))
        return answer(table, release, revision, lang, DataQuery(dimensions=dims, response=ResponseFormat(format=format)))

    @app.get(f"{API}/{{source}}/table/{{table}}/file/{{name}}", summary="A file of a release as published")
    def file(source: str, table: str, name: str, release: ReleaseParam = "latest",
             revision: RevisionParam = None) -> FileResponse:
        check_source(source)
        if name not in DATA_FILES:
            raise HTTPException(404, f"no file {name!r}; files: {', '.join(DATA_FILES)}")
        return FileResponse(published.folder(table, release, revision) / name)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> RedirectResponse:
        query = request.url.query
        return RedirectResponse("/browser/" + (f"?{query}" if query else ""))

    app.mount("/browser", StaticFiles(directory=BROWSER_DIR, html=True), name="browser")
    return app


def serve(home: Home | Path | str, host: str = "127.0.0.1", port: int = 8019) -> None:
    import uvicorn

    uvicorn.run(create_app(home), host=host, port=port, log_level="warning")
