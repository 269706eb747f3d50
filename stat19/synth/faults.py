"""Bad input, on purpose: row-level problems inside deliveries and delivery-level faults.

Row-level kinds (rates.ROW_FAULT_KINDS, named like the pipeline's quarantine reasons) are drawn
per delivery at `error_rate` per row and kind, on disjoint rows, so every bad row has exactly one
problem and the ground truth can count them:
  invalid_identifier  one digit of an identifier changed (the check digits always catch it)
  missing_field       a required field emptied
  bad_date            a date that does not parse (text formats only: Parquet dates are typed)
  future_date         an event date after the delivery date
  unknown_code        a code outside its code system or list (kommune_nr not 4 digits)
  duplicate_row       an exact copy of a row (counted per extra copy: `rows_duplicate`)
  duplicate_id        a copy of a row with one field changed (counted as 2 rows: both quarantined)
Sources whose records carry a timestamp (msis, daar, sysvak) get no duplicate kinds: a repeated
id there is a legitimate version. A msis_lab row that is not positive never gets an identifier
error, and its `result` is never touched (its identity is dropped at ingest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from stat19.synth import rates
from stat19.synth.reference import geography

ENUMS = {
    "kjoenn": ("mann", "kvinne"),
    "status": ("bosatt", "utflyttet", "doed", "forsvunnet", "ikkeBosatt", "opphoert"),
    "disease": tuple(rates.MSIS_DISEASES),
    "pathogen": tuple(rates.LAB_PATHOGENS),
    "method": tuple(m for m, _ in rates.LAB_METHODS),
    "care_level": ("1", "2", "3"),
    "practitioner_type": tuple(p for p, _ in rates.KPR_PRACTITIONER),
    "contact_mode": ("oppmote", "video", "tekst", "telefon", "sykebesok"),
}
BAD_ENUM = {"kjoenn": ("m", "K", "ukjent"), "care_level": ("4", "0", "9")}
BAD_ENUM_DEFAULT = ("ukjent", "annet", "X")


@dataclass(frozen=True)
class Targets:
    """Which columns of a source's output each fault kind touches."""

    ids: tuple[str, ...]
    required: tuple[str, ...]
    dates: tuple[str, ...]  # text date columns that can be made unparsable
    future: str  # the event date moved after the delivery date
    codes: dict[str, str]  # column -> enum | kommune | icd10 | icd10_joined | icpc2_list | atc
    variant: str | None = None  # column changed for duplicate_id; None: no duplicate kinds
    only_rows: str | None = None  # a column=value condition for rows that may be touched
    id_rows: str | None = None  # a further condition for identifier faults


TARGETS = {
    "freg": Targets(ids=("fnr",), required=("fnr", "birth_date", "kjoenn", "kommune_nr", "status", "status_date"),
                    dates=("birth_date", "status_date"), future="status_date",
                    codes={"kjoenn": "enum", "status": "enum", "kommune_nr": "kommune"}, variant="kommune_nr"),
    "msis": Targets(ids=("fnr",), required=("msis_id", "fnr", "disease", "diagnosis_date", "notification_date", "status"),
                    dates=("diagnosis_date", "notification_date"), future="notification_date",
                    codes={"disease": "enum", "kommune_nr": "kommune"}),
    "msis_lab": Targets(ids=("fnr",), required=("lab_result_id", "lab_id", "pathogen", "method", "sampling_date"),
                        dates=("sampling_date",), future="sampling_date",
                        codes={"pathogen": "enum", "method": "enum", "kommune_nr": "kommune"}, variant="method",
                        id_rows="result=positive"),
    "sysvak": Targets(ids=("fnr",), required=("fnr", "vaccine_code", "vaccination_date", "registered_at"),
                      dates=("vaccination_date",), future="vaccination_date",
                      codes={"vaccine_code": "atc", "kommune_nr": "kommune"}, only_rows="action=insert"),
    "npr": Targets(ids=("fnr",), required=("episode_id", "fnr", "health_trust", "admission_date", "care_level", "main_diagnosis"),
                   dates=("admission_date",), future="discharge_date",
                   codes={"main_diagnosis": "icd10", "secondary_diagnoses": "icd10_joined", "care_level": "enum"},
                   variant="main_diagnosis"),
    "kpr": Targets(ids=("fnr",), required=("claim_id", "fnr", "contact_date", "practitioner_type", "contact_mode"),
                   dates=(), future="contact_date",
                   codes={"icpc2": "icpc2_list", "practitioner_type": "enum", "contact_mode": "enum", "kommune_nr": "kommune"},
                   variant="contact_mode"),
    "mfr": Targets(ids=("mother_fnr", "child_fnr"), required=("birth_id", "mother_fnr", "birth_date", "gestational_age_days", "plurality"),
                   dates=("birth_date",), future="birth_date", codes={"mother_kommune_nr": "kommune"},
                   variant="birth_weight_g"),
    "daar": Targets(ids=("fnr",), required=("death_id", "fnr", "death_date", "underlying_cause", "updated_at"),
                    dates=("death_date",), future="death_date", codes={"underlying_cause": "icd10", "kommune_nr": "kommune"}),
    "lmr": Targets(ids=("fnr",), required=("dispensing_id", "fnr", "dispense_date", "atc_code"),
                   dates=(), future="dispense_date", codes={"atc_code": "atc", "kommune_nr": "kommune"}, variant="ddd"),
}

