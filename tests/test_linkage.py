"""Identity resolution, pseudonyms, the linked snapshot and its readers."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
import textwrap
import time
from datetime import date

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit import csv_bytes, fnrs, jsonl_bytes, write_delivery
from stat19.db import configure, render, run_script
from stat19.ingest import ensure_schema
from stat19.linkage import _hmac_pads, link, person_columns, read_linked
from stat19.query import linked
from stat19.specs import population_source
from test_ingest import Env, vacc

POOL = fnrs(60, seed=11)
FREG_HEADER = ["fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"]
CHANGE_HEADER = ["old_id", "new_id", "change_date", "reason"]


# --- pseudonyms ------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=1, max_size=100), ids=st.lists(st.sampled_from(POOL), min_size=1, max_size=10))
def test_the_sql_pseudonym_is_hmac_sha256_and_never_holds_the_identifier(key, ids):
    con = duckdb.connect()
    configure(con, None)
    inner, outer = _hmac_pads(key)
    got = con.execute("SELECT s19_hmac_sha256($i, $o, unnest($ids))", {"i": inner, "o": outer, "ids": ids}).fetchall()
    for identifier, (pid,) in zip(ids, got):
        assert pid == hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()
        assert identifier not in pid and pid != identifier


@settings(max_examples=50, deadline=None)
@given(key_a=st.binary(min_size=16, max_size=32), key_b=st.binary(min_size=16, max_size=32), identifier=st.sampled_from(POOL))
def test_another_key_gives_another_pseudonym(key_a, key_b, identifier):
    a = hmac.new(key_a, identifier.encode(), hashlib.sha256).hexdigest()
    con = duckdb.connect()
    configure(con, None)
    pads = _hmac_pads(key_b)
    b = con.execute("SELECT s19_hmac_sha256(?, ?, ?)", [*pads, identifier]).fetchone()[0]
    assert (a == b) == (key_a == key_b)


# --- identity chains ---------------------------------------------------------------------------

def _resolve(edges: list[tuple[str, str]], seen: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Run the identity resolution on an in-memory vault holding these changes and identifiers."""
    con = duckdb.connect()
    configure(con, None)
    ensure_schema(con)
    for old, new in edges:
        con.execute("INSERT INTO freg_id_changes VALUES (?, ?, DATE '2026-01-01', 'correction', DATE '2026-01-05', 'c.csv', 1, false)", [old, new])
    for i in seen:
        con.execute("INSERT INTO sysvak_vaccinations (vaccination_id, fnr, registered_at, action, _delivery_date, _file, _row, _deleted) "
                    "VALUES ('v', ?, now(), 'insert', DATE '2026-01-05', 'a', 1, false)", [i])
    inner, outer = _hmac_pads(b"test key")
    run_script(con, render("linkage/identity.sql.j2", person_columns=[(t, c) for _, t, c in person_columns()],
                           population=population_source().population),
               params={"inner_pad": inner, "outer_pad": outer})
    index = dict(con.execute("SELECT id, person_id FROM person_index").fetchall())
    problems = dict(con.execute("SELECT id, problem FROM identity_problems").fetchall())
    return index, problems


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_chains_resolve_to_their_last_identifier(data):
    ids = data.draw(st.permutations(POOL))[: data.draw(st.integers(2, 30))]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(ids) - 1), max_size=8))))
    chains = [ids[a:b] for a, b in zip([0, *cuts], [*cuts, len(ids)])]
    edges = [(c[i], c[i + 1]) for c in chains for i in range(len(c) - 1)]
    edges = data.draw(st.permutations(edges))  # the order of delivery does not matter
    index, problems = _resolve(list(edges), seen=[c[0] for c in chains])
    assert problems == {}
    for chain in chains:
        for identifier in chain:
            assert index[identifier] == chain[-1]


def test_a_cycle_and_a_fork_are_reported_not_fatal():
    a, b, c, d, e, f, g = POOL[:7]
    index, problems = _resolve([(a, b), (b, c), (c, a), (d, e), (d, f), (g, d)], seen=[a, d, g])
    assert {problems[x] for x in (a, b, c)} == {"cycle"}
    assert problems[d] == "fork" and problems[g] == "fork"
    assert index[a] == a and index[d] == d and index[g] == g  # they stand for themselves
    assert index[e] == e and index[f] == f


# --- the whole linkage on a small landing --------------------------------------------------------

