"""Pregnancies planned ahead, births (freg + MFR) and the children they add to the population.

Pregnancies are planned at the start for every birth up to BIRTH_PLAN_AHEAD_DAYS after the period,
so women who give birth during the period were already pregnant (and could be vaccinated against
pertussis) before it, and women pregnant at the end are vaccinated during it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import draw, rates, render
from stat19.synth.outbox import lags
from stat19.synth.population import BOSATT, FNR
from stat19.synth.reference import registered_codes
from stat19.synth.world import World


def plan_births(world: World) -> pl.DataFrame:
    """One row per maternity: mother, birth day, gestational age, plurality, pertussis dose day."""
    rng = world.rng("births", 0)
    pop = world.pop
    first, last = world.first_sim_day, world.end_day + rates.BIRTH_PLAN_AHEAD_DAYS
    days = np.arange(first, last + 1, dtype=np.int32)
    per_day = world.per_day(rates.BIRTHS_PER_YEAR) / (1 + rates.TWIN_SHARE)
    birth_day = np.repeat(days, rng.poisson(per_day, days.size))

    ages = pop.ages(first)
    eligible = (pop.sex == 1) & (pop.status == BOSATT) & (ages >= 16) & (ages <= 46)
    weights = np.exp(-0.5 * ((ages - rates.MOTHER_AGE_MEAN + 0.5) / rates.MOTHER_AGE_SD) ** 2)
    mothers = rng.permutation(draw.weighted_without_replacement(rng, eligible, weights, birth_day.size))
    birth_day = birth_day[: mothers.size]
    m = mothers.size

    plurality = np.where(rng.random(m) < rates.TWIN_SHARE, 2, 1).astype(np.int8)
    term = np.round(rng.normal(rates.GESTATION_MEAN, rates.GESTATION_SD, m)).clip(259, 300)
    preterm = rng.integers(170, 259, m)
    ga = np.where(rng.random(m) < rates.PRETERM_SHARE * plurality ** 3, preterm, term).astype(np.int32)
    pregnancy_start = birth_day - ga

    # Pertussis vaccine in the 2nd-3rd trimester (weeks 16-36), a few given before the pregnancy.
    vaccinated = rng.random(m) < rates.PREGNANCY_PERTUSSIS_UPTAKE
    latest = np.minimum(36 * 7, ga - 3)
    in_window = pregnancy_start + rng.integers(16 * 7, np.maximum(latest, 16 * 7 + 1))
    early = pregnancy_start - rng.integers(5, 60, m)
    dose_day = np.where(rng.random(m) < rates.PREGNANCY_EARLY_DOSE_SHARE, early, in_window)
    dose_day = np.where(vaccinated, dose_day, -1).astype(np.int32)

    pop.expecting[mothers] = True
    return pl.DataFrame({"mother": mothers, "birth_day": birth_day, "ga": ga, "plurality": plurality,
                         "pertussis_day": dose_day}).sort("birth_day", maintain_order=True)


def simulate_day(world: World, plan: pl.DataFrame, day: int) -> np.ndarray:
    """Births of `day`: children join the population, freg and MFR rows are queued.
    Returns the pids of the live-born children (for their vaccination programme)."""
    today = plan.filter(pl.col("birth_day") == day)
    if not today.height:
        return np.empty(0, dtype=np.int64)
    rng = world.rng("births", day)
    pop = world.pop
    # one row per child
    children = today.select(pl.all().repeat_by("plurality").explode())
    n = children.height
    mothers = children["mother"].to_numpy()
    ga = children["ga"].to_numpy()
    plurality = children["plurality"].to_numpy().astype(np.int32)
    stillborn = rng.random(n) < rates.STILLBIRTH_SHARE * np.where(ga < 259, 4, 1)
    sex = (rng.random(n) >= rates.MALE_SHARE_AT_BIRTH).astype(np.int8)
    weight = rng.normal(3500 + 25 * (ga - 280) - 700 * (plurality - 1) - 600 * stillborn, 450)
    weight = np.round(weight.clip(300, 6000)).astype(np.int32)

    live = np.flatnonzero(~stillborn)
    birth = np.full(live.size, day, dtype=np.int32)
    child_ids = world.registry.issue(rng, birth, sex[live], "fnr")
    kids = pop.add(id=child_ids, kind=FNR, birth=birth, sex=sex[live], kommune=pop.kommune[mothers[live]],
                   kcode=pop.kcode[mothers[live]], status=BOSATT, last_change=day)
    pop.expecting[mothers] = False

    freg_lag = day + lags(rng, "freg", live.size)
    world.push("freg", pl.DataFrame({
        "fnr": child_ids, "birth": birth, "sex": sex[live], "kcode": pop.kcode[kids], "status": np.int8(BOSATT),
        "status_date": birth, "deliver_on": freg_lag,
    }))
    child = np.zeros(n, dtype=np.int64)
    child[live] = child_ids
    # one report per maternity: twins arrive together
    report_day = np.repeat(day + lags(rng, "mfr", today.height), today["plurality"].to_numpy())
    world.push("mfr", pl.DataFrame({
        "birth_id": world.new_ids("birth", n), "mother": pop.record_ids(rng, mothers), "child": child,
        "bdate": np.full(n, day, dtype=np.int32), "ga": ga, "weight": weight, "plurality": plurality,
        "stillborn": stillborn.astype(np.int8), "kcode": registered_codes(rng, pop.kommune[mothers]),
        "deliver_on": report_day,
    }))
    return kids


def render_mfr(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.record_id("birth_id", "B").alias("birth_id"),
        render.person_id("mother").alias("mother_fnr"),
        render.person_id("child").alias("child_fnr"),
        render.iso_date("bdate").alias("birth_date"),
        pl.col("ga").cast(pl.Utf8).alias("gestational_age_days"),
        pl.col("weight").cast(pl.Utf8).alias("birth_weight_g"),
        pl.col("plurality").cast(pl.Utf8).alias("plurality"),
        pl.col("stillborn").cast(pl.Utf8).alias("stillborn"),
        render.kommune_code("kcode").alias("mother_kommune_nr"),
    )
