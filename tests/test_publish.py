"""Publication: the files and their formats, atomic releases, revisions, the audit, the catalog."""

from __future__ import annotations

import contextlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from stat19 import jsonstat
from stat19.paths import Home
from stat19.defs.products import product_assets
from stat19.products import compute_release, product_specs
from stat19.publish import PublishError, audit_all, publish, publish_product, release_dir
from test_products import Linked, random_linked

R = date(2026, 2, 10)
DELIVERIES = {"freg": date(2026, 2, 10), "sysvak": date(2026, 2, 9)}


def small_world() -> Linked:
    L = Linked()
    women = L.people(30, date(1990, 5, 1), "female", "0301")
    men = L.people(25, date(1950, 6, 1), "male", "4601")
    for p in women[:10] + men[:3]:
        L.vaccination(p, date(2025, 10, 1))
    return L


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def random_world() -> Linked:
    return random_linked(seed=2, persons=250, r=R, days=7)


# --------------------------------------------------------------------------------------------
# Files and formats


@pytest.mark.parametrize("product", ["vaccine_coverage", "msis_cases_weekly"])
def test_jsonstat_matches_parquet_cell_by_cell(random_world, home, product):
    result = publish_product(random_world.con, home, product, R, DELIVERIES)
    folder = result.path
    assert sorted(p.name for p in folder.iterdir()) == ["codelists.csv", "data.csv", "data.json", "data.parquet", "data.schema.json", "metadata.json"]
    table = pl.read_parquet(folder / "data.parquet")
    doc = json.loads((folder / "data.json").read_text())
    assert doc["version"] == "2.0" and doc["class"] == "dataset"
    assert doc["id"][0] == "geo" and doc["id"][-1] == "measure"
    assert doc["size"] == [len(doc["dimension"][i]["category"]["index"]) for i in doc["id"]]
    assert doc["role"]["metric"] == ["measure"] and doc["role"]["geo"] == ["geo"]
    assert doc["extension"]["status"][":"].startswith("hidden")
    assert doc["dimension"]["geo"]["category"]["child"]["NO"][:2] == ["03", "11"]
    assert doc["dimension"]["age_group"]["category"]["child"]["total"][0] == "0-4"
    # msis has no kommune cells for hiv and tuberculosis: the sparse form, absent cells left out
    assert isinstance(doc["value"], dict) == (product == "msis_cases_weekly")

    long = jsonstat.to_long(doc).rename({"geo": "geo_code"})
    meta = json.loads((folder / "metadata.json").read_text())
    measures = [m["name"] for m in meta["measures"]]
    keys = ["geo_code", *[d["name"] for d in meta["dimensions"][1:]]]
    assert long.height == table.height * len(measures)
    hidden = 0
    by_key = {tuple(r[:-2]): (r[-2], r[-1]) for r in long.select(*keys, "measure", "value", "status").iter_rows()}
    for row in table.iter_rows(named=True):
        for m in measures:
            value, status = by_key[tuple(row[k] for k in keys) + (m,)]
            assert status == row[f"{m}_flag"]
            assert value == row[m] or (value is None and row[m] is None), (row, m)
            hidden += status == ":"
    assert hidden == meta["disclosure"]["hidden_values_total"] > 0
    # CSV: the same table, hidden values empty
    csv = pl.read_csv(folder / "data.csv", infer_schema=False)
    assert csv.columns == table.columns and csv.height == table.height
    first = next(m for m in measures if meta["disclosure"]["hidden_cells"][m])
    flagged = csv.filter(pl.col(f"{first}_flag") == ":")
    assert flagged.height and flagged[first].is_null().all()


def test_metadata(home):
    L = small_world()
    publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    meta = json.loads((release_dir(home, "vaccine_coverage", R) / "metadata.json").read_text())
    assert meta["product"] == "vaccine_coverage" and meta["reference_date"] == "2026-02-10"
    assert meta["revision"] == 1 and meta["pipeline_version"]
    assert meta["source_deliveries"] == [{"source": "freg", "last_delivery_date": "2026-02-10"},
                                         {"source": "sysvak", "last_delivery_date": "2026-02-09"}]
    assert [d["name"] for d in meta["dimensions"]] == ["geo", "vaccine_group", "age_group", "sex"]
    assert len(meta["dimensions"][0]["categories"]) == 1 + 15 + 357
    measures = {m["name"]: m for m in meta["measures"]}
    assert measures["vaccinated_ever"]["rule"] == "share" and measures["vaccinated_ever"]["denominator"] == "population"
    assert measures["coverage_ever_pct"]["unit"] == "percent" and measures["coverage_ever_pct"]["definition"]
    assert meta["disclosure"]["hidden_cells"]["vaccinated_ever"] > 0 and "rule" in meta["disclosure"]
    assert meta["excluded_records"] == 0 and meta["choices"] and meta["generated_at"]


