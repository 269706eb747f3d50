"""Defects injected into one delivery of a synthetic landing, to show that the data-quality
checks block them (tests/test_dq_alarms.py, benchmarks/bench_dq_alarms.py).

Each defect rewrites the files of `<landing>/<source>/<day>/` in the source's own format and
writes a new manifest (last, as a register would), so the delivery itself is well-formed: only
its content is wrong.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from stat19.synth.ids import make_ids
from stat19.specs import source_specs

Frame = pl.DataFrame


def _read(spec, path: Path) -> Frame:
    if spec.format == "parquet":
        return pl.read_parquet(path)
    if spec.format == "jsonl":
        return pl.read_ndjson(path, infer_schema_length=None)
    text = path.read_bytes().decode(spec.encoding)
    return pl.read_csv(text.encode("utf-8"), separator=spec.delimiter or ",", infer_schema=False)


def _write(spec, frame: Frame, path: Path) -> None:
    if spec.format == "parquet":
        frame.write_parquet(path)
    elif spec.format == "jsonl":
        frame.write_ndjson(path)
    else:
        path.write_bytes(frame.write_csv(separator=spec.delimiter or ",").encode(spec.encoding))


def _write_manifest(folder: Path, source: str, day: date) -> None:
    files = [{"name": p.name, "rows": _rows(source, p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
             for p in sorted(folder.iterdir()) if p.name != "_manifest.json"]
    (folder / "_manifest.json").write_text(json.dumps({"source": source, "delivery_date": day.isoformat(), "files": files}, indent=2))


def _rows(source: str, path: Path) -> int:
    return _read(source_specs()[source], path).height


def rewrite(landing: Path, source: str, day: date, change: Callable[[Frame, object], Frame], file: str | None = None) -> None:
    """Apply `change(frame, table_spec)` to every data file of the delivery (or the one named)."""
    spec = source_specs()[source]
    folder = landing / source / day.isoformat()
    (folder / "_manifest.json").unlink()
    for path in sorted(folder.iterdir()):
        if file is None or path.name == file:
            table = next(t for t in spec.tables if t.matches(path.name))
            _write(spec, change(_read(spec, path), table), path)
    _write_manifest(folder, source, day)


def unknown_identifiers(landing: Path, source: str, day: date, seed: int = 99) -> None:
    """Every person identifier replaced by a valid number that nobody else knows."""
    def change(frame: Frame, table) -> Frame:
        rng = np.random.default_rng(seed)
        births = np.datetime64("1930-01-01") + rng.integers(0, 365 * 80, frame.height).astype("timedelta64[D]")
        fresh = make_ids(rng, births, rng.choice(np.array(["male", "female"]), frame.height), kind="fnr")
        return frame.with_columns(pl.when(pl.col(c).is_not_null()).then(pl.Series(fresh)).otherwise(None).alias(c)
                                  for c in table.person_id_columns)
    rewrite(landing, source, day, change)


def fewer_rows(landing: Path, source: str, day: date, share: float = 0.5) -> None:
    """The delivery holds only the first `share` of its rows (half by default)."""
    rewrite(landing, source, day, lambda frame, _: frame.head(int(frame.height * share)))


def shift_date(landing: Path, source: str, day: date, column: str, days: int = -365) -> None:
    """A date column shifted by a year (back by default)."""
    def change(frame: Frame, table) -> Frame:
        if column not in frame.columns:
            return frame
        as_date = pl.col(column).cast(pl.Utf8).str.to_date(strict=False)
        shifted = as_date + pl.duration(days=days)
        return frame.with_columns(shifted.cast(frame.schema[column]) if frame.schema[column] == pl.Date
                                  else shifted.dt.strftime("%Y-%m-%d").alias(column))
    rewrite(landing, source, day, change)


def all_quarantined(landing: Path, source: str, day: date) -> None:
    """Every row's person identifier broken (not 11 digits): every row goes to quarantine."""
    def change(frame: Frame, table) -> Frame:
        return frame.with_columns(pl.lit("not-an-id").alias(c) for c in table.person_id_columns[:1])
    rewrite(landing, source, day, change)


def resend_previous(landing: Path, source: str, day: date) -> None:
    """Yesterday's delivery sent again as today's (same files, a manifest for today)."""
    folder, yesterday = landing / source / day.isoformat(), landing / source / (day - timedelta(days=1)).isoformat()
    shutil.rmtree(folder)
    shutil.copytree(yesterday, folder)
    (folder / "_manifest.json").unlink()
    _write_manifest(folder, source, day)


def swap_sex(landing: Path, source: str, day: date, column: str = "kjoenn", codes: tuple[str, str] = ("mann", "kvinne")) -> None:
    """The two sex codes swapped in every row."""
    a, b = codes
    def change(frame: Frame, table) -> Frame:
        if column not in frame.columns:
            return frame
        return frame.with_columns(pl.col(column).replace({a: b, b: a}))
    rewrite(landing, source, day, change)


# The defects that must block, each on a source where it means something at 20,000 persons.
DEFECTS: dict[str, Callable[[Path, date], None]] = {
    "unknown_identifiers": lambda landing, day: unknown_identifiers(landing, "lmr", day),
    "half_rows": lambda landing, day: fewer_rows(landing, "npr", day),
    "date_shifted_a_year": lambda landing, day: shift_date(landing, "kpr", day, "contact_date"),
    "all_quarantined": lambda landing, day: all_quarantined(landing, "kpr", day),
    "resent_yesterday": lambda landing, day: resend_previous(landing, "lmr", day),
    "sex_codes_swapped": lambda landing, day: swap_sex(landing, "freg", day),
}
