"""The day loop: simulate events day by day, deliver what is due, write the ground truth.

Each simulated day: births (planned pregnancies), deaths, other freg changes, then health events
(NPR admissions with SARI lab tests, lab tests, MSIS cases, KPR claims with antibiotics, other
dispensings). Every record waits in its source's outbox until its delivery day (event day +
registration lag). From the first delivery day on, each source's due records are rendered to the
contract's columns, bad rows are injected, and the delivery is written (files, then manifest).
Memory holds the population, the planned vaccinations and births, the year's NPR episodes and
the records in transit, never the whole period.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import polars as pl

from stat19.synth import births, deaths, faults, freg, lab, primary_care, rates, timeutil, vaccination
from stat19.synth.npr import NprRegister
from stat19.synth.population import ForeignPatients
from stat19.synth.world import World
from stat19.synth.writers import split_parts, write_delivery

TRUTH_FILE = "_synth_truth.json"
log = logging.getLogger(__name__)
# Sources whose records delivered before the first day are simply dropped (delivered earlier).
DROPPED_IN_WARMUP = ("msis", "msis_lab", "kpr", "lmr", "mfr", "daar")
RENDER = {
    "msis": lab.render_msis,
    "msis_lab": lab.render_msis_lab,
    "kpr": primary_care.render_kpr,
    "lmr": primary_care.render_lmr,
    "mfr": births.render_mfr,
    "daar": deaths.render_daar,
}
TRUTH_COUNTING = (
    "row_faults counts rows of the delivery's files per kind: for duplicate_row the extra identical "
    "copies (rows_duplicate), for duplicate_id both rows of each pair (original and variant, both "
    "quarantined), otherwise the bad rows. freg faults are in persons.csv only. Deliveries listed under "
    "delivery_faults are rejected (or, for missing_manifest, never complete) whatever their rows."
)


def generate(out: Path, persons: int, start: dt.date, days: int, seed: int = 19, error_rate: float = 0.002,
             delivery_faults: bool = True) -> dict:
    """Write a landing zone `<out>/<source>/<YYYY-MM-DD>/` for the nine sources, one delivery per
    source per day from `start` for `days` days, plus `<out>/_synth_truth.json` (injected faults).
    Same arguments, same bytes. Returns a summary (rows per source, faults, seconds)."""
    started = time.perf_counter()
    if persons < 100 or days < 1:
        raise ValueError("need at least 100 persons and 1 day")
    if not 0 <= error_rate * len(rates.ROW_FAULT_KINDS) < 1:
        raise ValueError(f"error_rate must be in [0, 1/{len(rates.ROW_FAULT_KINDS)}): it applies per row and kind")
    if isinstance(start, dt.datetime):
        start = start.date()
    out = Path(out)
    _refuse_to_overwrite(out)

    world = World(seed=seed, persons=persons, start_day=timeutil.day_number(start), days=days, error_rate=error_rate)
    initial_persons, initial_changes = freg.build_population(world)
    world.foreign = ForeignPatients(world.rng("population", 1), world.registry,
                                    max(5, int(persons * rates.FOREIGN_PATIENT_SHARE)), world.first_sim_day)
    freg.set_mortality(world)
    birth_plan = births.plan_births(world)
    vaccination.plan_vaccinations(world, birth_plan)
    npr = NprRegister(world)
    npr.backfill(timeutil.day_number(dt.date(start.year, 1, 1)), world.first_sim_day)
    fault_plan = faults.plan_delivery_faults(world.rng("delivery_faults", 0), days) if delivery_faults else {}
    log.info("population and plans ready: %d persons in freg, %.1f s", world.pop.size, time.perf_counter() - started)

    truth = {"delivery_faults": [], "row_faults": {s: {} for s in rates.SOURCES}, "rows": {s: {} for s in rates.SOURCES}}
    for day in range(world.first_sim_day, world.end_day + 1):
        kids = births.simulate_day(world, birth_plan, day)
        vaccination.plan_newborns(world, day, kids)
        deaths.simulate_day(world, day)
        freg.simulate_day(world, day)
        npr.admit(day)
        lab.simulate_lab_day(world, day)
        lab.simulate_msis_day(world, day)
        primary_care.simulate_kpr_day(world, day)
        primary_care.simulate_lmr_day(world, day)
        if day < world.start_day:
            for source in DROPPED_IN_WARMUP:
                world.outboxes[source].pop(day)
            continue
        for source in rates.SOURCES:
            files = _files_of(world, source, day, npr, initial_persons, initial_changes, truth)
            fault = fault_plan.get((source, day - world.start_day))
            write_delivery(out, source, timeutil.iso(day), files, fault)
            if fault:
                truth["delivery_faults"].append({"source": source, "delivery_date": timeutil.iso(day), "kind": fault,
                                                 "file": files[0][0]})
        log.info("delivered %s: npr %d rows, %.1f s", timeutil.iso(day), truth["rows"]["npr"][timeutil.iso(day)],
                 time.perf_counter() - started)

    truth_doc = {
        "generator": "stat19.synth.generate",
        "arguments": {"persons": persons, "start": start.isoformat(), "days": days, "seed": seed,
                      "error_rate": error_rate, "delivery_faults": delivery_faults},
        "counting": TRUTH_COUNTING,
        **truth,
    }
    (out / TRUTH_FILE).write_text(json.dumps(truth_doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return {
        "out": str(out),
        "persons": persons,
        "population_rows": initial_persons.height,
        "deliveries": days * len(rates.SOURCES),
        "rows": {s: sum(v.values()) for s, v in truth["rows"].items()},
        "bad_rows": {s: _sum_counts(v) for s, v in truth["row_faults"].items()},
        "delivery_faults": truth["delivery_faults"],
        "seconds": round(time.perf_counter() - started, 2),
    }


def _refuse_to_overwrite(out: Path) -> None:
    if out.exists() and any((out / name).exists() for name in (*rates.SOURCES, TRUTH_FILE)):
        raise FileExistsError(f"{out} already holds a landing zone; remove it first (output must be reproducible)")
    out.mkdir(parents=True, exist_ok=True)


def _sum_counts(per_day: dict) -> dict:
    total: dict[str, int] = {}
    for counts in per_day.values():
        for kind, n in counts.items():
            total[kind] = total.get(kind, 0) + n
    return total


def _files_of(world: World, source: str, day: int, npr: NprRegister, initial_persons: pl.DataFrame,
              initial_changes: pl.DataFrame, truth: dict) -> list[tuple[str, pl.DataFrame]]:
    """The delivery's files as output frames, with row faults injected and counted."""
    rng = world.rng("faults", day, rates.SOURCES.index(source))
    first_day = day == world.start_day
    episode_numbers = None
    if source == "freg":
        persons = world.outboxes["freg"].pop(day)
        changes = world.outboxes["freg_changes"].pop(day).drop("deliver_on")
        if first_day:
            persons = freg.first_delivery(initial_persons, persons)
            changes = pl.concat([initial_changes, changes], how="vertical")
        frame = freg.render_persons(persons)
    elif source == "npr":
        frame, chosen, episode_numbers = npr.snapshot(day)
    elif source == "sysvak":
        frame = vaccination.render_sysvak(vaccination.due(world, day), world.rng("render", day))
    else:
        frame = RENDER[source](world.outboxes[source].pop(day))
    if source != "npr":
        chosen = faults.choose_rows(rng, frame, source, world.error_rate)
    frame, counts = faults.inject_row_faults(rng, frame, source, day, chosen, episode_numbers, salt=world.seed)
    iso = timeutil.iso(day)
    truth["row_faults"][source][iso] = counts
    if source == "freg":
        rendered_changes = freg.render_changes(changes)
        truth["rows"][source][iso] = frame.height + rendered_changes.height
        return [("persons.csv", frame), ("id_changes.csv", rendered_changes)]
    truth["rows"][source][iso] = frame.height
    return split_parts(source, frame)