# --------------------------------------------------------------------------------------------
# Revisions and atomicity


def test_unchanged_rerun_writes_nothing_and_a_change_is_revision_2(home):
    L = small_world()
    first = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert (first.status, first.revision) == ("published", 1)
    folder = first.path
    before = files(home.published)
    mtimes = {p: p.stat().st_mtime_ns for p in home.published.rglob("*")}
    # a later delivery that does not change R's inputs: nothing new
    again = publish_product(L.con, home, "vaccine_coverage", R, {**DELIVERIES, "sysvak": date(2026, 2, 11)})
    assert (again.status, again.revision) == ("unchanged", 1)
    assert files(home.published) == before
    assert {p: p.stat().st_mtime_ns for p in home.published.rglob("*")} == mtimes

    # a late delivery changes R's inputs: revision 2, revision 1 kept as it was
    p = L.person(date(1990, 5, 1), "female", "0301")
    L.vaccination(p, date(2025, 10, 1), known=date(2026, 2, 1))
    second = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert (second.status, second.revision) == ("published", 2)
    assert json.loads((folder / "metadata.json").read_text())["revision"] == 2
    old = {k: v for k, v in before.items() if k.startswith("vaccine_coverage/")}
    kept = files(folder / "revisions" / "1")
    assert kept == {k.removeprefix("vaccine_coverage/2026-02-10/"): v for k, v in old.items()}
    assert (folder / "data.csv").read_bytes() != kept["data.csv"]
    third = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert third.status == "unchanged"
    catalog = json.loads((home.published / "catalog.json").read_text())
    assert catalog["products"]["vaccine_coverage"]["releases"][0]["earlier_revisions"] == [1]
    assert audit_all(home) == []


def test_a_crash_mid_write_leaves_the_previous_release(home, monkeypatch):
    from stat19 import publish as pub

    L = small_world()
    publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    before = files(home.published)
    L.vaccination(L.person(date(1990, 5, 1), "female", "0301"), date(2025, 10, 1))

    from stat19.publish import release, swap

    real = release._write_release_files

    def crash(folder, table, csv, doc, metadata):
        (folder / "data.parquet").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(release, "_write_release_files", crash)
    with pytest.raises(OSError, match="disk full"):
        publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert files(home.published) == before
    assert not [p for p in (home.published / "vaccine_coverage").iterdir() if p.name.startswith(".")]

    # a kill leaves a half-built folder behind, and (without renameat2) a release moved aside
    monkeypatch.setattr(release, "_write_release_files", real)
    product_dir = home.published / "vaccine_coverage"
    (product_dir / ".2026-02-10.dead.tmp").mkdir()
    (product_dir / ".2026-02-10.dead.tmp" / "data.csv").write_text("partial")
    (product_dir / "2026-02-10").rename(product_dir / ".2026-02-10.abc.old")
    assert audit_all(home) != []  # the catalog lists a release that is not in place
    pub.recover(product_dir)
    assert files(home.published) == before
    # the publication itself, through the two-rename fallback
    monkeypatch.setattr(swap, "_exchange", lambda a, b: False)
    result = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert result.revision == 2
    assert sorted(p.name for p in product_dir.iterdir()) == ["2026-02-10"]
    assert audit_all(home) == []


def test_a_release_that_fails_the_audit_is_not_written(home):
    L = small_world()
    df, meta = compute_release(L.con, "vaccine_coverage", R)
    assert df["vaccinated_ever_hidden"].any()
    leaky = df.with_columns(pl.lit(False).alias("vaccinated_ever_hidden"), pl.lit(False).alias("coverage_ever_pct_hidden"))
    with pytest.raises(PublishError, match="(?s)disclosure audit failed.*vaccinated_ever"):
        publish(home, "vaccine_coverage", R, leaky, meta)
    assert not (home.published / "vaccine_coverage" / "2026-02-10").exists()
    assert not (home.published / "catalog.json").exists()
    # a rate published where its numerator is hidden is refused as well
    bad_rate = df.with_columns(pl.lit(False).alias("coverage_ever_pct_hidden"))
    with pytest.raises(PublishError, match="coverage_ever_pct"):
        publish(home, "vaccine_coverage", R, bad_rate, meta)
    assert not (home.published / "vaccine_coverage").exists() or not any((home.published / "vaccine_coverage").iterdir())


# --------------------------------------------------------------------------------------------
# Catalog and audit


def test_catalog_lists_every_release(home):
    L = small_world()
    for product in ("vaccine_coverage", "pertussis_pregnancy"):
        for day in (date(2026, 2, 9), R):
            publish_product(L.con, home, product, day, DELIVERIES)
    catalog = json.loads((home.published / "catalog.json").read_text())
    assert sorted(catalog["products"]) == ["pertussis_pregnancy", "vaccine_coverage"]
    for product, entry in catalog["products"].items():
        assert [r["reference_date"] for r in entry["releases"]] == ["2026-02-09", "2026-02-10"]
        assert entry["latest"] == {"reference_date": "2026-02-10", "revision": 1, "path": f"{product}/2026-02-10"}
        assert entry["title"] == product_specs()[product].title
    assert audit_all(home) == []


