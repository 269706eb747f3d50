"""Releases that cannot be differenced (issue 11), the plumbing: the internal copy of every published
revision in the vault, a release's neighbours, the series audit at publication and in `stat19 audit`."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from stat19.cli import main
from stat19.paths import Home
from stat19.products import compute_release
from stat19.publish import (DisclosureAuditFailed, audit_all, neighbours, publish, publish_product, read_vault_copy,
                            release_dir, vault_copy_path)
from stat19.publish.series import write_vault_copy
from kit import jsonl_bytes, write_delivery
from test_publish import DELIVERIES, R, small_world

PRODUCT = "vaccine_coverage"
DAY = R.isoformat()
YESTERDAY = R - timedelta(days=1)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


def growing_world():
    """small_world, plus one vaccinated woman in Oslo first known on R: yesterday's release and
    today's differ by exactly one in her cells and their totals (published counts such as 13 -> 14)."""
    L = small_world()
    L.vaccination(L.person(date(1990, 5, 1), "female", "0301"), date(2025, 10, 1), known=R)
    return L


# --------------------------------------------------------------------------------------------
# The internal copy in the vault


def test_the_internal_release_is_kept_in_the_vault_and_nowhere_else(home):
    L = small_world()
    df, meta = compute_release(L.con, PRODUCT, R, neighbours=neighbours(home, PRODUCT, R))
    publish(home, PRODUCT, R, df, meta, source_deliveries=DELIVERIES)
    path = vault_copy_path(home, PRODUCT, DAY, 1)
    assert path.is_relative_to(home.vault) and path.is_file()
    assert read_vault_copy(home, PRODUCT, DAY, 1).equals(df)  # true values and hidden masks
    assert path.parent.stat().st_mode & 0o077 == 0  # the copy's folders are the pipeline's alone
    outside = [p for p in home.root.rglob("*") if p.is_file() and not p.is_relative_to(home.vault)]
    assert outside and not [p for p in outside if p.name.startswith("r1") or "internal" in p.name]
    for p in outside:
        if p.suffix == ".parquet":
            assert not [c for c in pl.read_parquet_schema(p) if c.endswith("_hidden")], p
    # the first release has no neighbour: the metadata says the series rule and against nothing
    series = json.loads((release_dir(home, PRODUCT, R) / "metadata.json").read_text())["disclosure"]["series"]
    assert series["rule"] and series["protected_against"] == [] and series["without_internal_copy"] == []


def test_a_crash_before_the_swap_leaves_a_copy_nobody_reads(home, monkeypatch):
    from stat19.publish import release

    L = small_world()
    publish_product(L.con, home, PRODUCT, R, DELIVERIES)
    L.vaccination(L.person(date(1990, 5, 1), "female", "0301"), date(2025, 10, 1))

    def crash(*_):
        raise OSError("power cut")

    monkeypatch.setattr(release, "swap_into_place", crash)
    with pytest.raises(OSError):
        publish_product(L.con, home, PRODUCT, R, DELIVERIES)
    # revision 2 was about to be published: its copy is there, but revision 1 is the one read
    assert vault_copy_path(home, PRODUCT, DAY, 2).is_file()
    assert list(neighbours(home, PRODUCT, R + timedelta(days=1))) == [f"{DAY} r1"]
    monkeypatch.undo()
    assert publish_product(L.con, home, PRODUCT, R, DELIVERIES).revision == 2  # the retry overwrites it
    assert list(neighbours(home, PRODUCT, R + timedelta(days=1))) == [f"{DAY} r2"]


# --------------------------------------------------------------------------------------------
# Neighbours


def _published(home: Home, day: str, revisions: list[int], copies: list[int]) -> None:
    """A published date (only what neighbours reads: the current revision, revisions/<n>/) with
    vault copies of the revisions ``copies``, each a one-row frame naming itself."""
    folder = home.published / PRODUCT / day
    for n in revisions[:-1]:
        (folder / "revisions" / str(n)).mkdir(parents=True)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text(json.dumps({"revision": revisions[-1]}))
    for n in copies:
        write_vault_copy(home, PRODUCT, day, n, pl.DataFrame({"release": [f"{day} r{n}"]}))


