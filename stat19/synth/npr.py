"""NPR: specialist-care episodes, delivered CUMULATIVELY.

The year's episodes live in one polars table with everything the register will ever know about
them: when the episode becomes known, when its discharge date becomes known, when its diagnosis is
corrected and when it is deleted. A delivery on day D is a filter and a few `when` columns over
that table (no Python loop over rows): every episode admitted from 1 January of D's year, known by
D and not deleted by D, as known on D. Bad rows are episode properties too (`fault`), so a broken
episode stays broken in every delivery, as it would in the register.

SARI admissions (care level 1, emergency, J09-J22 or U071) get positive lab results for the same
person from 14 days before to 3 days after admission (a few just outside that window).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from stat19.synth import draw, faults, rates, render, timeutil
from stat19.synth.lab import push_results
from stat19.synth.outbox import lags
from stat19.synth.population import NEVER
from stat19.synth.reference import geography
from stat19.synth.world import World

TRUSTS = sorted({name for options in rates.HEALTH_TRUSTS.values() for name, _ in options})
TRUST_TYPE = pl.Enum(TRUSTS)
SARI_CODES = np.array([c for c, _, _ in rates.SARI_DIAGNOSES])
SARI_HINT = {c: h for c, _, h in rates.SARI_DIAGNOSES}
LAB_RESPIRATORY = ("sars-cov-2", "influensa-a", "influensa-b", "rsv")
FAULT_KINDS = faults.applicable_kinds("npr")

SCHEMA = {
    "episode_no": pl.Int64, "episode_id": pl.Utf8, "fnr": pl.Utf8, "health_trust": TRUST_TYPE, "admission": pl.Int32,
    "admission_date": pl.Utf8, "discharge_date": pl.Utf8, "discharge_known": pl.Int32, "care_level": pl.Utf8,
    "main_dx": pl.Utf8, "corrected_dx": pl.Utf8, "corrected_on": pl.Int32, "secondary": pl.Utf8,
    "icu": pl.Utf8, "emergency": pl.Utf8, "known_from": pl.Int32, "deleted_on": pl.Int32, "fault": pl.Int8,
}


def _trusts_for(rng: np.random.Generator, kommune: np.ndarray) -> np.ndarray:
    """Index (into TRUSTS) of a health trust of the patient's home fylke."""
    fylke = geography().fylke_of[kommune]
    out = np.zeros(kommune.size, dtype=np.int64)
    for f, options in rates.HEALTH_TRUSTS.items():
        rows = np.flatnonzero(fylke == f)
        names = [TRUSTS.index(name) for name, _ in options]
        out[rows] = np.asarray(names)[draw.categorical_index(rng, options, rows.size)]
    return out


def _secondary(rng: np.random.Generator, n: int) -> pl.Series:
    """0-3 distinct secondary ICD-10 codes joined by '|' (null when none)."""
    table = rates.SECONDARY_DIAGNOSES
    count = draw.from_distribution(rng, ([c for c, _ in rates.NPR_SECONDARY_COUNT], [p for _, p in rates.NPR_SECONDARY_COUNT]), n)
    picks = [draw.categorical_index(rng, table, n) for _ in range(3)]
    used = [count > 0, (count > 1) & (picks[1] != picks[0]), (count > 2) & (picks[2] != picks[0]) & (picks[2] != picks[1])]
    codes = pl.Series([c for c, _ in table], dtype=pl.Utf8)
    frame = pl.DataFrame({f"c{i}": codes.gather(p) for i, p in enumerate(picks)})
    frame = frame.with_columns(pl.when(pl.Series(u)).then(pl.col(f"c{i}")).alias(f"c{i}") for i, u in enumerate(used))
    joined = pl.concat_str("c0", "c1", "c2", separator="|", ignore_nulls=True)
    return frame.select(pl.when(joined != "").then(joined).alias("secondary")).to_series()


