"""msis_lab (every test result) and msis (notified cases, with later versions and retractions)."""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import draw, rates, render, timeutil
from stat19.synth.outbox import lags
from stat19.synth.reference import registered_codes
from stat19.synth.world import World


def push_results(world: World, rng: np.random.Generator, pids: np.ndarray, pathogen: np.ndarray,
                 sampling: np.ndarray, result: np.ndarray) -> None:
    """Queue lab results (also used by npr.py for the tests of SARI patients)."""
    n = pids.size
    fnr = np.where(rng.random(n) < rates.LAB_EMPTY_FNR_SHARE, 0, world.pop.record_ids(rng, pids))
    world.push("msis_lab", pl.DataFrame({
        "lab_result_id": world.new_ids("lab_result", n),
        "fnr": fnr,
        "lab": rng.integers(1, rates.LAB_COUNT + 1, n).astype(np.int16),
        "pathogen": pathogen.astype(str),
        "method": draw.categorical(rng, rates.LAB_METHODS, n),
        "sampling": sampling.astype(np.int32),
        "result": result.astype(str),
        "kcode": registered_codes(rng, world.pop.kommune[pids]),
        "deliver_on": sampling + lags(rng, "msis_lab", n),
    }, schema_overrides={"pathogen": pl.Utf8, "result": pl.Utf8, "method": pl.Utf8}))


def simulate_lab_day(world: World, day: int) -> None:
    """Tests sampled on `day`: volumes follow the respiratory season, positivity each pathogen's."""
    rng = world.rng("msis_lab", day)
    tests = world.per_day(rates.LAB_TESTS_PER_YEAR) * timeutil.weekday_factor("lab", day)
    for pathogen, (share, positivity, season) in rates.LAB_PATHOGENS.items():
        volume = timeutil.season_factor("respiratory", day) if pathogen != "pertussis" else 1.0
        n = draw.count(rng, tests * share * volume)
        pids = world.pop.sample(rng, n, "lab_test", day)
        p_positive = positivity * timeutil.season_factor(season, day)
        u = rng.random(n)
        result = np.where(u < p_positive, "positive",
                          np.where(u < p_positive + rates.LAB_INCONCLUSIVE_SHARE, "inconclusive", "negative"))
        push_results(world, rng, pids, np.full(n, pathogen), np.full(n, day, dtype=np.int32), result)


def simulate_msis_day(world: World, day: int) -> None:
    """Cases sampled on `day`, notified after diagnosis; some updated or retracted later."""
    rng = world.rng("msis", day)
    pop = world.pop
    names = list(rates.MSIS_DISEASES)
    kinds, pids = [], []
    for i, (per_year, season, profile, _) in enumerate(rates.MSIS_DISEASES.values()):
        n = draw.count(rng, world.per_day(per_year) * timeutil.season_factor(season, day))
        pids.append(pop.sample(rng, n, profile, day))
        kinds.append(np.full(n, i))
    pids, kind = np.concatenate(pids), np.concatenate(kinds)
    n = pids.size
    if not n:
        return
    disease = np.array(names)[kind]
    abroad_share = np.array([v[3] for v in rates.MSIS_DISEASES.values()])[kind]
    diagnosis = day + draw.from_distribution(rng, rates.MSIS_DIAGNOSIS_DELAY, n).astype(np.int32)
    notification = diagnosis + draw.from_distribution(rng, rates.MSIS_NOTIFICATION_DELAY, n).astype(np.int32)
    sampling = pl.Series(np.full(n, day, dtype=np.int32)).scatter(
        np.flatnonzero(rng.random(n) < rates.MSIS_SAMPLING_EMPTY_SHARE), None)
    first = pl.DataFrame({
        "msis_id": world.new_ids("msis", n), "fnr": pop.record_ids(rng, pids), "disease": disease,
        "sampling": sampling, "diagnosis": diagnosis, "notification": notification,
        "kcode": registered_codes(rng, pop.kommune[pids]), "abroad": rng.random(n) < abroad_share,
        "status": np.full(n, "active"), "seconds": rng.integers(6 * 3600, 14 * 3600, n),
        "deliver_on": notification + lags(rng, "msis", n),
    })
    world.push("msis", first)

    # later versions: a corrected field (sampling date found, infected abroad, kommune), or retracted
    u = rng.random(n)
    same_day = rng.random(n) < rates.MSIS_SAME_DAY_UPDATE_SHARE / rates.MSIS_UPDATE_SHARE
    update_day = first["deliver_on"].to_numpy() + np.where(same_day, 0, rng.integers(1, 15, n))
    updated = first.with_columns(
        sampling=pl.col("sampling").fill_null(pl.col("diagnosis") - 1),
        abroad=pl.Series(np.where(rng.random(n) < 0.3, ~first["abroad"].to_numpy(), first["abroad"].to_numpy())),
        seconds=pl.Series(rng.integers(14 * 3600, 22 * 3600, n)),
        deliver_on=pl.Series(update_day, dtype=pl.Int32),
    ).filter(pl.Series(u < rates.MSIS_UPDATE_SHARE))
    retracted = first.with_columns(
        status=pl.lit("retracted"),
        deliver_on=pl.Series(first["deliver_on"].to_numpy() + rng.integers(2, 21, n), dtype=pl.Int32),
    ).filter(pl.Series(u >= 1 - rates.MSIS_RETRACT_SHARE))
    world.push("msis", updated)
    world.push("msis", retracted)


def render_msis(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.sort("deliver_on", "seconds", maintain_order=True)
    return frame.select(
        render.record_id("msis_id", "M", 9).alias("msis_id"),
        render.person_id("fnr").alias("fnr"),
        pl.col("disease"),
        render.iso_date("sampling").alias("sampling_date"),
        render.iso_date("diagnosis").alias("diagnosis_date"),
        render.iso_date("notification").alias("notification_date"),
        render.kommune_code("kcode").alias("kommune_nr"),
        pl.col("abroad").alias("infected_abroad"),
        pl.col("status"),
        timeutil.timestamps(frame["deliver_on"].to_numpy(), frame["seconds"].to_numpy()).alias("updated_at"),
    )


def render_msis_lab(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.record_id("lab_result_id", "L", 12).alias("lab_result_id"),
        render.person_id("fnr").alias("fnr"),
        pl.concat_str(pl.lit("LAB"), pl.col("lab").cast(pl.Utf8).str.zfill(2)).alias("lab_id"),
        pl.col("pathogen"),
        pl.col("method"),
        render.iso_date("sampling").alias("sampling_date"),
        pl.col("result"),
        render.kommune_code("kcode").alias("kommune_nr"),
    )
