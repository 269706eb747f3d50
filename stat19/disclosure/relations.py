"""The additive relations of a release, built once: every total equals the sum of its parts.

For every dimension with a parent map, every parent code p and every combination of the other
dimensions' codes: ``cell(p) = sum of cell(c)`` over the children c of p present in the release.
A relation is built when the parent row and at least one child row exist. All relations of all
dimensions form ONE system (suppressing 2-D sub-tables one at a time leaks through shared cells).
Suppression, both audits and the totals check of the product engine use this one builder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

from stat19.disclosure.rules import Dimension, RelationError


@dataclass(frozen=True)
class Relations:
    matrix: sp.csr_array  # relations x cells: +1 for the parent, -1 for each child
    parent: np.ndarray  # cell index of each relation's parent
    keys: pl.DataFrame  # the dimension columns as strings, to name cells in messages
    dimension: np.ndarray  # index (into keys.columns) of the dimension each relation sums over

    @property
    def dimensions(self) -> list[str]:
        return self.keys.columns

    def children(self) -> tuple[np.ndarray, np.ndarray]:
        """(relation, cell) of every child in every relation."""
        coo = self.matrix.tocoo()
        child = coo.data < 0
        return coo.row[child].astype(np.int64), coo.col[child].astype(np.int64)

    def cell(self, i: int) -> dict[str, str]:
        return dict(zip(self.keys.columns, self.keys.row(int(i)), strict=True))


def build_relations(df: pl.DataFrame, dimensions: Sequence[Dimension]) -> Relations:
    """The relations of the release df over the declared dimensions; ``RelationError`` when the
    dimension columns do not describe each row once or hold codes outside their hierarchy."""
    names = [d.name for d in dimensions]
    if len(set(names)) != len(names):
        raise RelationError(f"dimension declared twice: {names}")
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise RelationError(f"dimension column(s) missing from the release: {missing}")
    keys = df.select(pl.col(n).cast(pl.String) for n in names)
    for n in names:
        if keys[n].null_count():
            raise RelationError(f"dimension {n} has null codes")
    dup = keys.filter(keys.is_duplicated())
    if dup.height:
        raise RelationError(f"{dup.height} rows share their dimension codes, e.g. {dup.row(0)}")

    rows = keys.with_row_index("_row")
    r_ids, r_cells, r_signs, parents, dims = [], [], [], [], []
    n_rel = 0
    for k, dim in enumerate(dimensions):
        if dim.parent is None:
            continue
        known = {str(c) for c in dim.parent} | {str(p) for p in dim.parent.values()}
        unknown = set(keys[dim.name].unique().to_list()) - known
        if unknown:
            raise RelationError(
                f"dimension {dim.name}: codes not in its hierarchy: {sorted(unknown)[:10]}")
        others = [n for n in names if n != dim.name]
        edges = pl.DataFrame(
            {dim.name: [str(c) for c in dim.parent],
             "_pcode": [str(p) for p in dim.parent.values()]},
            schema={dim.name: pl.String, "_pcode": pl.String},
        )
        # child row -> parent code -> parent row (same codes in every other dimension)
        link = rows.join(edges, on=dim.name, how="inner").join(
            rows.select(*others, pl.col(dim.name).alias("_pcode"), pl.col("_row").alias("_prow")),
            on=[*others, "_pcode"],
            how="inner",
        )
        if link.height == 0:
            continue
        child = link["_row"].to_numpy().astype(np.int64)
        par, inv = np.unique(link["_prow"].to_numpy().astype(np.int64), return_inverse=True)
        r_ids += [n_rel + np.arange(par.size), n_rel + inv]
        r_cells += [par, child]
        r_signs += [np.ones(par.size), -np.ones(child.size)]
        parents.append(par)
        dims.append(np.full(par.size, k, np.int64))
        n_rel += par.size
    if n_rel == 0:
        matrix = sp.csr_array((0, df.height))
        return Relations(matrix, np.zeros(0, np.int64), keys, np.zeros(0, np.int64))
    matrix = sp.csr_array(
        (np.concatenate(r_signs), (np.concatenate(r_ids), np.concatenate(r_cells))),
        shape=(n_rel, df.height),
    )
    return Relations(matrix, np.concatenate(parents), keys, np.concatenate(dims))


def verify(rel: Relations, measure: str, v: np.ndarray) -> None:
    residual = rel.matrix @ v
    bad = np.flatnonzero(residual)
    if bad.size:
        r = bad[0]
        p = rel.parent[r]
        raise RelationError(
            f"measure {measure}: {bad.size} declared relation(s) do not hold, e.g. "
            f"{rel.cell(p)} = {v[p]} but its children sum to {v[p] - residual[r]}"
        )