class NprRegister:
    def __init__(self, world: World) -> None:
        self.world = world
        self.table = pl.DataFrame(schema=SCHEMA)
        self._days_since_rechunk = 0

    # ----------------------------------------------------------------------- new episodes

    def _draw_groups(self, rng: np.random.Generator, day: int, population_day: int):
        """(persons, care level, emergency, is_sari, diagnosis) of the episodes admitted on `day`."""
        world = self.world
        pop = world.pop
        base = world.per_day(rates.NPR_EPISODES_PER_YEAR) * timeutil.weekday_factor("hospital", day)
        share = dict(rates.NPR_CARE_LEVEL_SHARE)
        inpatient_emergency = base * share["1"] * rates.NPR_EMERGENCY_SHARE["1"]
        groups = [  # (expected, profile, care level, emergency share, SARI?, diagnosis table)
            (inpatient_emergency * rates.NPR_SARI_SHARE * timeutil.season_factor("respiratory", day), "sari", "1", 1.0, True, None),
            (inpatient_emergency * (1 - rates.NPR_SARI_SHARE), "inpatient", "1", 1.0, False, rates.INPATIENT_DIAGNOSES),
            (base * share["1"] * (1 - rates.NPR_EMERGENCY_SHARE["1"]), "inpatient", "1", 0.0, False, rates.INPATIENT_DIAGNOSES),
            (base * share["2"], "outpatient", "2", rates.NPR_EMERGENCY_SHARE["2"], False, rates.OUTPATIENT_DIAGNOSES),
            (base * share["3"], "outpatient", "3", rates.NPR_EMERGENCY_SHARE["3"], False, rates.OUTPATIENT_DIAGNOSES),
        ]
        parts = []
        for expected, profile, level, emergency_share, sari, table in groups:
            n = draw.count(rng, expected)
            pids = pop.sample(rng, n, profile, population_day)
            if sari:
                dx = SARI_CODES[draw.categorical_index(rng, rates.SARI_DIAGNOSES, n)]
            else:
                dx = draw.categorical(rng, table, n)
                # a few respiratory codes outside the SARI definition's care level / emergency
                stray = rng.random(n) < 0.01
                dx[stray] = SARI_CODES[draw.categorical_index(rng, rates.SARI_DIAGNOSES, int(stray.sum()))]
            parts.append((pids, np.full(n, level), rng.random(n) < emergency_share, np.full(n, sari), dx.astype(object)))
        return [np.concatenate(column) for column in zip(*parts)]

    def admit(self, day: int, population_day: int | None = None) -> None:
        """Episodes admitted on `day` join the year's table (last year's are frozen and dropped).
        Patients are drawn from the population as it stands on `population_day` (default: `day`)."""
        population_day = day if population_day is None else population_day
        world = self.world
        rng = world.rng("npr", day)
        pop = world.pop
        year_start = timeutil.day_number(dt.date(timeutil.to_date(day).year, 1, 1))
        if self.table.height and self.table["admission"].min() < year_start:
            self.table = self.table.filter(pl.col("admission") >= year_start)

        pids, level, emergency, sari, dx = self._draw_groups(rng, day, population_day)
        n = pids.size
        if not n:
            return
        inpatient = level == "1"
        icu = inpatient & (rng.random(n) < np.where(sari, rates.NPR_SARI_ICU_SHARE, rates.NPR_ICU_SHARE))
        stay = np.where(inpatient, rng.geometric(1 / rates.NPR_LENGTH_OF_STAY_MEAN, n) + 3 * icu, 0)
        discharge = (day + stay).astype(np.int32)

        # identity: residents as other registers see them; some patients without a Norwegian id
        ids = pop.record_ids(rng, pids)
        trust = _trusts_for(rng, pop.kommune[pids])
        foreign = rng.random(n) < rates.NPR_FOREIGN_SHARE
        if foreign.any() and world.foreign is not None and world.foreign.size:
            ids[foreign] = world.foreign.id[rng.integers(0, world.foreign.size, int(foreign.sum()))]
            trust[foreign] = rng.integers(0, len(TRUSTS), int(foreign.sum()))

        corrected = rng.random(n) < rates.NPR_CORRECTION_SHARE
        corrected_dx = draw.map_values(dx, rates.DIAGNOSIS_CORRECTIONS, "R69")
        known_from = day + lags(rng, "npr", n)
        deleted = rng.random(n) < rates.NPR_DELETE_SHARE
        fault = np.floor(rng.random(n) / max(world.error_rate, 1e-12)).astype(np.int64)
        fault = np.where(fault < len(FAULT_KINDS), fault + 1, 0).astype(np.int8)

        new = pl.DataFrame({
            "episode_no": world.new_ids("episode", n),
            "fnr": ids,
            "health_trust": pl.Series(TRUSTS, dtype=pl.Utf8).gather(trust).cast(TRUST_TYPE),
            "admission": np.full(n, day, dtype=np.int32),
            "admission_date": pl.repeat(timeutil.iso(day), n, eager=True),
            "discharge_date": pl.Series(discharge, dtype=pl.Int32),
            "discharge_known": discharge + lags(rng, "npr_discharge", n),
            "care_level": level.astype(str),
            "main_dx": dx.astype(str),
            "corrected_dx": render.strings(corrected_dx, corrected),
            "corrected_on": np.where(corrected, day + rng.integers(1, 21, n), NEVER).astype(np.int32),
            "secondary": _secondary(rng, n),
            "icu": pl.Series(icu.astype(np.int8)).cast(pl.Utf8),
            "emergency": pl.Series(emergency.astype(np.int8)).cast(pl.Utf8),
            "known_from": known_from,
            "deleted_on": np.where(deleted, known_from + rng.integers(1, 31, n), NEVER).astype(np.int32),
            "fault": fault,
        }).with_columns(
            pl.concat_str(pl.lit("E"), pl.col("episode_no").cast(pl.Utf8).str.zfill(11)).alias("episode_id"),
            pl.when(pl.col("fnr") > 0).then(pl.col("fnr").cast(pl.Utf8).str.zfill(11)).alias("fnr"),
            pl.col("discharge_date").cast(pl.Date).cast(pl.Utf8),
        ).select(pl.col(name).cast(dtype) for name, dtype in SCHEMA.items())
        self.table = pl.concat([self.table, new], how="vertical", rechunk=False)
        self._days_since_rechunk += 1
        if self._days_since_rechunk >= 30:
            self.table = self.table.rechunk()
            self._days_since_rechunk = 0

        self._test_sari_patients(rng, day, pids[sari & ~foreign], dx[sari & ~foreign], population_day)

    def _test_sari_patients(self, rng: np.random.Generator, day: int, pids: np.ndarray, dx: np.ndarray,
                            population_day: int) -> None:
        """Positive tests around admission: the code's pathogen, else one by season (RSV for the young)."""
        n = pids.size
        confirmed = rng.random(n) < rates.SARI_LAB_CONFIRMED_SHARE
        pids, dx = pids[confirmed], dx[confirmed]
        n = pids.size
        if not n:
            return
        season = np.array([timeutil.season_factor(k, day) for k in ("covid19", "influenza", "influenza", "rsv")])
        weights = np.tile(season * np.array([1.0, 1.0, 0.25, 0.8]), (n, 1))
        weights[:, 3] *= np.where(self.world.pop.ages(population_day)[pids] < 5, 6.0, 1.0)
        cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
        seasonal = np.array(LAB_RESPIRATORY)[(rng.random((n, 1)) > cumulative).sum(axis=1).clip(0, 3)]
        hint = draw.map_values(dx, SARI_HINT, "").astype(str)
        pathogen = np.where(hint != "", hint, seasonal)
        # a second, different pathogen for a few ("multiple" in the products)
        second = rng.random(n) < rates.SARI_LAB_MULTIPLE_SHARE
        position = draw.map_values(pathogen, {p: i for i, p in enumerate(LAB_RESPIRATORY)}).astype(np.int64)
        other = np.array(LAB_RESPIRATORY)[(position + rng.integers(1, 4, n)) % 4]
        pids = np.concatenate([pids, pids[second]])
        pathogen = np.concatenate([pathogen, other[second]])
        offset = draw.from_distribution(rng, rates.SARI_LAB_OFFSETS, pids.size).astype(np.int32)
        push_results(self.world, rng, pids, pathogen, day + offset, np.full(pids.size, "positive"))

    def backfill(self, first_day: int, until: int) -> None:
        """Episodes from 1 January up to the simulation's first day (the first delivery is
        cumulative), with patients drawn from the population as it stands at the start."""
        for day in range(first_day, until):
            self.admit(day, population_day=until)

    # ----------------------------------------------------------------------- deliveries

    def snapshot(self, day: int) -> tuple[pl.DataFrame, dict[str, np.ndarray], np.ndarray]:
        """The cumulative delivery of `day`, the rows that carry injected faults, and per row the
        episode number (so that an episode's damage is the same in every delivery)."""
        year_start = timeutil.day_number(dt.date(timeutil.to_date(day).year, 1, 1))
        visible = self.table.filter(
            (pl.col("admission") >= year_start) & (pl.col("known_from") <= day) & (pl.col("deleted_on") > day)
        )
        out = visible.select(
            "episode_id", "fnr", "health_trust", "admission_date",
            pl.when(pl.col("discharge_known") <= day).then(pl.col("discharge_date")).alias("discharge_date"),
            "care_level",
            pl.when(pl.col("corrected_on") <= day).then(pl.col("corrected_dx")).otherwise(pl.col("main_dx"))
            .alias("main_diagnosis"),
            pl.col("secondary").alias("secondary_diagnoses"),
            "icu", "emergency",
        )
        fault = visible["fault"].to_numpy()
        chosen = {kind: np.flatnonzero(fault == i + 1) for i, kind in enumerate(FAULT_KINDS)}
        # an identifier fault needs an identifier to break
        chosen["invalid_identifier"] = chosen["invalid_identifier"][out["fnr"].is_not_null().to_numpy()[chosen["invalid_identifier"]]]
        return out, chosen, visible["episode_no"].to_numpy()
