"""Reference data the generator draws from: kommuner, old codes, population by age and sex.

Read from the package data (stat19/reference), never from the shared spec folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl

from stat19.synth import rates

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "reference"
UNKNOWN_KOMMUNE = "9999"


@dataclass(frozen=True)
class Geography:
    """Kommune codes as integer indices.

    `codes` lists every code the generator ever writes: first the 357 codes of 2024 (index = the
    kommune index used everywhere), then pre-2024 codes, then 9999, then codes no year knows.
    """

    codes: np.ndarray  # <U4, every code written
    n_kommuner: int  # codes[:n_kommuner] are the 2024 kommuner
    fylke_of: np.ndarray  # fylke number ("03") per 2024 kommune index
    population: np.ndarray  # float, 2024 population per kommune index (move destinations)
    old_codes: np.ndarray  # int [n_kommuner, max_old]: code indices of older codes of each kommune
    n_old_codes: np.ndarray  # int [n_kommuner]
    unknown_code: int  # index of 9999
    bogus_codes: np.ndarray  # indices of 4-digit codes no year knows
    cells: pl.DataFrame  # kommune index, age, sex (0 male, 1 female), population


@cache
def geography() -> Geography:
    kommuner = pl.read_csv(REFERENCE_DIR / "kommuner_2024.csv", infer_schema=False)
    k24 = kommuner["kommune_nr"].to_list()
    index = {code: i for i, code in enumerate(k24)}
    corr = pl.read_csv(REFERENCE_DIR / "kommune_correspondence.csv", infer_schema=False)
    corr = corr.filter(pl.col("old_code") != pl.col("new_code"))
    old_codes = sorted(set(corr["old_code"].to_list()) - set(k24))
    known = set(k24) | set(old_codes) | set(corr["new_code"].to_list())
    bogus = [c for c in rates.BOGUS_KOMMUNE_CODES if c not in known and c != UNKNOWN_KOMMUNE]
    codes = np.array(k24 + old_codes + [UNKNOWN_KOMMUNE] + bogus)
    code_index = {c: i for i, c in enumerate(codes.tolist())}

    # Older codes per 2024 kommune (a split old code is listed under each of its new codes).
    per_kommune: list[list[int]] = [[] for _ in k24]
    for old, new in corr.select("old_code", "new_code").iter_rows():
        if new in index and old in code_index:
            per_kommune[index[new]].append(code_index[old])
    width = max(1, max(len(x) for x in per_kommune))
    old_matrix = np.zeros((len(k24), width), dtype=np.int32)
    for i, olds in enumerate(per_kommune):
        old_matrix[i, : len(olds)] = olds

    cells = (
        pl.read_csv(REFERENCE_DIR / "kommune_population_age_sex_2024.csv", infer_schema=False)
        .select(
            pl.col("kommune_nr").replace_strict(index, return_dtype=pl.Int32).alias("kommune"),
            pl.col("age").cast(pl.Int32),
            (pl.col("sex") == "female").cast(pl.Int8).alias("sex"),
            pl.col("population").cast(pl.Int64),
        )
        .filter(pl.col("population") > 0)
        .sort("kommune", "age", "sex")
    )
    return Geography(
        codes=codes,
        n_kommuner=len(k24),
        fylke_of=np.array([c[:2] for c in k24]),
        population=kommuner["population"].cast(pl.Float64).to_numpy(),
        old_codes=old_matrix,
        n_old_codes=np.array([len(x) for x in per_kommune]),
        unknown_code=code_index[UNKNOWN_KOMMUNE],
        bogus_codes=np.array([code_index[c] for c in bogus], dtype=np.int32),
        cells=cells,
    )


def registered_codes(rng: np.random.Generator, kommune: np.ndarray, unknown_share: float = rates.UNKNOWN_KOMMUNE_SHARE) -> np.ndarray:
    """Code indices as a register writes them for persons living in `kommune` (2024 indices):
    mostly the 2024 code, sometimes an older code of the same area, 9999, or a code no year knows."""
    geo = geography()
    kommune = np.asarray(kommune, dtype=np.int32)
    out = kommune.copy()
    u = rng.random(kommune.size)
    has_old = geo.n_old_codes[kommune] > 0
    old = (u < rates.OLD_KOMMUNE_CODE_SHARE) & has_old
    pick = (rng.random(kommune.size) * np.maximum(geo.n_old_codes[kommune], 1)).astype(np.int32)
    out[old] = geo.old_codes[kommune[old], pick[old]]
    unknown = (u >= 1 - unknown_share)
    out[unknown] = geo.unknown_code
    bogus = (u >= 1 - unknown_share - rates.BOGUS_KOMMUNE_SHARE) & ~unknown
    out[bogus] = geo.bogus_codes[rng.integers(0, geo.bogus_codes.size, bogus.sum())]
    return out
