"""KPR claims (fastlege, legevakt, nettlege) and LMR dispensings.

Respiratory contacts (ICPC-2 chapter R) follow the respiratory season; a share of them, by code,
are followed 0-3 days later by a J01 antibiotic dispensed to the same person (a few 4-6 days
later, outside the products' window). Other dispensings are drawn by age.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import draw, rates, render, timeutil
from stat19.synth.outbox import lags
from stat19.synth.reference import registered_codes
from stat19.synth.world import World

RESP_CODES = np.array([c for c, _, _ in rates.RESPIRATORY_ICPC2])
RESP_ABX = np.array([p for _, _, p in rates.RESPIRATORY_ICPC2])
OTHER_CODES = np.array([c for c, _, _ in rates.OTHER_ICPC2])
OTHER_ABX = np.array([p for _, _, p in rates.OTHER_ICPC2])
ALL_CODES = (*rates.RESPIRATORY_ICPC2, *rates.OTHER_ICPC2)


def _claims_of(world: World, rng: np.random.Generator, day: int, ptype: str, share: float) -> pl.DataFrame:
    pop = world.pop
    expected = world.per_day(rates.KPR_CLAIMS_PER_YEAR) * share * timeutil.weekday_factor(ptype, day)
    resp_share = rates.KPR_RESPIRATORY_SHARE[ptype]
    n_resp = draw.count(rng, expected * resp_share * timeutil.season_factor("respiratory", day))
    n_other = draw.count(rng, expected * (1 - resp_share))
    pids = np.concatenate([pop.sample(rng, n_resp, "respiratory", day), pop.sample(rng, n_other, "primary_care", day)])
    resp_pick = draw.categorical_index(rng, rates.RESPIRATORY_ICPC2, n_resp)
    other_pick = draw.categorical_index(rng, rates.OTHER_ICPC2, n_other)
    n = pids.size
    second = render.strings(draw.categorical(rng, ALL_CODES, n), rng.random(n) < rates.KPR_EXTRA_CODE_SHARE)
    mode = draw.categorical(rng, rates.KPR_CONTACT_MODE[ptype], n)
    return pl.DataFrame({
        "pid": pids,
        "ptype": np.full(n, ptype),
        "mode": mode,
        "code": np.concatenate([RESP_CODES[resp_pick], OTHER_CODES[other_pick]]),
        "second": second,
        "abx_chance": np.concatenate([RESP_ABX[resp_pick], OTHER_ABX[other_pick]]),
    })


def _takst(rng: np.random.Generator, mode: np.ndarray) -> pl.Series:
    """Tariff codes per claim: the mode's first code, sometimes the next one too."""
    first = np.full(mode.size, "", dtype=object)
    extra = np.full(mode.size, "", dtype=object)
    for m, codes in rates.KPR_TAKST.items():
        rows = mode == m
        first[rows] = codes[0]
        if len(codes) > 1:
            extra[rows] = np.array(codes[1:])[rng.integers(0, len(codes) - 1, int(rows.sum()))]
    more = (rng.random(mode.size) < 0.35) & (extra != "")
    frame = pl.DataFrame({"a": render.strings(first), "b": render.strings(extra, more)})
    return frame.select(pl.concat_list("a", "b").list.drop_nulls().alias("takst")).to_series()


