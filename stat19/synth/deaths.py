"""Deaths: freg `doed` rows and DÅR records (often first with cause R99, coded days later)."""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import draw, rates, render, timeutil
from stat19.synth.freg import annual_mortality, person_rows
from stat19.synth.outbox import lags
from stat19.synth.population import BOSATT, DOED, MAX_AGE
from stat19.synth.reference import registered_codes
from stat19.synth.world import World

UNKNOWN_CAUSE = "R99"


def simulate_day(world: World, day: int) -> None:
    rng = world.rng("deaths", day)
    pop = world.pop
    at_risk = (pop.status == BOSATT) & pop.alive_on(day) & (pop.last_change < day) & ~pop.expecting
    by_age = annual_mortality(np.arange(MAX_AGE + 1)) * world.mortality_factor / 365.25
    hazard = by_age[pop.ages(day)] * timeutil.season_factor("mortality", day)
    pids = np.flatnonzero(at_risk & (rng.random(pop.size) < hazard))
    if not pids.size:
        return
    pop.status[pids] = DOED
    pop.left[pids] = day
    pop.last_change[pids] = day
    world.push("freg", person_rows(world, pids, day).with_columns(
        deliver_on=pl.Series(day + lags(rng, "freg", pids.size), dtype=pl.Int32)))

    n = pids.size
    death_ids = world.new_ids("death", n)
    fnr = pop.record_ids(rng, pids)
    place = draw.categorical(rng, rates.PLACE_OF_DEATH, n)
    kcode = registered_codes(rng, pop.kommune[pids])
    cause = draw.categorical(rng, rates.DEATH_CAUSES, n)
    reported = day + lags(rng, "daar", n)
    late = rng.random(n) < rates.DEATH_CAUSE_LATE_SHARE
    first = pl.DataFrame({
        "death_id": death_ids, "fnr": fnr, "death_date": np.full(n, day, dtype=np.int32),
        "cause": np.where(late, UNKNOWN_CAUSE, cause), "place": place, "kcode": kcode,
        "seconds": rng.integers(6 * 3600, 14 * 3600, n), "deliver_on": reported,
    })
    world.push("daar", first)
    # the coded cause follows as a newer version: days later, or the same day (a later timestamp)
    same_day = rng.random(n) < rates.DEATH_SAME_DAY_UPDATE_SHARE
    update_day = np.where(same_day, reported, reported + rng.integers(*rates.DEATH_CAUSE_DELAY, n))
    update = first.with_columns(
        cause=pl.Series(cause), seconds=pl.Series(rng.integers(14 * 3600, 22 * 3600, n)),
        deliver_on=pl.Series(update_day, dtype=pl.Int32),
    ).filter(pl.Series(late))
    world.push("daar", update)


def render_daar(frame: pl.DataFrame) -> pl.DataFrame:
    frame = frame.sort("deliver_on", "seconds", maintain_order=True)
    return frame.select(
        render.record_id("death_id", "D", 9).alias("death_id"),
        render.person_id("fnr").alias("fnr"),
        render.iso_date("death_date").alias("death_date"),
        pl.col("cause").alias("underlying_cause"),
        pl.col("place").alias("place_of_death"),
        render.kommune_code("kcode").alias("kommune_nr"),
        timeutil.timestamps(frame["deliver_on"].to_numpy(), frame["seconds"].to_numpy()).alias("updated_at"),
    )
