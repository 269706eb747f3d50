"""Writing deliveries exactly as sources.md says: files first, `_manifest.json` last.

Formats: CSV (delimiter, UTF-8 or windows-1252, header), JSON Lines (UTF-8), Parquet with the
contract's Arrow types. Files are written in chunks and hashed while written, so a large
cumulative NPR file never sits in memory as one string. Parquet is written with pyarrow, whose
files carry no timestamp: the same table gives the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from stat19.landing import sha256_of
from stat19.synth import rates

MANIFEST = "_manifest.json"
CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class Format:
    kind: str  # csv | jsonl | parquet
    delimiter: str = ";"
    encoding: str = "utf-8"

    @property
    def suffix(self) -> str:
        return {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet"}[self.kind]

    @property
    def is_text(self) -> bool:
        return self.kind != "parquet"


FORMATS = {
    "freg": Format("csv", ";"),
    "msis": Format("jsonl"),
    "msis_lab": Format("csv", ";"),
    "sysvak": Format("jsonl"),
    "npr": Format("csv", ";", "windows-1252"),
    "kpr": Format("parquet"),
    "mfr": Format("csv", ","),
    "daar": Format("csv", ";"),
    "lmr": Format("parquet"),
}

PARQUET_SCHEMAS = {
    "kpr": pa.schema([
        ("claim_id", pa.string()), ("fnr", pa.string()), ("contact_date", pa.date32()),
        ("practitioner_type", pa.string()), ("contact_mode", pa.string()),
        ("icpc2", pa.list_(pa.string())), ("takst", pa.list_(pa.string())), ("kommune_nr", pa.string()),
    ]),
    "lmr": pa.schema([
        ("dispensing_id", pa.string()), ("fnr", pa.string()), ("dispense_date", pa.date32()),
        ("atc_code", pa.string()), ("ddd", pa.float64()), ("prescriber_type", pa.string()),
        ("kommune_nr", pa.string()),
    ]),
}

# The column a `missing_column` delivery fault leaves out (a required one).
DROPPED_COLUMN = {
    "freg": "kjoenn", "msis": "disease", "msis_lab": "pathogen", "sysvak": "vaccine_code",
    "npr": "care_level", "kpr": "practitioner_type", "mfr": "birth_date", "daar": "death_date",
    "lmr": "atc_code",
}


@dataclass
class WrittenFile:
    name: str
    rows: int
    sha256: str

    def manifest_entry(self) -> dict:
        return {"name": self.name, "rows": self.rows, "sha256": self.sha256}


def file_names(source: str, n_rows: int) -> list[str]:
    if source == "freg":
        raise ValueError("freg files have fixed names")
    parts = max(1, -(-n_rows // rates.ROWS_PER_FILE))
    return [f"part-{i + 1:04d}{FORMATS[source].suffix}" for i in range(parts)]


def split_parts(source: str, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    names = file_names(source, frame.height)
    return [(name, frame.slice(i * rates.ROWS_PER_FILE, rates.ROWS_PER_FILE)) for i, name in enumerate(names)]


def _text_chunks(frame: pl.DataFrame, fmt: Format):
    """Encoded byte chunks of a CSV or JSONL file."""
    for offset in range(0, max(frame.height, 1), CHUNK_ROWS):
        chunk = frame.slice(offset, CHUNK_ROWS)
        buffer = io.BytesIO()
        if fmt.kind == "csv":
            chunk.write_csv(buffer, separator=fmt.delimiter, include_header=offset == 0, line_terminator="\n")
        else:
            chunk.write_ndjson(buffer)
        data = buffer.getvalue()
        if fmt.encoding != "utf-8":
            data = data.decode("utf-8").encode(fmt.encoding)  # strict: fails loudly on a foreign char
        yield data


def write_file(path: Path, source: str, frame: pl.DataFrame) -> WrittenFile:
    """Write one data file and return its manifest line (rows without header, sha256 of bytes)."""
    fmt = FORMATS[source]
    if fmt.kind == "parquet":
        table = frame.to_arrow().select(frame.columns)
        schema = pa.schema([PARQUET_SCHEMAS[source].field(n) for n in frame.columns])
        pq.write_table(table.cast(schema), path, compression="zstd", row_group_size=rates.ROWS_PER_FILE)
        return WrittenFile(path.name, frame.height, sha256_of(path))
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for data in _text_chunks(frame, fmt):
            f.write(data)
            digest.update(data)
    return WrittenFile(path.name, frame.height, digest.hexdigest())




def write_manifest(folder: Path, source: str, delivery_date: str, files: list[WrittenFile]) -> None:
    """The manifest marks the delivery complete: write it last, atomically (temp file + rename)."""
    doc = {"source": source, "delivery_date": delivery_date, "files": [f.manifest_entry() for f in files]}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)


# --------------------------------------------------------------------------- delivery faults


def _patch_byte(path: Path, find, if_empty: int) -> None:
    """Overwrite one byte in place (the file keeps its length and its line structure); an empty
    file gets the byte `if_empty` instead (still no newline, so still no row)."""
    with path.open("r+b") as f:
        head = f.read(1 << 20)
        if not head:
            f.write(bytes([if_empty]))
            return
        position, value = find(head)
        f.seek(position)
        f.write(bytes([value]))


def _first_byte_after_header(head: bytes, accept) -> int:
    newline = head.find(b"\n")
    for start in (newline + 1 if newline >= 0 else 0, 0):
        for i in range(start, len(head)):
            if accept(head[i]):
                return i
    return len(head) // 2


def make_undecodable(path: Path, encoding: str) -> None:
    """A byte no decoder accepts: 0xFF is never UTF-8, 0x81 is undefined in windows-1252."""
    bad = 0x81 if encoding == "windows-1252" else 0xFF
    _patch_byte(path, lambda head: (_first_byte_after_header(head, lambda b: chr(b).isalpha()), bad), bad)


def alter_content(path: Path, fmt: Format) -> None:
    """Change the bytes after the manifest was computed (a digit becomes another digit)."""
    if not fmt.is_text:
        _patch_byte(path, lambda head: (len(head) // 2, head[len(head) // 2] ^ 0x01), 0)
        return

    def find(head: bytes) -> tuple[int, int]:
        i = _first_byte_after_header(head, lambda b: 48 <= b <= 57)
        return i, (48 + (head[i] - 48 + 1) % 10) if 48 <= head[i] <= 57 else head[i] ^ 0x20

    _patch_byte(path, find, ord(" "))


def write_delivery(landing: Path, source: str, delivery_date: str, files: list[tuple[str, pl.DataFrame]],
                   fault: str | None = None) -> list[WrittenFile]:
    """Write a delivery folder (data files, then the manifest), applying a delivery-level fault."""
    folder = landing / source / delivery_date
    folder.mkdir(parents=True, exist_ok=True)
    fmt = FORMATS[source]
    if fault == "missing_column":
        name, frame = files[0]
        files = [(name, frame.drop(DROPPED_COLUMN[source])), *files[1:]]
    written = [write_file(folder / name, source, frame) for name, frame in files]
    first = folder / written[0].name
    if fault == "undecodable_bytes":
        make_undecodable(first, fmt.encoding)
        written[0] = WrittenFile(written[0].name, written[0].rows, sha256_of(first))
    elif fault == "sha256_mismatch":
        alter_content(first, fmt)
    elif fault == "row_count_mismatch":
        written[0] = WrittenFile(written[0].name, written[0].rows + 1, written[0].sha256)
    elif fault == "unlisted_file":
        (folder / f"unlisted-{written[0].name}").write_bytes(first.read_bytes())
    if fault != "missing_manifest":
        write_manifest(folder, source, delivery_date, written)
    return written

