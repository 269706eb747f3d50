"""The synthetic population: one numpy array per attribute, one element per person.

A person is an integer index (pid). Identifiers are stored as int64 (11-digit numbers) and only
formatted as zero-padded strings when a record is written. Other registers refer to persons
through `record_ids`, which sometimes still returns the previous identifier after a change.
"""

from __future__ import annotations

import numpy as np

from stat19.synth.ids import make_ids
from stat19.synth import rates

# freg status codes (index into STATUS)
STATUS = ("bosatt", "utflyttet", "doed", "forsvunnet", "ikkeBosatt", "opphoert")
BOSATT, UTFLYTTET, DOED, FORSVUNNET, IKKE_BOSATT, OPPHOERT = range(6)
# identifier kinds held by persons in freg
KIND_NAMES = ("fnr", "dnr", "synthetic")
FNR, DNR, SYNTHETIC = range(3)
NEVER = np.int32(2**31 - 1)  # "no such day" (not dead, not left)
MAX_AGE = 105


def age_weights(profile: str) -> np.ndarray:
    """Relative weight per completed age 0..105 from a piecewise-constant profile in rates."""
    weights = np.zeros(MAX_AGE + 1)
    lower = 0
    for upper, weight in rates.AGE_PROFILE[profile]:
        weights[lower:min(upper, MAX_AGE + 1)] = weight
        lower = upper
    return weights


def draw_ages(rng: np.random.Generator, n: int, profile: str) -> np.ndarray:
    p = age_weights(profile)
    return rng.choice(MAX_AGE + 1, size=n, p=p / p.sum())


def birth_days_for_ages(rng: np.random.Generator, ages: np.ndarray, on_day: int) -> np.ndarray:
    """Birth days of persons of completed age `ages` on `on_day` (105 means 105 or older)."""
    years = ages + rng.random(ages.size) * 0.999
    years = np.where(ages >= MAX_AGE, MAX_AGE + rng.exponential(1.2, ages.size).clip(0, 6), years)
    return (on_day - np.floor(years * 365.2425)).astype(np.int32)


def sex_names(sex: np.ndarray) -> np.ndarray:
    return np.where(sex == 0, "male", "female")


class IdRegistry:
    """Every identifier ever issued, so that new ones never collide with old ones.
    The initial population sits in one sorted array; the few issued per day in a set."""

    def __init__(self) -> None:
        self._sorted = np.empty(0, dtype=np.int64)
        self._recent: set[int] = set()

    def _taken(self, ids: np.ndarray) -> np.ndarray:
        taken = np.zeros(ids.size, dtype=bool)
        if self._sorted.size:
            pos = np.searchsorted(self._sorted, ids).clip(0, self._sorted.size - 1)
            taken |= self._sorted[pos] == ids
        if self._recent:
            taken |= np.fromiter((i in self._recent for i in ids.tolist()), dtype=bool, count=ids.size)
        return taken

    def _remember(self, ids: np.ndarray) -> None:
        if ids.size > 50_000:
            self._sorted = np.sort(np.concatenate([self._sorted, ids]))
        else:
            self._recent.update(ids.tolist())

    def issue(self, rng: np.random.Generator, birth_days: np.ndarray, sex: np.ndarray, kind: str) -> np.ndarray:
        """New unique identifiers (int64) of `kind` for persons with these birth days and sexes."""
        birth = np.asarray(birth_days, dtype=np.int64).astype("datetime64[D]")
        sexes = sex_names(np.asarray(sex))
        ids = make_ids(rng, birth, sexes, kind=kind).astype(np.int64)
        todo = np.arange(ids.size)
        for _ in range(100):
            # redraw ids already issued, and repeats inside this batch (the first one keeps its id)
            order = np.argsort(ids, kind="stable")
            repeat = np.zeros(ids.size, dtype=bool)
            repeat[order[1:][ids[order][1:] == ids[order][:-1]]] = True
            repeat[todo] |= self._taken(ids[todo])
            todo = np.flatnonzero(repeat)
            if not todo.size:
                self._remember(ids)
                return ids
            ids[todo] = make_ids(rng, birth[todo], sexes[todo], kind=kind).astype(np.int64)
        raise RuntimeError(f"could not issue {todo.size} unique {kind} identifiers")