VALID_ICD10 = ("J189", "I219", "K358", "S720", "N390", "Z098")


def applicable_kinds(source: str) -> tuple[str, ...]:
    t = TARGETS[source]
    kinds = [k for k in rates.ROW_FAULT_KINDS if k not in ("duplicate_row", "duplicate_id") or t.variant]
    if not t.dates:
        kinds.remove("bad_date")
    return tuple(kinds)


def _condition(frame: pl.DataFrame, cond: str | None) -> np.ndarray:
    if cond is None:
        return np.ones(frame.height, dtype=bool)
    column, value = cond.split("=")
    return (frame[column] == value).fill_null(False).to_numpy()


def eligible_rows(frame: pl.DataFrame, source: str, kind: str) -> np.ndarray:
    t = TARGETS[source]
    mask = _condition(frame, t.only_rows)
    if kind == "invalid_identifier":
        mask &= _condition(frame, t.id_rows) & frame[t.ids[0]].is_not_null().to_numpy()
    return mask


def choose_rows(rng: np.random.Generator, frame: pl.DataFrame, source: str, rate: float) -> dict[str, np.ndarray]:
    """Disjoint row indices per fault kind, each kind at `rate` per eligible row."""
    used = np.zeros(frame.height, dtype=bool)
    chosen = {}
    for kind in applicable_kinds(source):
        candidates = np.flatnonzero(eligible_rows(frame, source, kind) & ~used)
        k = min(int(rng.binomial(candidates.size, rate)), candidates.size) if candidates.size else 0
        rows = np.sort(rng.choice(candidates, size=k, replace=False)) if k else np.empty(0, dtype=np.int64)
        used[rows] = True
        chosen[kind] = rows
    return chosen


# --------------------------------------------------------------------------- mutations


def _index(u: np.ndarray, k: int) -> np.ndarray:
    """Uniforms in [0, 1) -> indices 0..k-1."""
    return np.minimum((u * k).astype(np.int64), k - 1)


def _labels(values, u: np.ndarray) -> pl.Series:
    """One of `values` per row, chosen by the uniforms `u`."""
    return pl.Series(list(values), dtype=pl.Utf8).gather(_index(u, len(values)))


def change_one_digit(ids: pl.Series, u_position: np.ndarray, u_delta: np.ndarray) -> pl.Series:
    """Each 11-digit id with one digit changed (+1..+9 mod 10: always another digit)."""
    digits = ids.fill_null("0" * 11).to_numpy().astype("S11").view(np.uint8).reshape(-1, 11).copy()
    rows = np.arange(digits.shape[0])
    position = _index(u_position, 11)
    digits[rows, position] = 48 + (digits[rows, position] - 48 + 1 + _index(u_delta, 9)) % 10
    return pl.Series(digits.view("S11").ravel().astype(str), dtype=pl.Utf8)