def _small_landing(env: Env) -> dict[str, str]:
    d, f1, f2, other, gone = POOL[40:45]
    persons = [[d, "1990-05-05", "kvinne", "1507", "ikkeBosatt", "2025-06-01"],
               [other, "1980-01-01", "mann", "0301", "bosatt", "2000-01-01"]]
    write_delivery(env.landing, "freg", "2026-01-05", {
        "persons.csv": (csv_bytes(FREG_HEADER, persons), 2),
        "id_changes.csv": (csv_bytes(CHANGE_HEADER, []), 0)})
    write_delivery(env.landing, "freg", "2026-01-06", {
        "persons.csv": (csv_bytes(FREG_HEADER, [[f2, "1990-05-05", "kvinne", "0301", "bosatt", "2026-01-06"],
                                                [other, "1980-01-01", "mann", "0301", "doed", "2026-01-06"]]), 2),
        "id_changes.csv": (csv_bytes(CHANGE_HEADER, [[d, f1, "2026-01-06", "d_to_f"], [f1, f2, "2026-01-06", "correction"]]), 2)})
    write_delivery(env.landing, "sysvak", "2026-01-05", {"a.jsonl": (jsonl_bytes(
        [vacc(0, fnr=d), vacc(1, fnr=other), vacc(2, fnr=gone)]), 3)})
    write_delivery(env.landing, "sysvak", "2026-01-06", {"a.jsonl": (jsonl_bytes(
        [vacc(3, fnr=f1, vaccine_code="J07BN01"), vacc(4, fnr=f2, vaccine_code="J07AL02")]), 2)})
    for source, day in [("freg", "2026-01-05"), ("sysvak", "2026-01-05"), ("freg", "2026-01-06"), ("sysvak", "2026-01-06")]:
        assert env.load(source, day).status == "loaded"
    return {"d": d, "f1": f1, "f2": f2, "other": other, "gone": gone}


def test_records_under_every_identifier_of_a_person_share_one_pseudonym(tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "a test key xxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    env = Env(tmp_path)
    ids = _small_landing(env)
    link(env.home)
    v = linked(env.home, "SELECT vaccination_id, pid FROM vaccinations ORDER BY 1").rows()
    pid = dict(v)
    assert pid["v0"] == pid["v3"] == pid["v4"]  # D-number, its fødselsnummer and the corrected one
    assert len({pid["v0"], pid["v1"], pid["v2"]}) == 3
    assert pid["v0"] == hmac.new(b"a test key xxxxxxxxxxxxxxxxxxxxxxxxxxxxx", ids["f2"].encode(), hashlib.sha256).hexdigest()

    # the person's history is one history; as known before the change it was a D-number resident
    res = linked(env.home, f"SELECT status, kommune_2024, valid_from, valid_to FROM residences WHERE pid = '{pid['v0']}' ORDER BY valid_from NULLS FIRST").rows()
    assert res == [("ikkeBosatt", "1508", None, date(2026, 1, 6)), ("bosatt", "0301", date(2026, 1, 6), None)]
    assert linked(env.home, "SELECT count(*) FROM residences_as_of(DATE '2026-01-05') WHERE status = 'bosatt'").item() == 1

    # a rerun with the same key keeps every pseudonym; another key links nothing to the old ones
    link(env.home)
    assert dict(linked(env.home, "SELECT vaccination_id, pid FROM vaccinations").rows()) == pid
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "another key xxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    link(env.home)
    assert not set(pid.values()) & set(linked(env.home, "SELECT pid FROM vaccinations")["pid"])


def linked_report(env: Env) -> list[dict]:
    import polars as pl
    return pl.read_csv(env.home.reports / "linkage.csv").to_dicts()


def test_the_linkage_report_counts_linked_health_only_and_unlinked(tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "k xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    env = Env(tmp_path)
    _small_landing(env)
    link(env.home)
    by_date = {r["delivery_date"]: r for r in linked_report(env) if r["source"] == "sysvak"}
    first = by_date["2026-01-05"]
    assert (first["records"], first["linked_freg"], first["unlinked_not_found"]) == (3, 2, 1)
    assert first["linkage_rate"] == pytest.approx(66.67)


def test_the_key_file_is_made_private_and_never_lands_in_reports(tmp_path, monkeypatch):
    monkeypatch.delenv("STAT19_PSEUDONYM_KEY", raising=False)
    env = Env(tmp_path)
    _small_landing(env)
    link(env.home)
    key_file = env.home.root / "secrets" / "pseudonym.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    for path in env.home.reports.rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="ignore")


def test_a_reader_never_blocks_or_sees_a_half_written_snapshot(tmp_path, monkeypatch):
    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "k xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    env = Env(tmp_path)
    _small_landing(env)
    link(env.home)
    snapshot = env.home.linked / "current.duckdb"
    reader = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time
        ok = 0
        end = time.time() + 6
        while time.time() < end:
            con = duckdb.connect({str(snapshot)!r}, read_only=True)
            assert con.execute("SELECT count(*) FROM vaccinations").fetchone()[0] == 5
            assert con.execute("SELECT count(*) FROM persons").fetchone()[0] == 3
            con.close()
            ok += 1
        print(ok)
    """)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writes = 0
    deadline = time.time() + 5
    while time.time() < deadline:
        link(env.home)  # replaces the snapshot again and again while the reader reads
        writes += 1
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 5 and writes >= 2


def test_the_data_dictionary_describes_every_linked_column(tmp_path, monkeypatch):
    from stat19.query import describe, linked_model_spec

    monkeypatch.setenv("STAT19_PSEUDONYM_KEY", "k xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    env = Env(tmp_path)
    _small_landing(env)
    link(env.home)
    spec = linked_model_spec()
    with read_linked(env.home) as con:
        actual = con.execute("SELECT table_name, column_name FROM information_schema.columns").fetchall()
    undescribed = [(t, c) for t, c in actual
                   if t not in spec["tables"] or (c not in spec["tables"][t]["columns"] and c not in spec["common"])]
    assert undescribed == []
    assert set(spec["tables"]) == {t for t, _ in actual}
    assert "| `vaccine_group` | VARCHAR |" in describe(env.home)
