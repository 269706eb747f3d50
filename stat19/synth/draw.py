"""Small drawing helpers over the (value, weight) tables in rates."""

from __future__ import annotations

import numpy as np


def categorical(rng: np.random.Generator, table, n: int) -> np.ndarray:
    """n values from a table of (value, weight, ...) tuples, by weight."""
    values = np.array([row[0] for row in table])
    weights = np.array([row[1] for row in table], dtype=float)
    return values[rng.choice(values.size, size=n, p=weights / weights.sum())]


def categorical_index(rng: np.random.Generator, table, n: int) -> np.ndarray:
    weights = np.array([row[1] for row in table], dtype=float)
    return rng.choice(weights.size, size=n, p=weights / weights.sum())


def from_distribution(rng: np.random.Generator, values_probs, n: int) -> np.ndarray:
    """n draws from a (values, probabilities) pair as in rates.LAG."""
    values, probs = values_probs
    probs = np.asarray(probs, dtype=float)
    return rng.choice(np.asarray(values), size=n, p=probs / probs.sum())


def count(rng: np.random.Generator, expected: float) -> int:
    return int(rng.poisson(max(expected, 0.0)))


def map_values(values: np.ndarray, mapping: dict, default=None) -> np.ndarray:
    """Look every value up in `mapping` (one dict lookup per distinct value, not per row)."""
    if not values.size:
        return np.empty(0, dtype=object)
    unique, inverse = np.unique(values, return_inverse=True)
    return np.array([mapping.get(v, default) for v in unique.tolist()], dtype=object)[inverse]


def weighted_without_replacement(rng: np.random.Generator, eligible: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    """Up to k distinct indices among `eligible`, by weight (Efraimidis-Spirakis: the k largest
    u^(1/w) form a weighted sample without replacement)."""
    candidates = np.flatnonzero(eligible & (weights > 0))
    k = min(k, candidates.size)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    keys = np.log(rng.random(candidates.size)) / weights[candidates]
    return np.sort(candidates[np.argpartition(-keys, k - 1)[:k]])