def test_audit_all_finds_a_leak_in_the_files(home):
    L = small_world()
    result = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    assert audit_all(home) == []
    # someone "fixes" the published table by hand: a hidden count becomes visible
    table = pl.read_parquet(result.path / "data.parquet")
    row = table.with_row_index().filter(pl.col("vaccinated_ever_flag") == ":").row(0, named=True)["index"]
    true, _ = compute_release(L.con, "vaccine_coverage", R)
    leaked = table.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(true["vaccinated_ever"][row]).otherwise(pl.col("vaccinated_ever")).alias("vaccinated_ever"),
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit("")).otherwise(pl.col("vaccinated_ever_flag")).alias("vaccinated_ever_flag"),
    )
    leaked.write_parquet(result.path / "data.parquet")
    findings = audit_all(home)
    assert findings and all(f.release == "vaccine_coverage/2026-02-10" for f in findings)
    text = "\n".join(map(str, findings))
    assert "vaccinated_ever" in text


def test_lp_audit_from_files_alone_catches_a_disclosed_cell(home):
    """Hiding a single cell of a total (no partner) passes the flag checks but not the LP audit."""
    from stat19.publish.audit import _lp_audit

    L = small_world()
    result = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    table = pl.read_parquet(result.path / "data.parquet")
    meta = json.loads((result.path / "metadata.json").read_text())
    assert _lp_audit(table, meta) == []
    # publish every cell, then hide just one nonzero national cell: its total discloses it
    target = (pl.col("geo_code") == "NO") & (pl.col("vaccine_group") == "covid19") & (pl.col("age_group") == "18-44") \
        & (pl.col("sex") == "female")
    true, _ = compute_release(L.con, "vaccine_coverage", R)
    opened = table.with_columns(true["vaccinated_ever"], pl.lit("").alias("vaccinated_ever_flag")).with_columns(
        pl.when(target).then(None).otherwise(pl.col("vaccinated_ever")).alias("vaccinated_ever"),
        pl.when(target).then(pl.lit(":")).otherwise(pl.lit("")).alias("vaccinated_ever_flag"))
    problems = _lp_audit(opened, meta)
    assert any(p.startswith("disclosure:") and "vaccinated_ever" in p and "NO" in p for p in problems)


def test_lp_audit_reports_a_table_whose_rows_repeat(home):
    """A table with a repeated row cannot be read as additive relations: the LP audit says so
    as a finding instead of raising (`stat19 audit` must report, not trace back)."""
    from stat19.publish.audit import _lp_audit

    L = small_world()
    result = publish_product(L.con, home, "vaccine_coverage", R, DELIVERIES)
    table = pl.read_parquet(result.path / "data.parquet")
    meta = json.loads((result.path / "metadata.json").read_text())
    problems = _lp_audit(pl.concat([table, table.head(1)]), meta)
    assert problems and all("do not add up" in p and "share their dimension codes" in p for p in problems)


# --------------------------------------------------------------------------------------------
# Dagster


def small_world_assets(source_deliveries=lambda con, day: [], world: Linked | None = None):
    """The product assets over small_world() (or ``world``) and a resource for them: (assets, Res(home=...))."""
    from dagster import AssetKey, ConfigurableResource

    class Res(ConfigurableResource):
        home: str

    world = world or small_world()

    @contextlib.contextmanager
    def connect(home):
        yield world.con

    return product_assets([AssetKey(["linked", "snapshot"])], connect=connect,
                          source_deliveries=source_deliveries), Res


def test_product_asset_publishes_its_partition(tmp_path):
    from dagster import AssetKey, materialize

    assets, Res = small_world_assets(lambda con, day: [{"source": "freg", "last_delivery_date": day}])
    assert sorted(a.key.to_user_string() for a in assets) == sorted(f"published/{n}" for n in product_specs())
    chosen = [a for a in assets if a.key == AssetKey(["published", "sari_weekly"])]
    result = materialize(chosen, partition_key=R.isoformat(), resources={"stat19": Res(home=str(tmp_path))})
    assert result.success
    meta = json.loads((tmp_path / "published" / "sari_weekly" / "2026-02-10" / "metadata.json").read_text())
    assert meta["source_deliveries"] == [{"source": "freg", "last_delivery_date": "2026-02-10"}]
    assert (tmp_path / "published" / "catalog.json").exists()
    # the phases' seconds are the materialization's metadata (the Dagster UI shows where time went)
    (event,) = result.get_asset_materialization_events()
    shown = event.materialization.metadata
    for phase in ("sql", "checks", "suppression", "publication"):
        assert shown[f"seconds_{phase}"].value >= 0, phase