def bad_codes(column: str, system: str, u: np.ndarray) -> pl.Expr:
    """A value outside the column's code system, one per uniform in `u`."""
    if system == "enum":
        return pl.lit(_labels(BAD_ENUM.get(column, BAD_ENUM_DEFAULT), u))
    bad = {"kommune": rates.BAD_KOMMUNE, "icd10": rates.BAD_ICD10, "icd10_joined": rates.BAD_ICD10,
           "atc": rates.BAD_ATC, "icpc2_list": rates.BAD_ICPC2}[system]
    value = pl.lit(_labels(bad, u))
    if system == "icd10_joined":  # one bad code among the good ones
        return pl.when(pl.col(column).is_null()).then(value).otherwise(pl.concat_str(pl.col(column), pl.lit("|"), value))
    if system == "icpc2_list":
        return pl.concat_list(pl.col(column).fill_null(pl.lit([], dtype=pl.List(pl.Utf8))).list.head(1), value)
    return value


def variant_values(frame: pl.DataFrame, column: str, u: np.ndarray) -> pl.Expr:
    """A different value that is still valid, for an id repeated with different content."""
    if column == "birth_weight_g":
        return (pl.col(column).cast(pl.Int64).fill_null(3000) + pl.lit(10 + _index(u, 190))).cast(pl.Utf8)
    if column == "ddd":
        return pl.col(column).fill_null(1.0) * 2
    if column in ENUMS:
        vocabulary = list(ENUMS[column])
    elif column == "main_diagnosis":
        vocabulary = list(VALID_ICD10)
    else:  # kommune_nr: another 2024 kommune
        vocabulary = geography().codes[: geography().n_kommuner].tolist()
    k = len(vocabulary)
    current = frame[column].replace_strict(vocabulary, list(range(k)), default=0, return_dtype=pl.Int64).to_numpy()
    return pl.lit(pl.Series(vocabulary, dtype=pl.Utf8).gather((current + 1 + _index(u, k - 1)) % k))


def _mutate(bad: pl.DataFrame, source: str, kind: str, day: int, draws: np.ndarray) -> pl.DataFrame:
    """The bad version (or extra copy) of the rows in `bad`; `draws` holds 3 uniforms per row.
    Vectorised: for each column a kind may touch, compute the bad value for every row and keep it
    where the row chose that column."""
    t = TARGETS[source]
    u0, u1, u2 = draws[:, 0], draws[:, 1], draws[:, 2]

    def replace(frame: pl.DataFrame, column: str, rows: np.ndarray, value: pl.Expr | pl.Series) -> pl.DataFrame:
        value = pl.lit(value) if isinstance(value, pl.Series) else value
        return frame.with_columns(pl.when(pl.Series(rows)).then(value).otherwise(pl.col(column)).alias(column))

    if kind == "invalid_identifier":  # the first identifier column, or another one that is filled
        present = np.column_stack([bad[c].is_not_null().to_numpy() for c in t.ids])
        chosen = np.where(present[:, -1] & (u0 >= 0.5), len(t.ids) - 1, 0)
        for j, column in enumerate(t.ids):
            bad = replace(bad, column, chosen == j, change_one_digit(bad[column], u1, u2))
    elif kind == "missing_field":
        chosen = _index(u0, len(t.required))
        for j, column in enumerate(t.required):
            bad = replace(bad, column, chosen == j, pl.lit(None, dtype=bad.schema[column]))
    elif kind == "bad_date":
        chosen = _index(u0, len(t.dates))
        for j, column in enumerate(t.dates):
            bad = replace(bad, column, chosen == j, _labels(rates.UNPARSABLE_DATES, u1))
    elif kind == "future_date":
        future = pl.Series(day + 1 + _index(u0, 59), dtype=pl.Int32).cast(pl.Date)
        bad = bad.with_columns(future.cast(bad.schema[t.future]).alias(t.future))
    elif kind == "unknown_code":
        chosen = _index(u0, len(t.codes))
        for j, (column, system) in enumerate(t.codes.items()):
            bad = replace(bad, column, chosen == j, bad_codes(column, system, u1))
    elif kind == "duplicate_id":
        bad = bad.with_columns(variant_values(bad, t.variant, u0).alias(t.variant))
    # duplicate_row: an exact copy, nothing to change
    return bad


