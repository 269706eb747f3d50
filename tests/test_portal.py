"""The portal: `stat19 serve` (the API, through httpx against a running server, JSON-stat read
with pyjstat), the statistics browser (rendered in headless Chromium) and the portal-grade files
(codelists, labels in two languages, licence, the Table Schema read by pandas, row order).

One small landing (1,000 persons, 8 days, another seed and start than the demo) is generated
and run through `stat19 run` once for the module; every test reads that published home.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx
import pandas as pd
import polars as pl
import pytest
import uvicorn
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pyjstat import pyjstat

from stat19 import portal, serve
from stat19.cli import main
from stat19.paths import ASSETS_DIR, Home
from stat19.products import product_specs
from stat19.publish import publish_product

API = "/api/open/v1/stat19"
# pyjstat calls its own deprecated helper internally; under `make test` (pytest-xdist, --dist
# loadgroup) this file runs on one worker, which builds its module fixtures (home, server) once
pytestmark = [pytest.mark.filterwarnings("ignore:Shouldn't use this function:DeprecationWarning"),
              pytest.mark.xdist_group("test_portal")]
PRODUCTS = sorted(product_specs())


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Home:
    root = tmp_path_factory.mktemp("portal")
    landing, home = root / "landing", root / "home"
    assert main(["synth", "--persons", "1000", "--start", "2026-03-02", "--days", "8", "--out", str(landing),
                 "--seed", "23"]) == 0
    assert main(["run", "--landing", str(landing), "--home", str(home)]) == 0
    return Home(home)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn serving a home in a thread on 127.0.0.1 and a free port."""

    def __init__(self, home: Home):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(serve.create_app(home), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> httpx.Client:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        self.client = httpx.Client(base_url=self.url, timeout=60)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def server(home):
    s = Server(home)
    with s as client:
        yield s, client


@pytest.fixture
def api(server) -> httpx.Client:
    return server[1]


def release(home: Home, product: str) -> Path:
    catalog = json.loads((home.published / "catalog.json").read_text())
    return home.published / catalog["products"][product]["latest"]["path"]


def meta_of(home: Home, product: str) -> dict:
    return json.loads((release(home, product) / "metadata.json").read_text())


def parquet(home: Home, product: str) -> pl.DataFrame:
    return pl.read_parquet(release(home, product) / "data.parquet")


def files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------------------------
# The API


def test_sources_tables_and_docs(home, api):
    catalog = json.loads((home.published / "catalog.json").read_text())
    sources = api.get("/api/open/v1/Common/source").json()
    assert [s["id"] for s in sources] == ["stat19"] and sources[0]["licence"]["id"] == "NLOD-2.0"
    tables = api.get(f"{API}/table").json()
    assert [t["tableId"] for t in tables] == sorted(catalog["products"]) == PRODUCTS
    for t in tables:
        assert t["latest"] == catalog["products"][t["tableId"]]["latest"]
        assert t["title_nb"] and t["title_nb"] != t["title"]
        assert api.get(f"{API}/table/{t['tableId']}").json() == t
    assert api.get(f"{API}/table", params={"modifiedAfter": "2999-01-01"}).json() == []
    weekly = {t["tableId"]: t["time_dimension"] for t in tables}
    assert weekly["msis_cases_weekly"] == "iso_week" and weekly["antibiotics_monthly"] == "month"
    assert weekly["vaccine_coverage"] is None
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert f"{API.replace('stat19', '{source}')}/table/{{table}}/data" in paths


@pytest.mark.parametrize("product", PRODUCTS)
def test_a_filtered_query_read_by_pyjstat_agrees_with_the_parquet(home, api, product):
    """Fylker and the country, the two latest periods, every other category: pyjstat reads the
    answer and every value and status is the Parquet's."""
    meta = meta_of(home, product)
    geo = [c["code"] for c in meta["dimensions"][0]["categories"] if c["level"] in ("national", "fylke")][:6]
    time_dim = next((d["name"] for d in meta["dimensions"] if d.get("kind") in ("iso_week", "month")), None)
    body = {"dimensions": [{"code": "geo", "filter": "item", "values": geo}]
            + ([{"code": time_dim, "filter": "bottom", "values": ["2"]}] if time_dim else [])}
    r = api.post(f"{API}/table/{product}/data", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["version"] == "2.0" and doc["class"] == "dataset"
    assert doc["extension"]["licence"]["id"] == "NLOD-2.0" and doc["note"]
    df = pyjstat.Dataset.read(r.text).write("dataframe", naming="id")
    want = parquet(home, product).filter(pl.col("geo_code").is_in(geo))
    if time_dim:
        periods = sorted(want[time_dim].unique())[-2:]
        assert doc["dimension"][time_dim]["category"]["index"] == {p: i for i, p in enumerate(periods)}
        want = want.filter(pl.col(time_dim).is_in(periods))
    measures = [m["name"] for m in meta["measures"]]
    assert len(df) == want.height * len(measures) == len(doc["value"])
    got = pl.from_pandas(df.rename(columns={"geo": "geo_code"})).with_columns(pl.col("value").cast(pl.Float64))
    keys = ["geo_code", *[d["name"] for d in meta["dimensions"][1:]]]
    long = want.unpivot(on=measures, index=keys, variable_name="measure", value_name="expected")
    both = long.join(got, on=[*keys, "measure"], how="inner")
    assert both.height == long.height
    e, v = both["expected"].cast(pl.Float64), both["value"]
    assert ((e.is_null() & v.is_nan()) | ((e - v).abs() < 1e-9)).all()
    # statuses: ':' exactly where the Parquet flags a hidden value
    hidden = sum(int((want[f"{m}_flag"] == ":").sum()) for m in measures)
    assert sum(1 for s in doc["status"].values() if s == ":") == hidden
    assert set(doc["status"].values()) <= {":"}


def test_kommune_cells_absent_by_design_carry_status_dot(home, api):
    meta = meta_of(home, "msis_cases_weekly")
    kommune = next(c["code"] for c in meta["dimensions"][0]["categories"] if c["level"] == "kommune")
    r = api.get(f"{API}/table/msis_cases_weekly/data", params={"filter": [
        f"geo:{kommune}", "disease:hiv,covid19,tuberculosis", "iso_week:bottom:1", "age_group:total", "sex:total",
        "measure:cases"]})
    doc = r.json()
    assert doc["size"] == [1, 3, 1, 1, 1, 1] and len(doc["value"]) == 3  # dense: every combination
    order = doc["dimension"]["disease"]["category"]["index"]
    assert list(order) == ["covid19", "tuberculosis", "hiv"]  # codelist order
    assert doc["value"][order["covid19"]] is not None and doc["status"].get(str(order["covid19"])) is None
    for code in ("hiv", "tuberculosis"):
        assert doc["value"][order[code]] is None and doc["status"][str(order[code])] == "."
    assert "by design" in doc["extension"]["status"]["."]
    [absent] = doc["extension"]["absent_by_design"]
    assert absent["codes"] == ["hiv", "tuberculosis"] and absent["geo_level"] == "kommune"
    assert "hiv" in absent["reason"]["en"] and "kommune" in absent["reason"]["nb"]
    # the legend as its own endpoint, in both languages
    legend = {f["symbol"]: f["description"] for f in api.get(f"{API}/table/msis_cases_weekly/flag").json()}
    legend_nb = {f["symbol"]: f["description"] for f in api.get(f"{API}/table/msis_cases_weekly/flag",
                                                                params={"lang": "nb"}).json()}
    assert set(legend) == set(legend_nb) == {":", "."} and legend[":"] != legend_nb[":"]
    # a product without absent cells says so
    assert api.get(f"{API}/table/sari_weekly/metadata").json()["absent_by_design"] == []


def test_csv_answer_is_the_parquet_rows(home, api):
    r = api.get(f"{API}/table/primary_care_monthly/data", params={
        "format": "csv", "filter": ["geo:NO,03,11", "contact_mode:video,oppmote", "measure:contacts,contacts_per_1000"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    got = pl.read_csv(r.content, schema_overrides={"geo_code": pl.String})
    want = (parquet(home, "primary_care_monthly")
            .filter(pl.col("geo_code").is_in(["NO", "03", "11"]), pl.col("contact_mode").is_in(["video", "oppmote"]))
            .select("geo_level", "geo_code", "geo_name", "month", "practitioner_type", "contact_mode",
                    "contacts", "contacts_flag", "contacts_per_1000", "contacts_per_1000_flag"))
    assert got.columns == want.columns and got.height == want.height > 0
    assert got["contacts"].to_list() == want["contacts"].to_list()
    assert got["contacts_flag"].fill_null("").to_list() == want["contacts_flag"].to_list()
    assert got["geo_code"].to_list() == want["geo_code"].to_list()  # same rows, same order


def test_filters_and_errors(home, api, monkeypatch):
    def post(body, **params):
        return api.post(f"{API}/table/sari_weekly/data", json=body, params=params)

    weeks = [c["code"] for c in api.get(f"{API}/table/sari_weekly/dimension").json()[1]["categories"]]
    top = post({"dimensions": [{"code": "iso_week", "filter": "top", "values": ["1"]}, {"code": "geo", "values": ["NO"]}]})
    assert list(top.json()["dimension"]["iso_week"]["category"]["index"]) == weeks[:1]
    r = post({"dimensions": [{"code": "sex", "values": ["male"]}]})
    assert r.status_code == 400 and "no dimension 'sex'" in r.json()["detail"]
    r = post({"dimensions": [{"code": "pathogen", "values": ["rsv", "ebola"]}]})
    assert r.status_code == 400 and "ebola" in r.json()["detail"]
    r = post({"dimensions": [{"code": "iso_week", "filter": "top", "values": ["x"]}]})
    assert r.status_code == 400
    assert api.get(f"{API}/table/nope").status_code == 404
    assert api.get("/api/open/v1/other/table").status_code == 404
    r = api.get(f"{API}/table/sari_weekly/metadata", params={"release": "2020-01-01"})
    assert r.status_code == 404 and "no release 2020-01-01" in r.json()["detail"]
    assert api.get(f"{API}/table/sari_weekly/metadata", params={"release": "../../x"}).status_code == 422
    assert api.get(f"{API}/table/sari_weekly/file/../../catalog.json").status_code == 404
    monkeypatch.setattr(serve, "MAX_VALUES", 10)
    r = post({"dimensions": []})
    assert r.status_code == 413 and "filter" in r.json()["detail"]


def test_labels_in_bokmal_and_english(home, api):
    en = api.get(f"{API}/table/vaccine_coverage/dimension").json()
    nb = api.get(f"{API}/table/vaccine_coverage/dimension", params={"lang": "nb"}).json()
    assert [d["code"] for d in en] == [d["code"] for d in nb] == ["geo", "vaccine_group", "age_group", "sex", "measure"]
    label = {lang: {d["code"]: {c["code"]: c["label"] for c in d["categories"]} for d in dims}
             for lang, dims in (("en", en), ("nb", nb))}
    assert (label["en"]["sex"]["female"], label["nb"]["sex"]["female"]) == ("Female", "Kvinne")
    assert (label["en"]["geo"]["NO"], label["nb"]["geo"]["NO"]) == ("Norway", "Norge")
    assert (label["en"]["age_group"]["85+"], label["nb"]["age_group"]["85+"]) == ("85 years or older", "85 år og eldre")
    assert label["nb"]["sex"]["total"] == "I alt"
    assert nb[1]["label"] == "Vaksinegruppe" and nb[-1]["label"] == "Måltall"
    doc = api.get(f"{API}/table/antibiotics_monthly/data", params={"lang": "nb", "filter": ["geo:NO", "month:bottom:1"]}).json()
    assert doc["label"] == "Antibiotikabruk i befolkningen etter måned"
    assert re.fullmatch(r"(januar|februar|mars) 2026", next(iter(doc["dimension"]["month"]["category"]["label"].values())))
    meta = api.get(f"{API}/table/antibiotics_monthly/metadata", params={"lang": "nb"}).json()
    assert meta["title"] == doc["label"] and meta["licence"]["id"] == "NLOD-2.0"
    assert meta["contact"]["email"] and all(n["nb"] and n["en"] for n in meta["notes"])


def test_codelists_in_the_api(home, api):
    ids = {c["id"] for c in api.get("/api/open/v1/Common/codelist").json()}
    assert {"sex", "disease", "contact_mode"} <= ids
    oppmote = next(c for c in api.get("/api/open/v1/Common/codelist/contact_mode").json()["codes"] if c["code"] == "oppmote")
    assert (oppmote["en"], oppmote["nb"]) == ("Attendance", "Oppmøte")
    rows = api.get(f"{API}/table/msis_cases_weekly/codelist").json()
    assert rows == pl.read_csv(release(home, "msis_cases_weekly") / "codelists.csv", infer_schema=False).to_dicts()
    assert api.get("/api/open/v1/Common/codelist/nope").status_code == 404


def test_the_server_writes_nothing(home, server):
    before = files(home.root)
    _, client = server
    for product in PRODUCTS:
        client.get(f"{API}/table/{product}/query")
        client.post(f"{API}/table/{product}/data", json={"dimensions": [{"code": "geo", "values": ["NO"]}]})
        client.get(f"{API}/table/{product}/file/data.csv")
    assert files(home.root) == before


def test_stat19_serve_from_the_command_line(home, tmp_path):
    """`stat19 serve` as a user starts it: answers, stops cleanly on Ctrl-C; a home with nothing
    published is refused."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "stat19.cli", "serve", "--home", str(home.root), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/open/v1/Common/source", timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no answer"
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()[0]["tables"] == PRODUCTS
        table = httpx.get(f"http://127.0.0.1:{port}{API}/table/sari_weekly").json()
        assert {d["source"] for d in table["registers"]} >= {"npr", "msis_lab", "freg"}
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "stat19.cli", "serve", "--home", str(tmp_path / "empty")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nothing published" in r.stderr


def test_releases_and_revisions(tmp_path):
    """Two revisions of a release (a late delivery changed its inputs): the API serves both."""
    from test_publish import DELIVERIES, R, small_world

    home = Home(tmp_path / "home").ensure()
    world = small_world()
    publish_product(world.con, home, "vaccine_coverage", R, DELIVERIES)
    first = pl.read_parquet(home.published / "vaccine_coverage" / R.isoformat() / "data.parquet")
    p = world.person(date(1990, 5, 1), "female", "0301")
    world.vaccination(p, date(2025, 10, 1), known=date(2026, 2, 1))
    assert publish_product(world.con, home, "vaccine_coverage", R, DELIVERIES).revision == 2
    with Server(home) as api:
        revs = api.get(f"{API}/table/vaccine_coverage/revisions").json()
        assert revs["current"] == 2 and [r["revision"] for r in revs["revisions"]] == [1, 2]
        def csv(**params):
            r = api.get(f"{API}/table/vaccine_coverage/data", params={"format": "csv", **params})
            assert r.status_code == 200, r.text
            return pl.read_csv(r.content, schema_overrides={"geo_code": pl.String})
        old, new = csv(revision=1), csv(release=R.isoformat())
        assert old["vaccinated_ever"].to_list() == first["vaccinated_ever"].to_list()
        assert old["vaccinated_ever"].to_list() != new["vaccinated_ever"].to_list()
        assert api.get(f"{API}/table/vaccine_coverage/metadata", params={"revision": 1}).json()["revision"] == 1
        assert api.get(f"{API}/table/vaccine_coverage/data", params={"revision": 3}).status_code == 404


# --------------------------------------------------------------------------------------------
# Portal-grade files


def pandas_options(schema: dict) -> dict:
    """What a user of the Table Schema passes to pandas.read_csv."""
    types = {"string": "string", "integer": "Int64", "number": "Float64"}
    return {
        "dtype": {f["name"]: types[f["type"]] for f in schema["fields"]},
        "keep_default_na": False,
        "na_values": {f["name"]: f.get("missingValues", schema["missingValues"]) for f in schema["fields"]},
    }


@pytest.mark.parametrize("product", PRODUCTS)
def test_read_csv_guided_by_the_table_schema_gives_the_parquet_types(home, product):
    folder = release(home, product)
    schema = json.loads((folder / "data.schema.json").read_text())
    from_parquet = pd.read_parquet(folder / "data.parquet", dtype_backend="numpy_nullable")
    from_csv = pd.read_csv(folder / "data.csv", **pandas_options(schema))
    assert [f["name"] for f in schema["fields"]] == list(from_parquet.columns)
    assert schema["primaryKey"] == ["geo_code", *[d["name"] for d in meta_of(home, product)["dimensions"][1:]]]
    assert dict(from_csv.dtypes) == dict(from_parquet.dtypes)
    pd.testing.assert_frame_equal(from_csv, from_parquet, check_exact=False, rtol=0, atol=1e-9)
    # without the schema pandas guesses: geo codes become numbers and counts with gaps floats
    naive = pd.read_csv(folder / "data.csv", low_memory=False)
    assert naive["geo_code"].dtype != from_parquet["geo_code"].dtype or naive["geo_code"].astype(str).tolist() != \
        from_parquet["geo_code"].tolist()


def test_a_wrong_schema_is_caught_by_the_schema_test(home):
    folder = release(home, "msis_cases_weekly")
    schema = json.loads((folder / "data.schema.json").read_text())
    wrong = {**schema, "fields": [{**f, "type": "integer"} if f["name"] == "geo_code" else f for f in schema["fields"]]}
    with pytest.raises((ValueError, TypeError)):  # "NO" is not an integer
        pd.read_csv(folder / "data.csv", **pandas_options(wrong))
    wrong = {**schema, "fields": [{**f, "type": "number"} if f["name"] == "cases" else f for f in schema["fields"]]}
    assert dict(pd.read_csv(folder / "data.csv", **pandas_options(wrong)).dtypes) != \
        dict(pd.read_parquet(folder / "data.parquet", dtype_backend="numpy_nullable").dtypes)


@pytest.mark.parametrize("product", PRODUCTS)
def test_rows_come_in_the_stated_order_and_codelists_cover_them(home, product):
    folder = release(home, product)
    meta = meta_of(home, product)
    table = pl.read_csv(folder / "data.csv", infer_schema=False)
    codes = pl.read_csv(folder / "codelists.csv", infer_schema=False)
    rank = {}
    for d in meta["dimensions"]:
        cl = codes.filter(pl.col("dimension") == d["name"])
        assert cl["code"].to_list() == [c["code"] for c in d["categories"]]
        assert cl["label_nb"].null_count() == 0 and cl["label_en"].null_count() == 0
        column = "geo_code" if d["name"] == "geo" else d["name"]
        assert set(table[column]) <= set(cl["code"])
        if d["name"] != "geo":  # geography: by level, then code; the others: codelist order
            rank[column] = {c: i for i, c in enumerate(cl["code"])}
    levels = {lv: i for i, lv in enumerate(portal.GEO_LEVEL_ORDER)}
    key = table.select(
        pl.col("geo_level").replace_strict(levels).alias("level"), "geo_code",
        *[pl.col(c).replace_strict(r).alias(c) for c, r in rank.items()])
    assert key.equals(key.sort(key.columns)), "rows are not in the stated order"
    assert meta["row_order"][0].startswith("geo_level")
    time_dims = [d["name"] for d in meta["dimensions"] if d.get("kind") in ("iso_week", "month")]
    for t in time_dims:  # ascending periods are also the codelist order
        assert codes.filter(pl.col("dimension") == t)["code"].to_list() == sorted(set(table[t]))


def test_every_product_has_bokmal_labels_and_codelists():
    for spec in product_specs().values():
        assert spec.title_nb, spec.name
        for item in [*spec.dimensions, *spec.published_measures]:
            assert item.label_nb, (spec.name, item.name)
        for d in spec.dimensions:
            if d.kind != "category":
                continue
            codelist = yaml.safe_load((ASSETS_DIR / "codelists" / f"{d.name}.yaml").read_text())
            by_code = {c["code"]: c for c in codelist["codes"]}
            for c in d.categories:  # the spec's English label is the codelist's
                assert by_code[c.code]["en"] == c.text, (spec.name, d.name, c.code)


def test_a_code_missing_from_its_codelist_stops_the_publication(home):
    spec = product_specs()["primary_care_monthly"]
    meta = meta_of(home, "primary_care_monthly")
    raw = {**meta, "dimensions": [{**d, "categories": [*d["categories"], {"code": "brev", "label": "Letter"}]}
                                  if d["name"] == "contact_mode" else d for d in meta["dimensions"]]}
    with pytest.raises(ValueError, match="'brev' of dimension contact_mode is not in assets/codelists/contact_mode.yaml"):
        portal.describe_release(spec, raw)


@given(st.integers(2000, 2100), st.integers(1, 53), st.integers(1, 12))
def test_period_labels(year, week, month):
    code = f"{year}-W{week:02d}"
    assert portal.period_label(code, "en") == f"{year} week {week}"
    assert portal.period_label(code, "nb") == f"{year} uke {week}"
    en, nb = portal.period_label(f"{year}-{month:02d}", "en"), portal.period_label(f"{year}-{month:02d}", "nb")
    assert en.endswith(f" {year}") and nb.endswith(f" {year}")
    assert en[0].isupper() and nb[0].islower()  # English month names are capitalised, Norwegian ones not


@given(st.integers(0, 120), st.integers(0, 30))
def test_age_labels(lo, width):
    hi = lo + width
    assert portal.age_label(f"{lo}-{hi}", "nb") == f"{lo}–{hi} år"
    assert portal.age_label(f"{lo}+", "en") == f"{lo} years or older"
    assert portal.age_label(f"<{lo + 1}", "nb") == f"under {lo + 1} år"


# --------------------------------------------------------------------------------------------
# The browser, in headless Chromium


CHROMIUM = shutil.which("chromium")


def render(url: str, profile: Path) -> str:
    """The DOM of a page after its scripts ran (headless Chromium, fresh profile)."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def cells(dom: str, table_id: str) -> dict[str, tuple[str, str]]:
    """code -> (status, shown text) of the rows of a rendered table."""
    m = re.search(rf'<table id="{table_id}">(.*?)</table>', dom, re.S)
    assert m, f"no table {table_id}"
    return {code: (status, text) for code, status, text in
            re.findall(r'<tr data-code="([^"]+)"><td>[^<]*</td><td class="cell" data-status="([^"]*)">([^<]*)</td></tr>', m[1])}


def _hidden_fylke_view(table: pl.DataFrame, meta: dict) -> dict[str, str]:
    """A choice of categories with a hidden cell at fylke level, if the release has one."""
    for m in meta["measures"]:
        rows = table.filter(pl.col("geo_level") == "fylke", pl.col(f"{m['name']}_flag") == ":")
        if rows.height:
            row = rows.row(0, named=True)
            return {"measure": m["name"], **{d["name"]: row[d["name"]] for d in meta["dimensions"][1:]}}
    return {"measure": meta["measures"][0]["name"]}


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_browser_renders_each_product(home, server, product, tmp_path):
    s, _ = server
    meta = meta_of(home, product)
    table = parquet(home, product)
    view = _hidden_fylke_view(table, meta)
    query = "&".join(f"{k}={v}" for k, v in view.items())
    dom = render(f"{s.url}/browser/?table={product}&{query}", tmp_path / "profile")
    assert f'data-ready="{product}:en"' in dom, re.search(r'id="status"[^>]*>([^<]*)', dom)[1]
    # by fylke: one row and one bar or mark per fylke, each the Parquet's cell for the choice
    dims = {d["name"]: view.get(d["name"]) for d in meta["dimensions"][1:]}
    time_dim = next((d["name"] for d in meta["dimensions"] if d.get("kind") in ("iso_week", "month")), None)
    for d in meta["dimensions"][1:]:
        if dims[d["name"]] is None:
            dims[d["name"]] = (d["categories"][-1]["code"] if d["name"] == time_dim else
                               "total" if d.get("total") else d["categories"][0]["code"])
    fylker = table.filter(pl.col("geo_level") == "fylke", *[pl.col(k) == v for k, v in dims.items()])
    shown = cells(dom, "fylke-table")
    assert list(shown) == fylker["geo_code"].to_list() and len(shown) > 0
    measure = view["measure"]
    for code, value, flag in fylker.select("geo_code", measure, f"{measure}_flag").iter_rows():
        status, text = shown[code]
        assert status == flag
        if flag == ":":
            assert text == ":"
        elif value is not None:
            assert float(text.replace(",", "")) == pytest.approx(value, abs=0.051)
    chart = re.search(r'<svg id="fylke-chart".*?</svg>', dom, re.S)[0]
    assert chart.count('class="bar"') + chart.count('class="hidden-mark"') == fylker.height
    if (fylker[f"{measure}_flag"] == ":").any():
        assert 'class="hidden-mark"' in chart and "<dt>:</dt>" in dom  # the symbol and its legend
    # weekly and monthly products: the time series of the chosen geography, every period
    series = re.search(r'<section id="series"( hidden="")?>', dom)
    if time_dim:
        assert series[1] is None
        periods = table.filter(pl.col("geo_code") == "NO", *[pl.col(k) == v for k, v in dims.items() if k != time_dim])
        assert list(cells(dom, "series-table")) == periods[time_dim].to_list()
        svg = re.search(r'<svg id="series-chart".*?</svg>', dom, re.S)[0]
        assert svg.count('class="dot"') + svg.count('class="hidden-mark"') == periods.height
    else:
        assert series[1] is not None  # no time: no time series
    assert "NLOD" in dom


def test_the_browser_in_bokmal(home, server, tmp_path):
    s, _ = server
    dom = render(f"{s.url}/?table=msis_cases_weekly&lang=nb&disease=hiv", tmp_path / "profile")
    assert 'data-ready="msis_cases_weekly:nb"' in dom
    assert "Meldte sykdomstilfeller etter uke" in dom and "Alle data er syntetiske." in dom
    assert "skjult av personvernhensyn" in dom  # the legend in bokmål
    assert '<option value="hiv">Hiv</option>' in dom