def test_neighbours_are_the_published_revisions_beside_r(home):
    _published(home, "2026-01-10", [1], [1])
    _published(home, "2026-01-12", [1, 2], [1, 2, 3])  # r3: a copy left by a crash, never published
    _published(home, "2026-01-15", [1], [])  # published before the vault kept copies
    _published(home, "2026-01-20", [1, 2, 3], [1, 2, 3])
    (home.published / PRODUCT / ".2026-01-11.x.tmp").mkdir()  # an interrupted publication: not a release

    def found(day: str) -> tuple[dict[str, str], list[str]]:
        near = neighbours(home, PRODUCT, date.fromisoformat(day))
        assert all(df["release"][0] == label for label, df in near.items())  # each label's own copy
        return sorted(near), near.without_copy

    # a new date between two: the earlier date's current revision, the later one's (without copy)
    assert found("2026-01-13") == (["2026-01-12 r2"], ["2026-01-15 r1"])
    # a date redone: every revision of it and the current revisions of the dates beside it
    assert found("2026-01-12") == (["2026-01-10 r1", "2026-01-12 r1", "2026-01-12 r2"], ["2026-01-15 r1"])
    assert found("2026-01-20") == (["2026-01-20 r1", "2026-01-20 r2", "2026-01-20 r3"], ["2026-01-15 r1"])
    # a backfill before everything, and a new latest date
    assert found("2026-01-01") == (["2026-01-10 r1"], [])
    assert found("2026-01-25") == (["2026-01-20 r3"], [])
    assert neighbours(home, "no_such_product", R) == {}


# --------------------------------------------------------------------------------------------
# Publication: protected against the neighbours, refused when it leaks against them


def test_publication_refuses_a_release_that_leaks_against_its_neighbour(home):
    L = growing_world()
    before, before_meta = compute_release(L.con, PRODUCT, YESTERDAY)
    publish(home, PRODUCT, YESTERDAY, before, before_meta, source_deliveries=DELIVERIES)
    # today's release suppressed on its own: one published count differs from yesterday's by 1
    df, meta = compute_release(L.con, PRODUCT, R)
    near = neighbours(home, PRODUCT, R)
    assert list(near) == [f"{YESTERDAY} r1"]
    with pytest.raises(DisclosureAuditFailed, match=rf"series audit against {YESTERDAY} r1 failed"):
        publish(home, PRODUCT, R, df, meta, source_deliveries=DELIVERIES, neighbours=near)
    assert not release_dir(home, PRODUCT, R).exists()  # nothing published ...
    assert not (home.internal_releases / PRODUCT / DAY).exists()  # ... nor kept

    # protected against yesterday's release, the same day publishes, and says so
    result = publish_product(L.con, home, PRODUCT, R, DELIVERIES)
    series = json.loads((result.path / "metadata.json").read_text())["disclosure"]["series"]
    assert series["protected_against"] == [f"{YESTERDAY} r1"]
    assert series["hidden_cells"]["vaccinated_ever"] > 0
    assert audit_all(home) == []


def test_the_dagster_asset_protects_a_release_against_the_published_neighbours(home):
    from dagster import AssetKey, materialize

    from test_publish import small_world_assets

    assets, Res = small_world_assets(world=growing_world())
    [asset] = [a for a in assets if a.key == AssetKey(["published", PRODUCT])]
    for day in (YESTERDAY, R):
        result = materialize([asset], partition_key=day.isoformat(), resources={"stat19": Res(home=str(home.root))})
        assert result.success
    series = json.loads((release_dir(home, PRODUCT, R) / "metadata.json").read_text())["disclosure"]["series"]
    assert series["protected_against"] == [f"{YESTERDAY} r1"] and series["hidden_cells"]["vaccinated_ever"] > 0
    (event,) = result.get_asset_materialization_events()
    assert "seconds_series" in event.materialization.metadata
    assert vault_copy_path(home, PRODUCT, DAY, 1).is_file()
    assert audit_all(home) == []


def test_stat19_audit_reports_a_leaky_pair(home, capsys):
    L = growing_world()
    for day in (YESTERDAY, R):  # neighbours=None: both published without the series audit
        df, meta = compute_release(L.con, PRODUCT, day)
        publish(home, PRODUCT, day, df, meta, source_deliveries=DELIVERIES)
    assert main(["audit", "--home", str(home.root)]) == 1
    out = capsys.readouterr().out
    pair = f"{PRODUCT} {YESTERDAY} r1 -> {DAY} r1: series disclosure: vaccinated_ever"
    assert f"FINDING  {pair}" in out and "published difference" in out
    assert f"difference={YESTERDAY} r1 -> {DAY} r1" in out  # both releases named, in the cell too
    assert "2 releases and 1 consecutive pairs audited" in out

    # a pair without a vault copy (a home from before the copies) is said, not failed
    vault_copy_path(home, PRODUCT, YESTERDAY.isoformat(), 1).unlink()
    stats: dict = {}
    assert audit_all(home, stats) == []
    assert stats == {"series_pairs": 0, "series_not_audited": [f"{PRODUCT} {YESTERDAY} r1 -> {DAY} r1"]}
    assert main(["audit", "--home", str(home.root)]) == 0
    assert "1 pairs not audited (no internal copy in the vault)" in capsys.readouterr().out