def record_uniforms(keys: np.ndarray, salt: int, n: int = 3) -> np.ndarray:
    """n uniforms per record key (splitmix64): the same record gets the same draws every day."""
    x = keys.astype(np.uint64)[:, None] * np.uint64(0x100000001B3) + np.uint64(salt % 2**64) \
        + np.arange(1, n + 1, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(2**53)


def inject_row_faults(rng: np.random.Generator, frame: pl.DataFrame, source: str, day: int,
                      chosen: dict[str, np.ndarray], record_keys: np.ndarray | None = None,
                      salt: int = 0) -> tuple[pl.DataFrame, dict[str, int]]:
    """Apply the chosen faults. Corrupted rows keep their place; copies follow their original.
    With `record_keys` (one integer per row), the damage is a property of the record (the same
    in every delivery). Returns the new frame and the count of bad rows per kind (module docstring)."""
    counts = {kind: 0 for kind in applicable_kinds(source)}
    if not any(rows.size for rows in chosen.values()):
        return frame, counts
    position = np.arange(frame.height, dtype=np.int64) * 2
    keep = np.ones(frame.height, dtype=bool)
    pieces = []
    for kind, rows in chosen.items():
        if not rows.size:
            continue
        draws = rng.random((rows.size, 3)) if record_keys is None else record_uniforms(record_keys[rows], salt)
        bad = _mutate(frame[rows], source, kind, day, draws)
        is_copy = kind in ("duplicate_row", "duplicate_id")
        if not is_copy:
            keep[rows] = False
        pieces.append(bad.with_columns(_pos=pl.Series(position[rows] + is_copy)))
        counts[kind] = rows.size * (2 if kind == "duplicate_id" else 1)
    kept = frame.with_columns(_pos=pl.Series(position)).filter(pl.Series(keep))
    out = pl.concat([kept, *pieces], how="vertical").sort("_pos").drop("_pos")
    return out, counts


# --------------------------------------------------------------------------- delivery faults


# Byte-level faults go to sources that deliver rows every day (and text formats for decoding).
DELIVERY_FAULT_SOURCES = {
    "undecodable_bytes": ("msis_lab", "sysvak", "npr"),
    "sha256_mismatch": ("msis_lab", "sysvak", "npr", "kpr", "lmr"),
}


def plan_delivery_faults(rng: np.random.Generator, days: int) -> dict[tuple[str, int], str]:
    """(source, day offset) -> fault kind. Each kind at least once when days >= 2 (once more per
    DELIVERY_FAULT_EVERY_DAYS), never on day 0, spread over different sources and days."""
    if days < 2:
        return {}
    repeats = max(1, days // rates.DELIVERY_FAULT_EVERY_DAYS)
    slots = [(s, d) for d in range(1, days) for s in rates.SOURCES]
    order = rng.permutation(len(slots))
    plan: dict[tuple[str, int], str] = {}
    used_sources: set[str] = set()
    used_days: set[int] = set()
    for _ in range(repeats):
        for kind in rates.DELIVERY_FAULT_KINDS:
            def ok(slot, strict):
                source, day = slot
                if slot in plan or source not in DELIVERY_FAULT_SOURCES.get(kind, rates.SOURCES):
                    return False
                return not strict or (source not in used_sources and day not in used_days)
            for strict in (True, False):
                slot = next((slots[i] for i in order if ok(slots[i], strict)), None)
                if slot:
                    break
            if slot is None:
                continue
            plan[slot] = kind
            used_sources.add(slot[0])
            used_days.add(slot[1])
            if len(used_sources) == len(rates.SOURCES):
                used_sources.clear()
            if len(used_days) == days - 1:
                used_days.clear()
    return plan
