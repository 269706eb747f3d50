"""Loading one delivery into the vault, all or nothing.

A delivery is checked as a whole (manifest, bytes, encoding, columns, row counts) and either
rejected with a message naming the file and the rule, or loaded in one transaction: every row is
then loaded, quarantined with a reason, or counted as a duplicate. The state of the vault is a
function of the set of loaded deliveries, so the same delivery twice changes nothing and
deliveries loaded out of order end in the same state as in order.
"""

from __future__ import annotations

import codecs
import errno
import re
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import duckdb

from stat19.db import render, run_script, sql_literal
from stat19.faults import checkpoint
from stat19.landing import Delivery, DeliveryRejected, ManifestFile, read_manifest
from stat19.paths import Home
from stat19.specs import SQL_TYPES, SourceSpec, Table, code_systems, source_specs


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery: one line of reports/deliveries.csv."""

    source: str
    delivery_date: date
    status: str  # loaded | rejected | ignored | already_loaded
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    message: str = ""
    manifest_sha256: str | None = None

    def describe(self) -> str:
        """One line for a person watching the run."""
        head = f"{self.delivery_date}  {self.source:<8} {self.status:<15}"  # a long source name stays apart
        if self.status != "loaded":
            return head + self.message
        extra = f" ({self.rows_quarantined:,} quarantined, {self.rows_duplicate:,} duplicates)" if self.rows_quarantined or self.rows_duplicate else ""
        return head + f"{self.rows_loaded:,} of {self.rows_in:,} rows{extra}" + (f" — {self.message}" if self.message else "")


def ensure_schema(con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec] | None = None) -> None:
    """Create the bookkeeping and record tables (idempotent) and refresh their views."""
    run_script(con, render("ingest/bookkeeping.sql.j2"))
    for spec in (specs or source_specs()).values():
        for t in spec.tables:
            run_script(con, render("ingest/record_table.sql.j2", t=t, types=SQL_TYPES))


def is_settled(con: duckdb.DuckDBPyConnection, delivery: Delivery) -> bool:
    """Loaded, or rejected, with exactly this manifest: trying again would change nothing."""
    if not delivery.is_complete:
        return False
    # fetchall: a result left pending on the connection blocks the next statement (ResourceInUse)
    return con.execute(
        """SELECT count(*) > 0 FROM (
               SELECT manifest_sha256 FROM loaded_deliveries WHERE source = $s AND delivery_date = $d
               UNION ALL
               SELECT manifest_sha256 FROM delivery_log WHERE source = $s AND delivery_date = $d AND status = 'rejected'
           ) WHERE manifest_sha256 = $sha""",
        {"s": delivery.source, "d": delivery.delivery_date, "sha": delivery.manifest_digest()},
    ).fetchall()[0][0]


class RunFault(Exception):
    """A fault of the run itself (the vault cannot be written, the disk is full), not of a delivery:
    trying other deliveries, or the same step again, cannot succeed."""


_RUN_FAULT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_RUN_FAULT_TEXT = ("no space left on device", "disk quota exceeded", "read-only file system", "database has been invalidated")


def run_fault(exc: BaseException, home: Home) -> RunFault | None:
    """The exception as a RunFault when it is about the home or the machine rather than a delivery."""
    text = str(exc)
    about_home = str(home.root.resolve()) in text or str(home.root) in text
    if isinstance(exc, OSError) and exc.filename is not None:
        about_home = about_home or Path(str(exc.filename)).resolve().is_relative_to(home.root.resolve())
    if ((isinstance(exc, OSError) and exc.errno in _RUN_FAULT_ERRNOS) or about_home or isinstance(exc, MemoryError)
            or isinstance(exc, duckdb.FatalException) or any(t in text.lower() for t in _RUN_FAULT_TEXT)):
        return RunFault(f"{type(exc).__name__}: {first_line(text) or 'no message'}")
    return None


def first_line(text: str) -> str:
    """The first line of an error message with quoted values and long digit runs masked: DuckDB
    quotes the value it could not cast, and a value may be an identifier."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", line)
    return re.sub(r"\d[\d .-]{4,}\d", "…", line)[:300]


