"""Work that follows what changed: a rerun with nothing new neither rebuilds the linked snapshot
nor recomputes a release; a re-sent delivery, a replaced release or a change of code does."""

from __future__ import annotations

import shutil
from pathlib import Path

from kit import jsonl_bytes, write_delivery
from stat19 import inputs
from stat19.cli import main
from stat19.paths import Home
from stat19.query import linked
from test_ingest import vacc

R = "2026-01-07"


def files_and_times(home: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for zone in ("published", "linked"):
        for p in sorted((home / zone).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(home))] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def test_only_what_changed_is_recomputed(tmp_path: Path, capsys):
    landing, home = tmp_path / "landing", tmp_path / "home"
    run = ["run", "--landing", str(landing), "--home", str(home)]
    write_delivery(landing, "sysvak", "2026-01-06", {"a.jsonl": (jsonl_bytes([vacc(0), vacc(1)]), 2)})
    write_delivery(landing, "sysvak", R, {"a.jsonl": (jsonl_bytes([vacc(2)]), 1)})
    assert main(run) == 0
    out = capsys.readouterr().out
    assert "not recomputed" not in out and "published revision 1" in out
    products = len(list((home / "published").glob(f"*/{R}/metadata.json")))
    assert products == 7

    # 1. Nothing new: no linkage, no product computed, not a byte nor a timestamp changed.
    before = files_and_times(home)
    assert main(run) == 0
    out = capsys.readouterr().out
    assert "linked snapshot unchanged" in out
    assert out.count("inputs unchanged, not recomputed") == products
    assert files_and_times(home) == before

    # 2. A release replaced behind the pipeline's back is computed again, and only that one.
    meta = home / "published" / "sari_weekly" / R / "metadata.json"
    meta.write_text(meta.read_text().replace('"content_sha256": "', '"content_sha256": "x'))
    assert main(run) == 0
    out = capsys.readouterr().out
    assert out.count("inputs unchanged, not recomputed") == products - 1
    assert "sari_weekly          published revision 2" in out

    # 3. A re-sent delivery with new content: the snapshot is rebuilt and every release recomputed.
    write_delivery(landing, "sysvak", R, {"a.jsonl": (jsonl_bytes([vacc(2), vacc(3)]), 2)})
    assert main(run) == 0
    out = capsys.readouterr().out
    assert "linked snapshot unchanged" not in out and "not recomputed" not in out
    assert linked(Home(home), "SELECT count(*) AS n FROM vaccinations")["n"][0] == 4

    # 4. --product: a name not in assets/products/ is a usage error and changes nothing ...
    before = files_and_times(home)
    assert main([*run, "--product", "sari_weekly", "--product", "no_such_product"]) == 2
    assert "no product named no_such_product" in capsys.readouterr().err
    assert files_and_times(home) == before
    # ... and a new day with one product named publishes that one; the others keep their last
    # releases, byte for byte and untouched
    write_delivery(landing, "sysvak", "2026-01-08", {"a.jsonl": (jsonl_bytes([vacc(5)]), 1)})
    assert main([*run, "--product", "sari_weekly"]) == 0
    after = files_and_times(home)
    new = {p for p in after if "/2026-01-08/" in p}
    assert new and all(p.startswith("published/sari_weekly/") for p in new)
    for p, (content, mtime) in before.items():
        if p.startswith("published/") and f"/{R}/" in p and not p.startswith("published/sari_weekly/"):
            assert after[p] == (content, mtime), p


def test_the_code_digest_follows_every_file_of_specs_and_sql(tmp_path, monkeypatch):
    # a copy of the repository's specs, SQL and suites as the only spec root
    repository = inputs.spec_roots()[0]
    for part in ("assets", "sql", "dq_checks"):
        shutil.copytree(repository / part, tmp_path / part)
    monkeypatch.setattr(inputs, "spec_roots", lambda: [tmp_path])
    sql = tmp_path / "sql"
    digest = inputs.code_digest.__wrapped__
    first = digest()
    assert digest() == first
    template = sql / "products" / "_macros.sql.j2"
    template.write_text(template.read_text() + "\n-- a changed comment\n")
    second = digest()
    assert second != first
    (sql / "products" / "new.sql.j2").write_text("SELECT 1")  # a new file counts too
    assert digest() not in (first, second)
