"""Records waiting for their delivery day (event day + registration lag)."""

from __future__ import annotations

import numpy as np
import polars as pl

from stat19.synth import rates


def lags(rng: np.random.Generator, source: str, n: int) -> np.ndarray:
    values, probs = rates.LAG[source]
    return rng.choice(np.asarray(values, dtype=np.int32), size=n, p=probs)


class Outbox:
    """A column table of typed records with a `deliver_on` day; `pop(day)` takes what is due."""

    def __init__(self, schema: dict[str, pl.DataType]) -> None:
        self.schema = {**schema, "deliver_on": pl.Int32}
        self._parts: list[pl.DataFrame] = []

    def push(self, frame: pl.DataFrame) -> None:
        if frame.height:
            self._parts.append(frame.select(pl.col(n).cast(t) for n, t in self.schema.items()))

    def pop(self, day: int) -> pl.DataFrame:
        """Every record due on or before `day`, in the order pushed; the rest stays."""
        if not self._parts:
            return pl.DataFrame(schema=self.schema)
        waiting = pl.concat(self._parts, how="vertical")
        due = waiting["deliver_on"] <= day
        self._parts = [waiting.filter(~due)]
        return waiting.filter(due)

    @property
    def waiting(self) -> int:
        return sum(p.height for p in self._parts)