def load_delivery(con: duckdb.DuckDBPyConnection, home: Home, delivery: Delivery, force: bool = False) -> Outcome:
    """Load one delivery folder; record and return what happened. Whatever goes wrong with the
    delivery ends in its rejection; only a fault of the run itself (RunFault) is raised."""
    if not delivery.is_complete:
        outcome = Outcome(delivery.source, delivery.delivery_date, "ignored", message="no _manifest.json yet: still being written")
        _log(con, outcome)
        return outcome
    digest = delivery.manifest_digest()
    loaded = con.execute(
        "SELECT manifest_sha256 FROM loaded_deliveries WHERE source = ? AND delivery_date = ?",
        [delivery.source, delivery.delivery_date],
    ).fetchall()
    loaded = loaded[0] if loaded else None
    if loaded and loaded[0] == digest and not force:
        outcome = Outcome(delivery.source, delivery.delivery_date, "already_loaded",
                          message="identical to the delivery already loaded", manifest_sha256=digest)
        _log(con, outcome)
        return outcome

    con.execute("BEGIN TRANSACTION")
    try:
        with rejected_as(delivery.label(), home):
            outcome = _load(con, home, source_specs()[delivery.source], delivery, digest, replacing=loaded is not None)
        _log(con, outcome)
        checkpoint(f"load:{delivery.source}")
        con.execute("COMMIT")
    except DeliveryRejected as exc:
        _rollback(con, home)  # nothing of the delivery stays
        message = str(exc) + ("; the earlier load of this date is kept" if loaded else "")
        outcome = Outcome(delivery.source, delivery.delivery_date, "rejected", message=message, manifest_sha256=digest)
        _log(con, outcome)
    except BaseException:
        _rollback(con, home)  # the previous good state stays
        raise
    finally:
        for p in home.scratch.glob(f"{delivery.source}-*.utf8"):
            p.unlink(missing_ok=True)
    return outcome


def _rollback(con, home: Home) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        if (fault := run_fault(exc, home)) is not None or "no transaction is active" not in str(exc).lower():
            raise fault or RunFault(f"the vault could not roll back: {first_line(str(exc))}") from exc


def _load(con, home: Home, spec: SourceSpec, delivery: Delivery, digest: str, replacing: bool) -> Outcome:
    files = read_manifest(delivery)
    by_table: dict[str, list[ManifestFile]] = {t.name: [] for t in spec.tables}
    for f in files:
        table = spec.table_for(f.name)
        if table is None:
            raise DeliveryRejected(f"{delivery.label()}/{f.name}: matches no table of the {spec.name} spec")
        by_table[table.name].append(f)

    day = delivery.delivery_date
    # A re-sent delivery with new content replaces the earlier load of the same date.
    if replacing and spec.delivery_kind != "cumulative":
        for t in spec.tables:
            con.execute(f'DELETE FROM "{t.name}" WHERE _delivery_date = ?', [day])
    con.execute("DELETE FROM quarantine WHERE source = ? AND delivery_date = ?", [spec.name, day])

    totals = {"in": 0, "loaded": 0, "quarantined": 0, "duplicate": 0}
    notes = []
    for t in spec.tables:
        counts = _stage_table(con, home, spec, t, delivery, by_table[t.name])
        for k in totals:
            totals[k] += counts[k]
        params = dict(t=t, source=spec.name, delivery_date=day.isoformat())
        run_script(con, render("ingest/quarantine.sql.j2", **params))
        if spec.delivery_kind == "cumulative":
            notes.append(_apply_cumulative(con, t, delivery))
        else:
            run_script(con, render("ingest/apply_incremental.sql.j2", **params))

    con.execute(
        "INSERT OR REPLACE INTO loaded_deliveries VALUES (?, ?, ?, ?)",
        [spec.name, day, digest, datetime.now(timezone.utc)],
    )
    message = "; ".join(n for n in ["replaces the earlier load of this date" if replacing else "", *notes] if n)
    return Outcome(spec.name, day, "loaded", totals["in"], totals["loaded"], totals["quarantined"],
                   totals["duplicate"], message, digest)