def test_stat19_audit_finds_a_vault_copy_that_is_not_the_published_release(home):
    L = small_world()
    publish_product(L.con, home, PRODUCT, R, DELIVERIES)
    publish_product(L.con, home, PRODUCT, R + timedelta(days=1), DELIVERIES)
    assert audit_all(home) == []
    copy = read_vault_copy(home, PRODUCT, DAY, 1)
    first = copy["vaccinated_ever_hidden"].arg_max()  # a hidden cell, published in the copy
    write_vault_copy(home, PRODUCT, DAY, 1, copy.with_columns(
        pl.when(pl.int_range(pl.len()) == first).then(False).otherwise(pl.col("vaccinated_ever_hidden"))
        .alias("vaccinated_ever_hidden")))
    assert [str(f) for f in audit_all(home)] == [
        f"{PRODUCT}/{DAY} r1: the vault copy does not match the published release in vaccinated_ever"]


def test_stat19_run_protects_each_day_against_the_last(tmp_path, capsys, monkeypatch):
    """As a user meets it: `stat19 run` day after day on a landing of another seed and size than
    the demo's, then a re-sent delivery. Each release says which release it was protected
    against; `stat19 audit` audits every pair and finds nothing; the independent attacker finds
    no difference of 1-4 between the consecutive vaccine_coverage releases kept in the vault."""
    from series_attack import attack

    from stat19 import disclosure
    from stat19.products.engine import disclosure_dimensions, disclosure_measures
    from stat19.products.spec import get_product

    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "k" * 40)
    landing, root = tmp_path / "landing", tmp_path / "home"
    assert main(["synth", "--persons", "1500", "--start", "2026-02-02", "--days", "4", "--seed", "7",
                 "--no-delivery-faults", "--out", str(landing)]) == 0
    run = ["run", "--landing", str(landing), "--home", str(root)]
    assert main([*run, "--through", "2026-02-04"]) == 0
    assert main(run) == 0
    home = Home(root)
    release = home.published / "vaccine_coverage" / "2026-02-05"
    meta = json.loads((release / "metadata.json").read_text())
    assert meta["disclosure"]["series"]["protected_against"] == ["2026-02-04 r1"]

    # the day before re-sent with more influenza vaccinations of persons in the landing:
    # the day's release gets revision 2, protected against the day before and against its own
    # revision 1 (which stays published)
    day = landing / "sysvak" / "2026-02-04"
    records = [json.loads(line) for f in sorted(day.glob("*.jsonl")) for line in f.read_text().splitlines()]
    extra = [{**r, "vaccination_id": f"RESENT{k:04d}", "vaccine_code": "J07BB02", "dose_number": 1}
             for k, r in enumerate(records)]
    shutil.rmtree(day)
    write_delivery(landing, "sysvak", "2026-02-04", {"a.jsonl": (jsonl_bytes(records + extra), 2 * len(records))})
    assert main(run) == 0
    meta = json.loads((release / "metadata.json").read_text())
    assert meta["revision"] == 2
    assert meta["disclosure"]["series"]["protected_against"] == ["2026-02-04 r1", "2026-02-05 r1"]
    # The products the re-sent vaccinations do not touch were computed again (their inputs
    # changed) with the same values: the same release, no revision 2, although they now have
    # their own revision 1 as a neighbour too (protecting against it once added cells)
    for product in ("antibiotics_monthly", "primary_care_monthly", "mortality_weekly", "sari_weekly"):
        kept = json.loads((home.published / product / "2026-02-05" / "metadata.json").read_text())
        assert kept["revision"] == 1, (product, kept["disclosure"].get("series"))
    capsys.readouterr()

    assert main(["audit", "--home", str(root)]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    pairs = int(summary.split(" consecutive pairs audited")[0].split()[-1])
    assert pairs >= 7 and "not audited" not in summary, summary

    spec = get_product("vaccine_coverage")
    old = pl.read_parquet(home.internal_releases / "vaccine_coverage" / "2026-02-04" / "r1.parquet")
    new = pl.read_parquet(home.internal_releases / "vaccine_coverage" / "2026-02-05" / "r1.parquet")
    leaks = attack(new, old, disclosure_dimensions(spec, new), disclosure_measures(spec), cells=False)
    assert leaks == [], leaks[:5]
    assert disclosure.series_audit(new, {"old": old}, disclosure_dimensions(spec, new),
                                   disclosure_measures(spec)) == []