def simulate_kpr_day(world: World, day: int) -> None:
    rng = world.rng("kpr", day)
    pop = world.pop
    claims = pl.concat([_claims_of(world, rng, day, p, s) for p, s in rates.KPR_PRACTITIONER], how="vertical")
    pids = claims["pid"].to_numpy()
    n = claims.height
    world.push("kpr", pl.DataFrame({
        "claim_id": world.new_ids("claim", n),
        "fnr": pop.record_ids(rng, pids),
        "contact": np.full(n, day, dtype=np.int32),
        "ptype": claims["ptype"],
        "mode": claims["mode"],
        "icpc2": claims.select(pl.concat_list("code", "second").list.drop_nulls()).to_series(),
        "takst": _takst(rng, claims["mode"].to_numpy()),
        "kcode": registered_codes(rng, pop.kommune[pids]),
        "deliver_on": day + lags(rng, "kpr", n),
    }))

    # antibiotics after the contact, for the same person
    treated = claims.filter(pl.Series(rng.random(n) < claims["abx_chance"].to_numpy()))
    k = treated.height
    atc = draw.categorical(rng, rates.J01_DEFAULT, k)
    codes = treated["code"].to_numpy()
    for code, table in rates.J01_BY_ICPC2.items():
        rows = codes == code
        atc[rows] = draw.categorical(rng, table, int(rows.sum()))
    dispense = day + draw.from_distribution(rng, rates.ANTIBIOTIC_DAYS_AFTER, k).astype(np.int32)
    _push_dispensings(world, rng, treated["pid"].to_numpy(), dispense, atc, treated["ptype"].to_numpy())


def _push_dispensings(world: World, rng: np.random.Generator, pids: np.ndarray, dispense: np.ndarray,
                      atc: np.ndarray, prescriber: np.ndarray) -> None:
    n = pids.size
    packages = draw.categorical(rng, rates.LMR_PACKAGES, n).astype(float)
    per_package = {**rates.J01_DDD_PER_PACKAGE, **{a: d for a, _, d in rates.OTHER_ATC}}
    ddd = draw.map_values(atc, per_package).astype(float)
    world.push("lmr", pl.DataFrame({
        "dispensing_id": world.new_ids("dispensing", n),
        "fnr": world.pop.record_ids(rng, pids),
        "ddate": dispense.astype(np.int32),
        "atc": atc.astype(str),
        "ddd": np.round(ddd * packages, 2),
        "prescriber": prescriber.astype(str),
        "kcode": registered_codes(rng, world.pop.kommune[pids]),
        "deliver_on": dispense + lags(rng, "lmr", n),
    }, schema_overrides={"atc": pl.Utf8, "prescriber": pl.Utf8}))


def simulate_lmr_day(world: World, day: int) -> None:
    """Dispensings not tied to a claim: chronic medication and other J01 (dentists, hospitals)."""
    rng = world.rng("lmr", day)
    pop = world.pop
    pharmacy = timeutil.weekday_factor("pharmacy", day)
    n_other = draw.count(rng, world.per_day(rates.LMR_DISPENSINGS_PER_YEAR * 0.95) * pharmacy)
    n_j01 = draw.count(rng, world.per_day(rates.LMR_BACKGROUND_J01_PER_YEAR) * pharmacy
                       * timeutil.season_factor("respiratory", day))
    pids = np.concatenate([pop.sample(rng, n_other, "dispensing", day), pop.sample(rng, n_j01, "antibiotic", day)])
    atc = np.concatenate([draw.categorical(rng, rates.OTHER_ATC, n_other), draw.categorical(rng, rates.J01_DEFAULT, n_j01)])
    prescriber = draw.categorical(rng, rates.LMR_PRESCRIBER, pids.size)
    _push_dispensings(world, rng, pids, np.full(pids.size, day, dtype=np.int32), atc, prescriber)


def render_kpr(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.record_id("claim_id", "K", 12).alias("claim_id"),
        render.person_id("fnr").alias("fnr"),
        render.as_date("contact").alias("contact_date"),
        pl.col("ptype").alias("practitioner_type"),
        pl.col("mode").alias("contact_mode"),
        pl.col("icpc2"),
        pl.col("takst"),
        render.kommune_code("kcode").alias("kommune_nr"),
    )


def render_lmr(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.record_id("dispensing_id", "R", 12).alias("dispensing_id"),
        render.person_id("fnr").alias("fnr"),
        render.as_date("ddate").alias("dispense_date"),
        pl.col("atc").alias("atc_code"),
        pl.col("ddd"),
        pl.col("prescriber").alias("prescriber_type"),
        render.kommune_code("kcode").alias("kommune_nr"),
    )