class Population:
    """Everybody the Folkeregister knows (residents, non-residents, emigrated, dead)."""

    COLUMNS = {
        "id": np.int64,  # current identifier
        "old_id": np.int64,  # the identifier it replaced (0: none)
        "kind": np.int8,  # FNR, DNR, SYNTHETIC
        "birth": np.int32,  # day number
        "sex": np.int8,  # 0 male, 1 female
        "kommune": np.int32,  # true 2024 kommune index
        "kcode": np.int32,  # residence code as the Folkeregister has it (may be old/unknown)
        "status": np.int8,
        "left": np.int32,  # day of death or emigration (NEVER while present)
        "last_change": np.int32,  # day of the latest freg row (one row per person per day)
        "risk": np.bool_,  # medical risk group
        "expecting": np.bool_,  # planned mother: kept alive and resident until she gives birth
    }

    def __init__(self) -> None:
        for name, dtype in self.COLUMNS.items():
            setattr(self, name, np.empty(0, dtype=dtype))
        self._age_day: int | None = None
        self._ages = np.empty(0, dtype=np.int16)
        self._buckets_day: int | None = None
        self._buckets: tuple = ()

    @property
    def size(self) -> int:
        return self.id.size

    def add(self, **values: np.ndarray) -> np.ndarray:
        """Append persons (every column given or defaulted); returns their pids."""
        n = len(values["id"])
        defaults = {"old_id": 0, "kind": FNR, "left": NEVER, "risk": False, "expecting": False}
        start = self.size
        for name, dtype in self.COLUMNS.items():
            column = values.get(name, defaults.get(name))
            if column is None:
                raise ValueError(f"Population.add needs {name}")
            column = np.broadcast_to(np.asarray(column, dtype=dtype), (n,))
            setattr(self, name, np.concatenate([getattr(self, name), column]))
        return np.arange(start, start + n)

    def ages(self, day: int) -> np.ndarray:
        """Completed age on `day` (birth days never change: cached per day and population size)."""
        if self._age_day != day:
            self._ages = np.empty(0, dtype=np.int16)
            self._age_day = day
        if self._ages.size < self.size:  # persons added since: compute their ages only
            new = self.birth[self._ages.size:]
            self._ages = np.concatenate([self._ages, np.clip((day - new) // 365.2425, 0, MAX_AGE).astype(np.int16)])
        return self._ages

    def alive_on(self, day: int) -> np.ndarray:
        return (self.birth <= day) & (self.left > day) & (self.status != DOED)

    def record_ids(self, rng: np.random.Generator, pids: np.ndarray) -> np.ndarray:
        """The identifier another register writes for these persons: now and then the old one."""
        ids = self.id[pids]
        old = self.old_id[pids]
        use_old = (old != 0) & (rng.random(pids.size) < rates.OLD_ID_USE)
        return np.where(use_old, old, ids)

    def _age_buckets(self, day: int):
        """Persons who use health services on `day`, grouped by age (built once a day)."""
        if self._buckets_day != day:
            users = np.flatnonzero(self.alive_on(day) & ((self.status == BOSATT) | (self.status == IKKE_BOSATT)))
            ages = self.ages(day)[users]
            order = np.argsort(ages, kind="stable")
            counts = np.bincount(ages, minlength=MAX_AGE + 1)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            by_age = users[order]
            accept = np.where(self.status[by_age] == BOSATT, 1.0, rates.NONRESIDENT_HEALTH_WEIGHT)
            self._buckets = (by_age, starts, counts, accept)
            self._buckets_day = day
        return self._buckets

    def sample(self, rng: np.random.Generator, k: int, profile: str, day: int) -> np.ndarray:
        """k persons (with replacement) who use health services on `day`: an age by the profile,
        then a person of that age (non-residents kept with NONRESIDENT_HEALTH_WEIGHT)."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        by_age, starts, counts, accept = self._age_buckets(day)
        p = age_weights(profile) * counts
        p /= p.sum()
        chosen = []
        while k > 0:
            ages = rng.choice(MAX_AGE + 1, size=k, p=p)
            position = starts[ages] + (rng.random(k) * counts[ages]).astype(np.int64)
            kept = rng.random(k) < accept[position]
            chosen.append(by_age[position[kept]])
            k -= int(kept.sum())
        return np.concatenate(chosen)

    def pick(self, rng: np.random.Generator, k: int, eligible: np.ndarray, profile: str | None = None,
             day: int | None = None) -> np.ndarray:
        """Up to k distinct persons among `eligible` (bool mask): uniformly, or by an age profile."""
        if k <= 0:
            return np.empty(0, dtype=np.int64)
        if profile is not None:
            # draw by age from the health-service users, keep the eligible, drop repeats
            chosen = np.empty(0, dtype=np.int64)
            for attempt in range(5):
                drawn = self.sample(rng, 2 * k + 10, profile, day)
                chosen = np.concatenate([chosen, drawn[eligible[drawn]]])
                chosen = chosen[np.sort(np.unique(chosen, return_index=True)[1])]
                if chosen.size >= k:
                    return np.sort(chosen[:k])
            return np.sort(chosen)
        candidates = np.flatnonzero(eligible)
        if not candidates.size:
            return np.empty(0, dtype=np.int64)
        return np.sort(rng.choice(candidates, size=min(k, candidates.size), replace=False))


class ForeignPatients:
    """Patients without a Norwegian identity (H- and FH-numbers): in NPR, never in freg."""

    def __init__(self, rng: np.random.Generator, registry: IdRegistry, n: int, day: int) -> None:
        ages = draw_ages(rng, n, "migrant")
        self.birth = birth_days_for_ages(rng, ages, day)
        self.sex = rng.integers(0, 2, n).astype(np.int8)
        h_number = rng.random(n) < 0.5
        self.id = np.empty(n, dtype=np.int64)
        for is_h, kind in ((True, "hnr"), (False, "fhnr")):
            rows = np.flatnonzero(h_number == is_h)
            self.id[rows] = registry.issue(rng, self.birth[rows], self.sex[rows], kind)

    @property
    def size(self) -> int:
        return self.id.size
