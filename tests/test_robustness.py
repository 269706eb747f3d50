"""A daily run that never stalls, driven through `stat19 run` as an operator meets it: every bad
delivery is rejected on its own with the rule it breaks while the others load; a fault of the run
itself stops it, unretried, recorded in status.json; a killed run is recovered by the next one."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
from pathlib import Path

import pyarrow as pa

from kit import jsonl_bytes, parquet_bytes, write_delivery
from stat19.cli import main
from test_ingest import vacc


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def stat19_run(landing: Path, home: Path, *extra: str) -> int:
    return main(["run", "--landing", str(landing), "--home", str(home), *extra])


def outcomes(home: Path) -> dict[tuple[str, str], list[dict]]:
    by: dict[tuple[str, str], list[dict]] = {}
    for r in read_csv(home / "reports" / "deliveries.csv"):
        by.setdefault((r["source"], r["delivery_date"]), []).append(r)
    return by


def good_sysvak(landing: Path, day: str, i: int) -> Path:
    return write_delivery(landing, "sysvak", day, {"a.jsonl": (jsonl_bytes([vacc(i)]), 1)})


def rewrite_manifest(folder: Path, text: str) -> None:
    (folder / "_manifest.json").write_text(text)


def manifest_listing(folder: Path, name: str, rows: object = 1) -> None:
    """A manifest listing `name` (whatever it is) with the sha256 of the good file it replaces."""
    doc = {"source": folder.parent.name, "delivery_date": folder.name,
           "files": [{"name": name, "rows": rows, "sha256": "0" * 64}]}
    rewrite_manifest(folder, json.dumps(doc))


def _rows_1e999(folder: Path, outside: Path) -> None:
    rewrite_manifest(folder, (folder / "_manifest.json").read_text().replace('"rows": 1', '"rows": 1e999'))


def _deep_nesting(folder: Path, outside: Path) -> None:
    rewrite_manifest(folder, "[" * 100_000 + "]" * 100_000)


def _rows_as_text(folder: Path, outside: Path) -> None:
    rewrite_manifest(folder, (folder / "_manifest.json").read_text().replace('"rows": 1', '"rows": "1"'))


def _directory(folder: Path, outside: Path) -> None:
    (folder / "a.jsonl").unlink()
    (folder / "a.jsonl").mkdir()


def _dangling_symlink(folder: Path, outside: Path) -> None:
    (folder / "a.jsonl").unlink()
    (folder / "a.jsonl").symlink_to(outside / "nowhere.jsonl")


def _symlink_outside(folder: Path, outside: Path) -> None:
    # the target holds exactly the bytes the manifest pins: only the link itself is wrong
    target = outside / f"{folder.name}.jsonl"
    target.write_bytes((folder / "a.jsonl").read_bytes())
    (folder / "a.jsonl").unlink()
    (folder / "a.jsonl").symlink_to(target)


def _symlink_dev_zero(folder: Path, outside: Path) -> None:
    (folder / "a.jsonl").unlink()
    (folder / "a.jsonl").symlink_to("/dev/zero")


def _fifo(folder: Path, outside: Path) -> None:
    (folder / "a.jsonl").unlink()
    os.mkfifo(folder / "a.jsonl")


def _non_utf8_name(folder: Path, outside: Path) -> None:
    os.rename(folder / "a.jsonl", os.fsencode(folder) + b"/a\xff.jsonl")


def _manifest_is_fifo(folder: Path, outside: Path) -> None:
    (folder / "_manifest.json").unlink()
    os.mkfifo(folder / "_manifest.json")


def _oversized(folder: Path, outside: Path) -> None:
    data = jsonl_bytes([vacc(i) for i in range(30)])
    (folder / "a.jsonl").write_bytes(data)
    doc = {"source": "sysvak", "delivery_date": folder.name,
           "files": [{"name": "a.jsonl", "rows": 30, "sha256": hashlib.sha256(data).hexdigest()}]}
    rewrite_manifest(folder, json.dumps(doc))


# Every probe: how it spoils a good sysvak delivery, and the words of the rule its rejection names.
PROBES = {
    "rows_1e999": (_rows_1e999, "not a whole number of rows"),
    "deep_nesting": (_deep_nesting, "nested too deeply"),
    "rows_as_text": (_rows_as_text, "not a whole number of rows"),
    "directory": (_directory, "a.jsonl is not a regular file"),
    "dangling_symlink": (_dangling_symlink, "a.jsonl is a symlink"),
    "symlink_outside": (_symlink_outside, "a.jsonl is a symlink"),
    "symlink_dev_zero": (_symlink_dev_zero, "a.jsonl is a symlink"),
    "fifo": (_fifo, "a.jsonl is not a regular file"),
    "non_utf8_name": (_non_utf8_name, "a\\xff.jsonl is not listed"),
    "manifest_is_fifo": (_manifest_is_fifo, "_manifest.json: cannot be read as a regular file"),
    "oversized": (_oversized, "over the limit of 2,000"),
}


def test_every_bad_delivery_is_rejected_on_its_own_naming_file_and_rule(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("stat19.landing.MAX_FILE_BYTES", 2_000)
    landing, outside = tmp_path / "landing", tmp_path / "outside"
    outside.mkdir()
    days = [f"2026-01-{d:02d}" for d in range(5, 5 + len(PROBES) + 2)]
    good_sysvak(landing, days[0], 0)
    for i, (spoil, _) in enumerate(PROBES.values()):
        spoil(good_sysvak(landing, days[i + 1], i + 1), outside)
    good_sysvak(landing, days[-1], 39)
    # a value DuckDB cannot cast: a struct where KPR delivers a list of codes
    kpr = pa.table({"claim_id": ["c1"], "fnr": [vacc(2)["fnr"]], "contact_date": ["2026-01-05"],
                    "practitioner_type": ["fastlege"], "contact_mode": ["oppmote"],
                    "icpc2": pa.array([{"code": "R74"}]), "takst": pa.array([["2ad"]]), "kommune_nr": ["0301"]})
    write_delivery(landing, "kpr", days[0], {"a.parquet": (parquet_bytes(kpr), 1)})

    assert stat19_run(landing, tmp_path / "home") == 0
    by = outcomes(tmp_path / "home")
    assert by[("sysvak", days[0])][0]["status"] == by[("sysvak", days[-1])][0]["status"] == "loaded"
    for i, (name, (_, rule)) in enumerate(PROBES.items()):
        [row] = by[("sysvak", days[i + 1])]
        assert row["status"] == "rejected", name
        assert f"sysvak/{days[i + 1]}" in row["message"] and rule in row["message"], (name, row["message"])
    [kpr_row] = by[("kpr", days[0])]
    assert kpr_row["status"] == "rejected" and "kpr/2026-01-05/a.parquet" in kpr_row["message"]
    status = json.loads((tmp_path / "home" / "reports" / "status.json").read_text())
    assert status["status"] == "ok"

    # a rejected delivery is settled: the rerun does not try it again
    assert stat19_run(landing, tmp_path / "home") == 0
    assert sum(len(v) for v in outcomes(tmp_path / "home").values()) == sum(len(v) for v in by.values())


def test_a_full_disk_stops_the_run_unretried_and_is_recorded(tmp_path, monkeypatch, capsys):
    landing, home = tmp_path / "landing", tmp_path / "home"
    good_sysvak(landing, "2026-01-05", 0)
    import stat19.ingest

    real_stage = stat19.ingest._stage_file
    calls = []

    def disk_full(con, home_, *args):
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device", str(home_.scratch / "spill.tmp"))

    monkeypatch.setattr(stat19.ingest, "_stage_file", disk_full)
    assert stat19_run(landing, home) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err
    assert len(calls) == 1  # not retried: it cannot succeed
    status = json.loads((home / "reports" / "status.json").read_text())
    assert status["status"] == "failed" and "No space left" in status["message"]
    # the delivery is not blamed: once there is room again it loads
    assert ("sysvak", "2026-01-05") not in outcomes(home) if (home / "reports" / "deliveries.csv").exists() else True
    monkeypatch.setattr(stat19.ingest, "_stage_file", real_stage)
    assert stat19_run(landing, home) == 0
    assert [r["status"] for r in outcomes(home)[("sysvak", "2026-01-05")]] == ["loaded"]
    assert json.loads((home / "reports" / "status.json").read_text())["status"] == "ok"


def test_a_second_run_on_the_same_home_is_refused_while_the_first_holds_it(tmp_path, capsys):
    import fcntl

    landing, home = tmp_path / "landing", tmp_path / "home"
    good_sysvak(landing, "2026-01-05", 0)
    home.mkdir()
    with open(home / "run.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("4242")
        lock.flush()
        assert stat19_run(landing, home) == 1
    assert "another stat19 run (pid 4242)" in capsys.readouterr().err
    assert stat19_run(landing, home) == 0
