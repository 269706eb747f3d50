"""Synthetic person identifiers for the generator: valid fødselsnummer, D-, H-, FH- and synthetic
test numbers for given birth dates and sexes, drawn in bulk with numpy (no Python row loop).

The rules are those of ``stat19.identifiers`` (the validator, which checks every id drawn here in
the tests) and of /work/shared/spec/domain.md.  The same seed gives the same ids: the pipeline's
synthetic landings depend on the order in which the random numbers are drawn, so keep it.
"""

from __future__ import annotations

import numpy as np

from stat19.identifiers import DAY_OFFSET, KINDS, MODELS, MONTH_OFFSET, W1, W2

__all__ = ["make_ids"]

# Old-model individnummer blocks per birth-year range, as pairs (lo, number of even/odd pairs);
# 1940-1999 uses 000-499 and 900-999, handled in _draw_individnummer_old.
_OLD_MIN_YEAR, _OLD_MAX_YEAR = 1854, 2039


def make_ids(
    rng: np.random.Generator,
    birth_dates: np.ndarray,  # datetime64[D]
    sexes: np.ndarray | None,  # 'male'/'female'; ignored for fhnr and the new model
    kind: str = "fnr",  # one of KINDS
    model: str = "old",  # "old" or "new" (numbers issued from 2032)
    unique: bool = True,  # redraw rows that repeat an earlier row's id
) -> np.ndarray:
    """Return one valid 11-character identifier ('<U11') per birth date, fully vectorised.

    Old model: the individnummer is drawn uniformly among those whose century rule gives the
    birth year and whose 9th digit gives the sex.  New model: individnummer uniform in 000-999,
    K1 uniform among the digits 0-9 that make (S1 + K1) mod 11 in {0,1,2,3}.  Rows where a check
    digit would be 10 are redrawn until none remain.  FH-numbers ignore dates and sexes.

    With ``unique`` (default) no id repeats within the call: two persons sharing an id would be
    silently merged by linkage.  An old-model date-sex group has only ~100-250 usable ids, so a
    group larger than that raises ValueError.  Uniqueness across calls is not checked.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    dates = np.asarray(birth_dates, dtype="datetime64[D]").ravel()
    n = dates.size
    # Each row is kept as integers: prefix = digits 1-6, iii = digits 7-9, then K1 and K2.
    # int32 storage: the final digit extraction divides, and int32 division is cheaper.
    iii = np.zeros(n, dtype=np.int32)
    k1 = np.zeros(n, dtype=np.int32)
    k2 = np.zeros(n, dtype=np.int32)

    if kind == "fhnr":
        prefix = np.zeros(n, dtype=np.int32)  # drawn in fill(): FH-numbers are all random
    else:
        if np.isnat(dates).any():
            raise ValueError("birth_dates contains NaT")
        year, month, day = _split_dates(dates)
        if model == "old" and ((year < _OLD_MIN_YEAR) | (year > _OLD_MAX_YEAR)).any():
            # The old individnummer table has no block outside 1854-2039.
            raise ValueError(f"old-model birth years must be in {_OLD_MIN_YEAR}-{_OLD_MAX_YEAR}")
        male = _male_mask(sexes, n) if model == "old" else None
        prefix = ((day + DAY_OFFSET[kind]) * 100 + month + MONTH_OFFSET[kind]) * 100 + year % 100
        prefix = prefix.astype(np.int32)
        p1, p2 = _prefix_sums(prefix)  # the date part never changes: weigh it once

    def fill(todo: slice | np.ndarray) -> None:
        """Draw the random digits of rows ``todo`` until their check digits are all 0-9."""
        m = n if isinstance(todo, slice) else todo.size
        while m:  # each round rejects roughly 1/11-2/11 of its rows: a handful of rounds
            if kind == "fhnr":
                prefix[todo] = rng.integers(800_000, 1_000_000, size=m)  # first digit 8 or 9
                s1, s2 = _prefix_sums(prefix[todo])
            else:
                s1, s2 = p1[todo], p2[todo]
            if model == "old" and kind != "fhnr":
                iii_t = _draw_individnummer_old(rng, year[todo], male[todo])
            else:
                iii_t = rng.integers(0, 1000, size=m)
            i1, i2, i3 = iii_t // 100, iii_t // 10 % 10, iii_t % 10
            s1 = s1 + 4 * i1 + 5 * i2 + 2 * i3
            k1_t = (11 - s1 % 11) % 11 if model == "old" else _draw_k1_new(rng, s1)
            k2_t = (11 - (s2 + 5 * i1 + 4 * i2 + 3 * i3 + 2 * k1_t) % 11) % 11
            iii[todo], k1[todo], k2[todo] = iii_t, k1_t, k2_t  # rows with a 10 get redrawn
            rejected = (k1_t == 10) | (k2_t == 10)
            todo = np.flatnonzero(rejected) if isinstance(todo, slice) else todo[rejected]
            m = todo.size

    def keys(rows: slice | np.ndarray) -> np.ndarray:
        return prefix[rows].astype(np.int64) * 100_000 + iii[rows] * 100 + k1[rows] * 10 + k2[rows]

    fill(slice(None))  # first pass over all rows: slices, no copies
    if unique:
        _redraw_repeats(fill, keys)
    return _to_strings(prefix, iii, k1, k2)


def _prefix_sums(prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """K1 and K2 weighted sums of digits 1-6 of a six-digit integer."""
    s1 = np.zeros(prefix.size, dtype=np.int64)
    s2 = np.zeros(prefix.size, dtype=np.int64)
    for j in range(6):
        d = prefix // 10 ** (5 - j) % 10
        s1 += int(W1[j]) * d
        s2 += int(W2[j]) * d
    return s1, s2


def _to_strings(prefix: np.ndarray, iii: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
    # Integers -> 11 zero-padded ASCII digits -> fixed-width strings, without a Python loop.
    ascii_bytes = np.empty((prefix.size, 11), dtype=np.uint8)
    for j in range(6):
        ascii_bytes[:, j] = prefix // 10 ** (5 - j) % 10
    ascii_bytes[:, 6], ascii_bytes[:, 7], ascii_bytes[:, 8] = iii // 100, iii // 10 % 10, iii % 10
    ascii_bytes[:, 9], ascii_bytes[:, 10] = k1, k2
    ascii_bytes += ord("0")
    return ascii_bytes.view("S11").ravel().astype("<U11")


def _later_repeats(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask of the rows whose key already occurred in an earlier row, the sort order, and the
    sorted keys."""
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    mask = np.zeros(key.size, dtype=bool)
    mask[order[1:][sorted_key[1:] == sorted_key[:-1]]] = True
    return mask, order, sorted_key