def _stage_table(con, home: Home, spec: SourceSpec, t: Table, delivery: Delivery, files: list[ManifestFile]) -> dict[str, int]:
    """Read and check every file of one table; reject the delivery on a whole-file problem."""
    cols = ", ".join(f'"{c.name}" {"VARCHAR[]" if c.type == "string_list" else "VARCHAR"}' for c in t.columns)
    con.execute(f"CREATE OR REPLACE TEMP TABLE stg_raw (_file VARCHAR, _row BIGINT, _malformed BOOLEAN, _raw VARCHAR, {cols})")
    for f in files:
        with rejected_as(f"{delivery.label()}/{f.name}", home):
            _stage_file(con, home, spec, t, delivery, f)
    with rejected_as(f"{delivery.label()}, table {t.name}", home):
        window_start = date(delivery.delivery_date.year, 1, 1).isoformat() if t.window_date else None
        run_script(con, render("ingest/check.sql.j2", t=t, format=spec.format, delivery_date=delivery.delivery_date.isoformat(),
                               code_systems=code_systems(), window_start=window_start))
        counts = dict(con.execute("SELECT _status, count(*) FROM stg_checked GROUP BY ALL").fetchall())
    return {
        "in": sum(counts.values()),
        "loaded": counts.get("loaded", 0),
        "quarantined": counts.get("quarantined", 0),
        "duplicate": counts.get("duplicate", 0),
    }


@contextmanager
def rejected_as(where: str, home: Home) -> Iterator[None]:
    """Any failure inside rejects the delivery with a message naming `where`, unless it is a fault
    of the run itself."""
    try:
        yield
    except (DeliveryRejected, RunFault):
        raise
    except Exception as exc:
        if (fault := run_fault(exc, home)) is not None:
            raise fault from exc
        raise DeliveryRejected(f"{where}: could not be read or checked ({type(exc).__name__}: {first_line(str(exc))})") from None


def _stage_file(con, home: Home, spec: SourceSpec, t: Table, delivery: Delivery, f: ManifestFile) -> None:
    """Read one file of a table into stg_raw, checking its columns and row count."""
    where = f"{delivery.label()}/{f.name}"
    path = _readable_utf8(home, spec, delivery, f.name)
    header = _columns_of(con, spec, path, where)
    expected = t.column_names
    if spec.format == "jsonl":
        # JSON writers may omit null keys: only required keys must appear, and only if there are rows
        expected = [c.name for c in t.columns if c.required] if header else []
    missing = [c for c in expected if c not in header]
    if missing:
        raise DeliveryRejected(f"{where}: missing required column {missing[0]}")
    unexpected = [c for c in header if c not in t.column_names]
    if unexpected:
        raise DeliveryRejected(f"{where}: unexpected column {unexpected[0]} (not in the {spec.name} spec)")
    try:
        run_script(con, render("ingest/stage.sql.j2", t=t, format=spec.format, path=str(path),
                               delimiter=spec.delimiter or "", header=header))
    except duckdb.Error as exc:
        raise DeliveryRejected(f"{where}: {_describe_read_error(exc)}") from None
    has_rejects = False
    if spec.format == "csv":
        # DuckDB sets aside rows it cannot parse; undecodable bytes still reject the whole delivery
        bad_bytes = con.execute("SELECT min(line) FROM stg_rejects WHERE error_type = 'INVALID ENCODING'").fetchone()[0]
        if bad_bytes is not None:
            raise DeliveryRejected(f"{where}: bytes that do not decode as UTF-8 at line {bad_bytes}")
        has_rejects = con.execute("SELECT count(*) FROM stg_rejects").fetchone()[0] > 0
    before = con.execute("SELECT count(*) FROM stg_raw").fetchone()[0]
    run_script(con, render("ingest/stage_append.sql.j2", t=t, format=spec.format, file=f.name, has_rejects=has_rejects))
    rows = con.execute("SELECT count(*) FROM stg_raw").fetchone()[0] - before
    if rows != f.rows:
        raise DeliveryRejected(f"{where}: {rows} data rows, but the manifest says {f.rows}")


