"""The generator's state shared by the per-source modules: population, outboxes, counters, RNG."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from stat19.synth import rates
from stat19.synth.outbox import Outbox
from stat19.synth.population import ForeignPatients, IdRegistry, Population

# Typed records waiting in the outboxes (ids int64, days int32, kommune as code index).
SCHEMAS = {
    "freg": {"fnr": pl.Int64, "birth": pl.Int32, "sex": pl.Int8, "kcode": pl.Int32, "status": pl.Int8,
             "status_date": pl.Int32},
    "freg_changes": {"old_id": pl.Int64, "new_id": pl.Int64, "change_date": pl.Int32, "reason": pl.Int8},
    "msis": {"msis_id": pl.Int64, "fnr": pl.Int64, "disease": pl.Utf8, "sampling": pl.Int32, "diagnosis": pl.Int32,
             "notification": pl.Int32, "kcode": pl.Int32, "abroad": pl.Boolean, "status": pl.Utf8,
             "seconds": pl.Int32},
    "msis_lab": {"lab_result_id": pl.Int64, "fnr": pl.Int64, "lab": pl.Int16, "pathogen": pl.Utf8, "method": pl.Utf8,
                 "sampling": pl.Int32, "result": pl.Utf8, "kcode": pl.Int32},
    # pid >= 0: resolve identifier and kommune at delivery; pid -1: fnr/kcode already set (deletes)
    "sysvak": {"vaccination_id": pl.Int64, "pid": pl.Int64, "fnr": pl.Int64, "vaccine_code": pl.Utf8,
               "dose": pl.Int16, "vdate": pl.Int32, "kcode": pl.Int32, "action": pl.Utf8, "registered_day": pl.Int32},
    "kpr": {"claim_id": pl.Int64, "fnr": pl.Int64, "contact": pl.Int32, "ptype": pl.Utf8, "mode": pl.Utf8,
            "icpc2": pl.List(pl.Utf8), "takst": pl.List(pl.Utf8), "kcode": pl.Int32},
    "lmr": {"dispensing_id": pl.Int64, "fnr": pl.Int64, "ddate": pl.Int32, "atc": pl.Utf8, "ddd": pl.Float64,
            "prescriber": pl.Utf8, "kcode": pl.Int32},
    "mfr": {"birth_id": pl.Int64, "mother": pl.Int64, "child": pl.Int64, "bdate": pl.Int32, "ga": pl.Int32,
            "weight": pl.Int32, "plurality": pl.Int8, "stillborn": pl.Int8, "kcode": pl.Int32},
    "daar": {"death_id": pl.Int64, "fnr": pl.Int64, "death_date": pl.Int32, "cause": pl.Utf8, "place": pl.Utf8,
             "kcode": pl.Int32, "seconds": pl.Int32},
}

# Independent random streams, so that tuning one source does not reshuffle the others.
STREAMS = ("population", "births", "demography", "deaths", "msis", "msis_lab", "sysvak", "npr", "kpr", "lmr",
           "faults", "delivery_faults", "render")


@dataclass
class World:
    seed: int
    persons: int
    start_day: int
    days: int
    error_rate: float
    pop: Population = field(default_factory=Population)
    registry: IdRegistry = field(default_factory=IdRegistry)
    foreign: ForeignPatients | None = None
    outboxes: dict[str, Outbox] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    mortality_factor: float = 1.0

    def __post_init__(self) -> None:
        self.outboxes = {name: Outbox(schema) for name, schema in SCHEMAS.items()}

    @property
    def end_day(self) -> int:
        return self.start_day + self.days - 1

    @property
    def first_sim_day(self) -> int:
        return self.start_day - rates.WARMUP_DAYS

    @property
    def scale(self) -> float:
        return self.persons / rates.NATIONAL_POPULATION

    def per_day(self, per_year_national: float) -> float:
        """Expected daily count for this population from a national yearly volume."""
        return per_year_national * self.scale / 365.25

    def rng(self, stream: str, day: int, sub: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, STREAMS.index(stream), day + 1_000_000, sub])

    def new_ids(self, name: str, n: int) -> np.ndarray:
        """Sequential record numbers per kind of record (claim, episode, ...)."""
        first = self.counters.get(name, 1)
        self.counters[name] = first + n
        return np.arange(first, first + n, dtype=np.int64)

    def push(self, source: str, frame: pl.DataFrame) -> None:
        self.outboxes[source].push(frame)
