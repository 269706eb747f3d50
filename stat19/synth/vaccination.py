"""SYSVAK: vaccinations planned per person, delivered when registered, and some deleted later.

Doses are planned at the start (seasonal influenza, covid19 and pneumococcal campaigns from
1 October, the childhood programme, pertussis in pregnancy) and for each newborn at birth. The
first delivery also carries the history the products need: every dose since the start of the
current vaccination season (1 September) and the pregnancy doses of women giving birth in the
period, with their original registration timestamps.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from stat19.synth import draw, rates, render, timeutil
from stat19.synth.outbox import lags
from stat19.synth.population import BOSATT
from stat19.synth.reference import registered_codes
from stat19.synth.world import World

PLAN_COLUMNS = ("pid", "vaccine_code", "dose", "vdate")
UNKNOWN_ID_BASE = 900_000_000_000  # vaccination ids never delivered (for deletes of unknown ids)


def season_start(day: int) -> int:
    """1 September on or before `day` (domain.md: seasons start 1 September)."""
    d = timeutil.to_date(day)
    month, first = rates.SEASON_START
    year = d.year if (d.month, d.day) >= (month, first) else d.year - 1
    return timeutil.day_number(dt.date(year, month, first))


def _plan(pids: np.ndarray, codes: np.ndarray, dose: int | np.ndarray, vdate: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"pid": pids.astype(np.int64), "vaccine_code": codes,
                         "dose": np.broadcast_to(np.asarray(dose, dtype=np.int16), pids.shape),
                         "vdate": vdate.astype(np.int32)})


def _campaigns(world: World, rng: np.random.Generator, since: int) -> list[pl.DataFrame]:
    pop = world.pop
    plans = []
    for year in range(timeutil.to_date(since).year, timeutil.to_date(world.end_day).year + 1):
        campaign = timeutil.day_number(dt.date(year, *rates.CAMPAIGN_START))
        if campaign > world.end_day or campaign + 200 < since:
            continue
        ages = pop.ages(campaign)
        resident = (pop.status == BOSATT) & (pop.birth < campaign)
        groups = {
            "65+": resident & (ages >= 65),
            "risk": resident & pop.risk & (ages >= 18) & (ages < 65),
            "other_adult": resident & ~pop.risk & (ages >= 18) & (ages < 65),
            "risk_child": resident & pop.risk & (ages >= 2) & (ages < 18),
        }
        for programme, uptake in (("influenza", rates.INFLUENZA_UPTAKE), ("covid19", rates.COVID_UPTAKE)):
            chance = np.zeros(pop.size)
            for group, share in uptake.items():
                chance[groups[group]] = share
            pids = np.flatnonzero(rng.random(pop.size) < chance)
            vdate = campaign + np.floor(rng.gamma(*rates.CAMPAIGN_GAMMA, pids.size)).clip(0, 180)
            if programme == "influenza":  # the nasal live vaccine (J07BB03) is for children
                code = np.where(ages[pids] < 18, "J07BB03", "J07BB02")
            else:
                code = draw.categorical(rng, rates.COVID_CODES, pids.size)
            plans.append(_plan(pids, code, 1, vdate))
        pids = np.flatnonzero(groups["65+"] & (rng.random(pop.size) < rates.PNEUMOCOCCAL_65_PER_YEAR))
        vdate = campaign + np.floor(rng.gamma(*rates.CAMPAIGN_GAMMA, pids.size)).clip(0, 180)
        plans.append(_plan(pids, draw.categorical(rng, rates.PNEUMOCOCCAL_CODES, pids.size), 1, vdate))
    return plans


def childhood_plan(rng: np.random.Generator, pids: np.ndarray, birth: np.ndarray) -> pl.DataFrame:
    """Doses of the childhood programme for these children (all of it; the caller keeps a window)."""
    plans = []
    for code, age_days, dose in rates.CHILDHOOD_SCHEDULE:
        takes = rng.random(pids.size) < rates.CHILDHOOD_UPTAKE
        delay = np.floor(rng.exponential(rates.CHILDHOOD_DELAY_MEAN, pids.size))
        plans.append(_plan(pids[takes], np.full(int(takes.sum()), code), dose, (birth + age_days + delay)[takes]))
    return pl.concat(plans, how="vertical")


def plan_vaccinations(world: World, births: pl.DataFrame) -> None:
    """Plan every dose from the season start before the period to its end; queue them."""
    rng = world.rng("sysvak", 0)
    pop = world.pop
    since = season_start(world.start_day)
    plans = _campaigns(world, rng, since)
    children = np.flatnonzero((pop.birth > since - 17 * 365) & (pop.status == BOSATT))
    plans.append(childhood_plan(rng, children, pop.birth[children]))
    plans = [p.filter(pl.col("vdate").is_between(since, world.end_day)) for p in plans]
    pregnant = births.filter(pl.col("pertussis_day").is_between(0, world.end_day))
    plans.append(_plan(pregnant["mother"].to_numpy(), np.full(pregnant.height, rates.PREGNANCY_PERTUSSIS_CODE), 1,
                       pregnant["pertussis_day"].to_numpy()))
    queue(world, rng, pl.concat(plans, how="vertical").sort("vdate", maintain_order=True))


def plan_newborns(world: World, day: int, kids: np.ndarray) -> None:
    if kids.size:
        rng = world.rng("sysvak", day)
        plan = childhood_plan(rng, kids, world.pop.birth[kids]).filter(pl.col("vdate") <= world.end_day)
        queue(world, rng, plan)


def queue(world: World, rng: np.random.Generator, plan: pl.DataFrame) -> None:
    registered = plan["vdate"].to_numpy() + lags(rng, "sysvak", plan.height)
    world.push("sysvak", plan.with_columns(
        vaccination_id=pl.lit(0, pl.Int64), fnr=pl.lit(0, pl.Int64), kcode=pl.lit(-1, pl.Int32),
        action=pl.lit("insert"), registered_day=pl.Series(registered, dtype=pl.Int32),
        deliver_on=pl.Series(np.maximum(registered, world.start_day), dtype=pl.Int32),
    ))


def due(world: World, day: int) -> pl.DataFrame:
    """The registrations and deletions delivered on `day` (typed)."""
    rng = world.rng("sysvak", day)
    pop = world.pop
    rows = world.outboxes["sysvak"].pop(day)
    planned = rows.filter(pl.col("pid") >= 0)
    pids = planned["pid"].to_numpy()
    # a planned dose is not given after the person died or emigrated
    given = pop.left[pids] > planned["vdate"].to_numpy()
    planned, pids = planned.filter(pl.Series(given)), pids[given]
    planned = planned.with_columns(
        vaccination_id=pl.Series(world.new_ids("vaccination", planned.height)),
        fnr=pl.Series(pop.record_ids(rng, pids)),
        kcode=pl.Series(registered_codes(rng, pop.kommune[pids]), dtype=pl.Int32),
        pid=pl.lit(-1, pl.Int64),
    ).sort("registered_day", maintain_order=True)
    deletes = rows.filter(pl.col("pid") < 0)

    # some of today's registrations are withdrawn later; a few deletes name ids never delivered
    withdrawn = planned.filter(pl.Series(rng.random(planned.height) < rates.SYSVAK_DELETE_SHARE))
    later = day + rng.integers(1, 15, withdrawn.height)
    world.push("sysvak", withdrawn.with_columns(action=pl.lit("delete"), registered_day=pl.Series(later, dtype=pl.Int32),
                                                deliver_on=pl.Series(later, dtype=pl.Int32)))
    k = draw.count(rng, world.per_day(rates.SYSVAK_UNKNOWN_DELETES_PER_YEAR))
    strangers = pop.sample(rng, k, "everyone", day)
    unknown = pl.DataFrame({
        "vaccination_id": UNKNOWN_ID_BASE + world.new_ids("unknown_vaccination", k), "pid": np.full(k, -1),
        "fnr": pop.record_ids(rng, strangers), "vaccine_code": draw.categorical(rng, rates.INFLUENZA_CODES, k),
        "dose": np.ones(k, dtype=np.int16), "vdate": day - rng.integers(1, 200, k),
        "kcode": registered_codes(rng, pop.kommune[strangers]), "action": np.full(k, "delete"),
        "registered_day": np.full(k, day), "deliver_on": np.full(k, day),
    }, schema=world.outboxes["sysvak"].schema)
    return pl.concat([planned, deletes, unknown], how="vertical")


def render_sysvak(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    seconds = rng.integers(6 * 3600, 22 * 3600, frame.height)
    return frame.select(
        render.record_id("vaccination_id", "V", 12).alias("vaccination_id"),
        render.person_id("fnr").alias("fnr"),
        pl.col("vaccine_code"),
        pl.col("dose").cast(pl.Int64).alias("dose_number"),
        render.iso_date("vdate").alias("vaccination_date"),
        render.kommune_code("kcode").alias("kommune_nr"),
        timeutil.timestamps(frame["registered_day"].to_numpy(), seconds).alias("registered_at"),
        pl.col("action"),
    )