def _apply_cumulative(con, t: Table, delivery: Delivery) -> str:
    day = delivery.delivery_date
    year_start, year_end = date(day.year, 1, 1), date(day.year, 12, 31)
    next_date = con.execute(
        "SELECT min(delivery_date) FROM loaded_deliveries WHERE source = ? AND delivery_date > ? AND delivery_date <= ?",
        [delivery.source, day, year_end],
    ).fetchone()[0]
    snapshot_next = dict(
        next_date=next_date.isoformat() if next_date else None,
        day_before_next=(next_date - timedelta(days=1)).isoformat() if next_date else None,
        next_label=f"{delivery.source}/{next_date}" if next_date else None,
    )
    sql = render("ingest/apply_cumulative.sql.j2", t=t, delivery_date=day.isoformat(),
                 day_before=(day - timedelta(days=1)).isoformat(), window_start=year_start.isoformat(),
                 delivery_label=delivery.label(), **snapshot_next)
    run_script(con, sql)
    changed, deleted = con.execute("SELECT changed, deleted FROM cum_stats").fetchone()
    note = f"{changed} new or corrected, {deleted} deleted"
    if next_date:
        note += f"; restated the changes of the later delivery {next_date}"
    return note


def _readable_utf8(home: Home, spec: SourceSpec, delivery: Delivery, name: str) -> Path:
    """The file as UTF-8 DuckDB can read; windows-1252 is transcoded strictly into the scratch space."""
    path = delivery.folder / name
    if spec.format == "parquet" or spec.encoding == "utf-8":
        return path
    target = home.scratch / f"{spec.name}-{delivery.delivery_date}-{name}.utf8"
    decoder = codecs.getincrementaldecoder(spec.encoding)(errors="strict")
    offset, line = 0, 1
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            try:
                text = decoder.decode(block)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start
                line += block[: exc.start].count(b"\n")
                raise DeliveryRejected(
                    f"{delivery.label()}/{name}: byte 0x{block[exc.start]:02x} at offset {bad} (line {line}) "
                    f"does not decode as {spec.encoding}"
                ) from None
            offset += len(block)
            line += block.count(b"\n")
            dst.write(text)
        dst.write(decoder.decode(b"", final=True))
    return target


def _columns_of(con, spec: SourceSpec, path: Path, where: str) -> list[str]:
    """The column names a file delivers (CSV header, JSON keys, Parquet schema)."""
    try:
        if spec.format == "csv":
            with path.open("rb") as f:
                first = f.readline(1 << 20).decode("utf-8").rstrip("\r\n")
            return [h.strip().strip('"') for h in first.split(spec.delimiter)] if first else []
        if spec.format == "parquet":
            return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_literal(path)})").fetchall()]
        rows = con.execute(
            f"""SELECT DISTINCT unnest(json_keys(line)) FROM read_csv({sql_literal(path)}, columns = {{'line': 'VARCHAR'}},
                header = false, delim = chr(31), quote = '', escape = '', auto_detect = false)
                WHERE json_valid(line)"""
        ).fetchall()
        return [r[0] for r in rows]
    except UnicodeDecodeError:
        raise DeliveryRejected(f"{where}: bytes that do not decode as UTF-8 in the header line") from None
    except duckdb.Error as exc:
        raise DeliveryRejected(f"{where}: {_describe_read_error(exc)}") from None


def _describe_read_error(exc: Exception) -> str:
    """DuckDB's reader message without the row it quotes (a row may hold an identifier)."""
    text = str(exc)
    line = re.search(r"[Ll]ine:? (\d+)", text)
    at = f" at line {line.group(1)}" if line else ""
    if "unicode" in text.lower() or "utf-8" in text.lower() or "utf8" in text.lower():
        return f"bytes that do not decode as UTF-8{at}"
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"unreadable{at}: {first[:200]}"


def _log(con, o: Outcome) -> None:
    con.execute(
        "INSERT INTO delivery_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [o.source, o.delivery_date, o.status, o.rows_in, o.rows_loaded, o.rows_quarantined,
         o.rows_duplicate, o.message, o.manifest_sha256, datetime.now(timezone.utc)],
    )