def _in_sorted(sorted_values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    # Sorted queries make searchsorted walk the big array in order: far fewer cache misses.
    if not sorted_keys.size:
        return np.zeros(sorted_values.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, sorted_values), sorted_keys.size - 1)
    return sorted_keys[pos] == sorted_values


def _redraw_repeats(fill, keys) -> None:
    # One full sort, then only the redrawn rows are checked against the ids already taken,
    # so each later round costs O(redrawn rows * log n), not a sort of all n rows.
    repeat, _, taken = _later_repeats(keys(slice(None)))  # taken may hold repeats: harmless
    added = np.empty(0, dtype=np.int64)  # small, the keys accepted in later rounds
    todo = np.flatnonzero(repeat)
    for _ in range(1000):
        if not todo.size:
            return
        fill(todo)
        new = keys(todo)
        clash, order, sorted_new = _later_repeats(new)
        clash[order] |= _in_sorted(sorted_new, taken) | _in_sorted(sorted_new, added)
        added = np.sort(np.concatenate([added, sorted_new[~clash[order]]]), kind="stable")  # 2 runs
        todo = todo[clash]
    raise ValueError(f"cannot make unique ids: {todo.size} rows keep colliding "
                     "(more persons share one birth date and sex than there are ids for them?)")


def _split_dates(dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    months = dates.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (dates - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def _male_mask(sexes: np.ndarray | None, n: int) -> np.ndarray:
    if sexes is None:
        raise ValueError("sexes is required for old-model ids other than fhnr")
    s = np.asarray(sexes).ravel()
    if s.size != n:
        raise ValueError(f"sexes has {s.size} rows, birth_dates has {n}")
    male = s == "male"
    if not (male | (s == "female")).all():
        raise ValueError("sexes must contain only 'male' and 'female'")
    return male


def _draw_individnummer_old(rng: np.random.Generator, year: np.ndarray, male: np.ndarray) -> np.ndarray:
    # Draw a pair index, then lo + 2*pair + sex bit: uniform over the block, 9th digit = sex.
    cond = [year < 1900, year < 1940, year < 2000]
    lo = np.select(cond, [500, 0, 0], 500)  # 1854-99: 500-749; 1900-39: 000-499; 2000-39: 500-999
    n_pairs = np.select(cond, [125, 250, 300], 250)  # 1940-99: 000-499 + 900-999 = 600 numbers
    pair = rng.integers(0, n_pairs)
    iii = lo + 2 * pair + male
    return np.where(pair >= 250, iii + 400, iii)  # only 1940-99 reaches pair 250: jump to 900


def _draw_k1_new(rng: np.random.Generator, s1: np.ndarray) -> np.ndarray:
    # The four K1 values giving remainders 0-3; sorting puts the forbidden 10 (if any) last,
    # so a uniform index below the count of usable candidates picks uniformly among them.
    cand = np.sort((np.arange(4)[None, :] - s1[:, None]) % 11, axis=1)
    n_ok = (cand < 10).sum(axis=1)
    return cand[np.arange(s1.size), rng.integers(0, n_ok)]
