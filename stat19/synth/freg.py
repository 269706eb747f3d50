"""freg (Folkeregisteret): the population at the start and its daily changes.

The first delivery is the full register: one row per identifier (persons, plus `opphoert` rows of
identifiers that were replaced). Later deliveries hold the rows registered that day: births (from
births.py), deaths (deaths.py), moves, emigration, immigration, new D-numbers, D-number ->
fødselsnummer and corrections (the old identifier gets an `opphoert` row and id_changes a line).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import rates, render
from stat19.synth.outbox import lags
from stat19.synth.population import (
    BOSATT, DNR, DOED, FNR, FORSVUNNET, IKKE_BOSATT, KIND_NAMES, OPPHOERT, STATUS, SYNTHETIC, UTFLYTTET,
    birth_days_for_ages, draw_ages,
)
from stat19.synth.reference import geography, registered_codes
from stat19.synth.world import SCHEMAS, World

YEAR = 365.2425
D_TO_F, CORRECTION = 0, 1
REASONS = ("d_to_f", "correction")


# --------------------------------------------------------------------------- records


def person_rows(world: World, pids: np.ndarray, day: int | np.ndarray, ids: np.ndarray | None = None,
                status: int | np.ndarray | None = None) -> pl.DataFrame:
    pop = world.pop
    n = pids.size
    return pl.DataFrame({
        "fnr": pop.id[pids] if ids is None else ids,
        "birth": pop.birth[pids],
        "sex": pop.sex[pids],
        "kcode": pop.kcode[pids],
        "status": pop.status[pids] if status is None else np.broadcast_to(status, n),
        "status_date": np.broadcast_to(day, n),
    }).cast(SCHEMAS["freg"])


def render_persons(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.person_id("fnr").alias("fnr"),
        render.iso_date("birth").alias("birth_date"),
        render.lookup("sex", ("mann", "kvinne")).alias("kjoenn"),
        render.kommune_code("kcode").alias("kommune_nr"),
        render.lookup("status", STATUS).alias("status"),
        render.iso_date("status_date").alias("status_date"),
    )


def render_changes(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        render.person_id("old_id").alias("old_id"),
        render.person_id("new_id").alias("new_id"),
        render.iso_date("change_date").alias("change_date"),
        render.lookup("reason", REASONS).alias("reason"),
    )


def first_delivery(initial_persons: pl.DataFrame, popped: pl.DataFrame) -> pl.DataFrame:
    """The full register on the first delivery day: the latest known row of every identifier."""
    rows = pl.concat([initial_persons.with_columns(deliver_on=pl.lit(0, pl.Int32)), popped], how="vertical")
    return rows.unique(subset="fnr", keep="last", maintain_order=True).drop("deliver_on")


# --------------------------------------------------------------------------- the population at the start


def _add_people(world: World, rng: np.random.Generator, ages: np.ndarray, on_day: int, kind: int, status: int,
                kommune: np.ndarray | None = None, sex: np.ndarray | None = None,
                unknown_share: float = rates.UNKNOWN_KOMMUNE_SHARE) -> np.ndarray:
    """New persons with these ages on `on_day`; returns their pids (status_date = on_day)."""
    geo = geography()
    n = ages.size
    if kommune is None:
        kommune = rng.choice(geo.n_kommuner, size=n, p=geo.population / geo.population.sum()).astype(np.int32)
    if sex is None:
        sex = (rng.random(n) >= 0.5).astype(np.int8)
    birth = birth_days_for_ages(rng, ages, on_day)
    ids = world.registry.issue(rng, birth, sex, KIND_NAMES[kind])
    return world.pop.add(id=ids, kind=kind, birth=birth, sex=sex, kommune=kommune,
                         kcode=registered_codes(rng, kommune, unknown_share), status=status,
                         last_change=on_day, left=np.int32(2**31 - 1))


def _past_days(rng: np.random.Generator, n: int, day: int, max_years: float, not_before: np.ndarray) -> np.ndarray:
    """Days in the past (up to max_years before `day`), never before `not_before`."""
    past = day - np.floor(rng.random(n) * max_years * YEAR).astype(np.int32) - 1
    return np.maximum(past, not_before).astype(np.int32)


def build_population(world: World) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Draw the population as it stands before the first simulated day.
    Returns the register's rows (persons, id_changes) for the first delivery."""
    rng = world.rng("population", 0)
    geo = geography()
    pop = world.pop
    day = world.first_sim_day - 1
    n = world.persons

    # Residents: SSB's kommune x age x sex table scaled to `persons`.
    cells = geo.cells
    counts = rng.multinomial(n, cells["population"].to_numpy() / cells["population"].sum())
    order = rng.permutation(n)
    kommune = np.repeat(cells["kommune"].to_numpy(), counts)[order]
    ages = np.repeat(cells["age"].to_numpy(), counts)[order]
    sex = np.repeat(cells["sex"].to_numpy(), counts)[order].astype(np.int8)
    adult = (ages >= 18) & (ages < 70)
    kind = np.full(n, FNR, dtype=np.int8)
    kind[rng.choice(np.flatnonzero(adult), size=int(n * rates.DNR_RESIDENT_SHARE), replace=False)] = DNR
    kind[rng.choice(np.flatnonzero(kind == FNR), size=int(n * rates.SYNTHETIC_ID_SHARE), replace=False)] = SYNTHETIC
    birth = birth_days_for_ages(rng, ages, day)
    ids = np.empty(n, dtype=np.int64)
    for k in (FNR, DNR, SYNTHETIC):
        rows = np.flatnonzero(kind == k)
        ids[rows] = world.registry.issue(rng, birth[rows], sex[rows], KIND_NAMES[k])
    settled = _past_days(rng, n, day, 25, birth)  # last move (or birth)
    risk_share = np.where(ages < 18, rates.RISK_GROUP_SHARE_0_17, np.where(ages < 65, rates.RISK_GROUP_SHARE_18_64, 0))
    pop.add(id=ids, kind=kind, birth=birth, sex=sex, kommune=kommune, kcode=registered_codes(rng, kommune),
            status=BOSATT, last_change=settled, risk=rng.random(n) < risk_share)

    # Non-residents and former residents.
    def group(share: float, profile: str, status: int, kind_: int, years: float, unknown: float) -> None:
        k = max(1, int(n * share))
        group_ages = np.maximum(draw_ages(rng, k, profile), 18 if kind_ == DNR else 0)
        pids = _add_people(world, rng, group_ages, day, kind_, status, unknown_share=unknown)
        since = _past_days(rng, k, day, years, pop.birth[pids] + (18 * YEAR if kind_ == DNR else 1))
        pop.last_change[pids] = since
        if status != IKKE_BOSATT:
            pop.left[pids] = since

    group(rates.DNR_NONRESIDENT_SHARE, "migrant", IKKE_BOSATT, DNR, 8, rates.NONRESIDENT_UNKNOWN_KOMMUNE)
    group(rates.HISTORIC_EMIGRATED_SHARE, "migrant", UTFLYTTET, FNR, 10, rates.UNKNOWN_KOMMUNE_SHARE)
    group(rates.HISTORIC_DEAD_SHARE, "elderly", DOED, FNR, 10, rates.UNKNOWN_KOMMUNE_SHARE)
    group(rates.HISTORIC_MISSING_SHARE, "adult", FORSVUNNET, FNR, 10, rates.UNKNOWN_KOMMUNE_SHARE)

    # Identifier changes before the period: D -> F, corrections, and chains A -> B -> C.
    candidates = rng.permutation(np.flatnonzero((pop.kind == FNR) & (pop.status == BOSATT) & (pop.ages(day) >= 20)))
    sizes = [int(n * s) for s in (rates.PAST_D_TO_F_SHARE, rates.PAST_CORRECTION_SHARE, rates.PAST_CHAIN_SHARE)]
    d_to_f, corrected, chained = np.split(candidates[: sum(sizes)], np.cumsum(sizes)[:2])
    retired, changes = [], []

    def change(pids: np.ndarray, old_kind: str, reason: int, when: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
        old = world.registry.issue(rng, pop.birth[pids], pop.sex[pids], old_kind)
        retired.append(person_rows(world, pids, when, ids=old, status=OPPHOERT))
        changes.append(pl.DataFrame({"old_id": old, "new_id": new_ids, "change_date": when,
                                     "reason": np.full(pids.size, reason, dtype=np.int8)}).cast(SCHEMAS["freg_changes"]))
        return old

    for pids, old_kind, reason in ((d_to_f, "dnr", D_TO_F), (corrected, "fnr", CORRECTION)):
        when = _past_days(rng, pids.size, day, 10, pop.birth[pids] + 18 * YEAR)
        pop.old_id[pids] = change(pids, old_kind, reason, when, pop.id[pids])
        pop.last_change[pids] = np.maximum(pop.last_change[pids], when)
    # chain: A (D-number) -> B (wrong fnr) -> C (the current fnr)
    second = _past_days(rng, chained.size, day, 5, pop.birth[chained] + 19 * YEAR)
    first = np.maximum(second - rng.integers(30, 3 * 365, chained.size), pop.birth[chained] + 18 * YEAR).astype(np.int32)
    first = np.minimum(first, second - 1)
    b_ids = world.registry.issue(rng, pop.birth[chained], pop.sex[chained], "fnr")
    change(chained, "dnr", D_TO_F, first, b_ids)
    retired.append(person_rows(world, chained, second, ids=b_ids, status=OPPHOERT))
    changes.append(pl.DataFrame({"old_id": b_ids, "new_id": pop.id[chained], "change_date": second,
                                 "reason": np.full(chained.size, CORRECTION, dtype=np.int8)}).cast(SCHEMAS["freg_changes"]))
    pop.old_id[chained] = b_ids
    pop.last_change[chained] = np.maximum(pop.last_change[chained], second)

    everybody = np.arange(pop.size)
    persons = pl.concat([person_rows(world, everybody, pop.last_change), *retired], how="vertical")
    id_changes = pl.concat(changes, how="vertical").sort("change_date", maintain_order=True)
    return persons, id_changes


def set_mortality(world: World) -> None:
    """Scale the age curve so residents die at the national rate."""
    ages = world.pop.ages(world.first_sim_day)[world.pop.status == BOSATT]
    expected = annual_mortality(ages).sum()
    world.mortality_factor = rates.DEATHS_PER_YEAR * world.scale / max(expected, 1e-9)


def annual_mortality(ages: np.ndarray) -> np.ndarray:
    gompertz = np.exp(rates.GOMPERTZ_A + rates.GOMPERTZ_B * ages)
    q = np.where(ages < 1, rates.INFANT_MORTALITY, np.where(ages < 30, rates.CHILD_MORTALITY, gompertz))
    return np.minimum(q, 0.7)


# --------------------------------------------------------------------------- daily changes


class _Free:
    """Who can still get a freg row today (one row per person per day)."""

    def __init__(self, world: World, day: int) -> None:
        pop = world.pop
        self.mask = pop.alive_on(day) & (pop.last_change < day)

    def take(self, pids: np.ndarray) -> None:
        self.mask[pids] = False


def _move_destinations(rng: np.random.Generator, kommune: np.ndarray) -> np.ndarray:
    """Half of the moves stay inside the fylke; destinations weighted by population."""
    geo = geography()
    p_national = geo.population / geo.population.sum()
    dest = rng.choice(geo.n_kommuner, size=kommune.size, p=p_national).astype(np.int32)
    local = rng.random(kommune.size) < 0.5
    fylke = geo.fylke_of[kommune]
    for f in np.unique(fylke[local]):
        inside = np.flatnonzero(geo.fylke_of == f)
        rows = np.flatnonzero(local & (fylke == f))
        w = geo.population[inside]
        dest[rows] = rng.choice(inside, size=rows.size, p=w / w.sum())
    return dest


def simulate_day(world: World, day: int) -> None:
    """Emigration, moves, immigration, new D-numbers, identifier changes and the missing."""
    rng = world.rng("demography", day)
    pop = world.pop
    free = _Free(world, day)
    resident = pop.status == BOSATT
    n_resident = int(resident.sum())
    per_day = lambda rate, base: int(rng.poisson(rate * base / 365.25))  # noqa: E731

    def emit(pids: np.ndarray, extra: tuple[pl.DataFrame, ...] = (), changes: pl.DataFrame | None = None) -> None:
        """Queue today's rows of these persons (with their retired ids and id_changes lines:
        registered together, so one lag per person)."""
        pop.last_change[pids] = day
        free.take(pids)
        deliver_on = pl.Series(day + lags(rng, "freg", pids.size), dtype=pl.Int32)
        for frame in (person_rows(world, pids, day), *extra):
            world.push("freg", frame.with_columns(deliver_on=deliver_on))
        if changes is not None:
            world.push("freg_changes", changes.with_columns(deliver_on=deliver_on))

    # emigration (never a planned mother: she gives birth here)
    pids = pop.pick(rng, per_day(rates.EMIGRATION_RATE, n_resident), free.mask & resident & ~pop.expecting, "migrant", day)
    pop.status[pids] = UTFLYTTET
    pop.left[pids] = day
    emit(pids)

    # moves to another kommune, and new addresses inside the kommune
    pids = pop.pick(rng, per_day(rates.MOVE_RATE, n_resident), free.mask & resident, "migrant", day)
    pop.kommune[pids] = _move_destinations(rng, pop.kommune[pids])
    pop.kcode[pids] = registered_codes(rng, pop.kommune[pids])
    emit(pids)
    pids = pop.pick(rng, per_day(rates.LOCAL_MOVE_RATE, n_resident), free.mask & resident)
    emit(pids)

    # missing persons
    pids = pop.pick(rng, per_day(rates.MISSING_RATE, n_resident), free.mask & resident & ~pop.expecting)
    pop.status[pids] = FORSVUNNET
    pop.left[pids] = day
    emit(pids)

    # D-number -> fødselsnummer (the holder becomes or stays resident)
    holders = free.mask & (pop.kind == DNR) & ((pop.status == IKKE_BOSATT) | resident)
    pids = pop.pick(rng, per_day(rates.D_TO_F_RATE, int(holders.sum())), holders)
    homeless = pids[pop.kcode[pids] == geography().unknown_code]  # registered on 9999: settle somewhere
    if homeless.size:
        geo = geography()
        pop.kommune[homeless] = rng.choice(geo.n_kommuner, size=homeless.size, p=geo.population / geo.population.sum())
        pop.kcode[homeless] = registered_codes(rng, pop.kommune[homeless])
    _change_ids(world, rng, pids, day, "fnr", D_TO_F, emit, new_status=BOSATT)

    # corrections of a wrong fødselsnummer; some of them extend an earlier change into a chain
    k = per_day(rates.CORRECTION_RATE, n_resident)
    eligible = free.mask & resident & (pop.kind == FNR)
    k_chain = int(rng.binomial(k, rates.CORRECTION_CHAIN_SHARE))
    chain = pop.pick(rng, k_chain, eligible & (pop.old_id != 0))
    free.take(chain)
    plain = pop.pick(rng, k - chain.size, eligible & free.mask)
    _change_ids(world, rng, np.concatenate([chain, plain]), day, "fnr", CORRECTION, emit)

    # newcomers: immigrants with a fødselsnummer, and new D-numbers (not resident)
    k = per_day(rates.IMMIGRATION_RATE, n_resident)
    pids = _add_people(world, rng, draw_ages(rng, k, "migrant"), day, FNR, BOSATT)
    free.mask = np.concatenate([free.mask, np.ones(pids.size, dtype=bool)])
    emit(pids)
    k = per_day(rates.NEW_DNR_RATE, n_resident)
    pids = _add_people(world, rng, np.maximum(draw_ages(rng, k, "migrant"), 18), day, DNR, IKKE_BOSATT,
                       unknown_share=rates.NONRESIDENT_UNKNOWN_KOMMUNE)
    free.mask = np.concatenate([free.mask, np.ones(pids.size, dtype=bool)])
    emit(pids)


def _change_ids(world: World, rng: np.random.Generator, pids: np.ndarray, day: int, new_kind: str, reason: int,
                emit, new_status: int | None = None) -> None:
    """Give persons a new identifier: row for the new id, `opphoert` row for the old, id_changes line."""
    if not pids.size:
        return
    pop = world.pop
    old = pop.id[pids].copy()
    new = world.registry.issue(rng, pop.birth[pids], pop.sex[pids], new_kind)
    retired = person_rows(world, pids, day, ids=old, status=OPPHOERT)
    pop.old_id[pids] = old
    pop.id[pids] = new
    pop.kind[pids] = KIND_NAMES.index(new_kind)
    if new_status is not None:
        pop.status[pids] = new_status
    changes = pl.DataFrame({"old_id": old, "new_id": new, "change_date": np.full(pids.size, day, dtype=np.int32),
                            "reason": np.full(pids.size, reason, dtype=np.int8)})
    emit(pids, extra=(retired,), changes=changes)
