"""Dates as int32 days since 1970-01-01 (numpy-friendly), seasonality and Oslo timestamps."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from stat19.synth import rates

EPOCH = dt.date(1970, 1, 1)
OSLO = ZoneInfo("Europe/Oslo")


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


def to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def iso(day: int) -> str:
    return to_date(day).isoformat()


def day_of_year(day: int) -> int:
    return to_date(day).timetuple().tm_yday


def season_factor(key: str, day: int) -> float:
    amplitude, peak = rates.SEASON[key]
    return 1.0 + amplitude * float(np.cos(2 * np.pi * (day_of_year(day) - peak) / 365.25))


def weekday_factor(key: str, day: int) -> float:
    weights = rates.WEEKDAY[key]
    return weights[to_date(day).weekday()] / (sum(weights) / 7)


def oslo_offset(day: int) -> str:
    """UTC offset of Oslo at noon on `day` ('+01:00' or '+02:00'): timestamps are 06-22 local,
    never inside the 02:00-03:00 switch."""
    offset = dt.datetime.combine(to_date(day), dt.time(12), OSLO).utcoffset()
    minutes = int(offset.total_seconds() // 60)
    return f"+{minutes // 60:02d}:{minutes % 60:02d}"


def timestamps(days: np.ndarray | int, seconds: np.ndarray) -> pl.Series:
    """ISO 8601 timestamps with Oslo offset: `seconds` after local midnight of `days`."""
    seconds = np.asarray(seconds, dtype=np.int64)
    days = np.broadcast_to(np.asarray(days, dtype=np.int32), seconds.shape)
    offsets = {int(d): oslo_offset(int(d)) for d in np.unique(days)}
    frame = pl.DataFrame({"day": days, "s": seconds})
    local = pl.col("day").cast(pl.Date).cast(pl.Datetime("ms")) + pl.duration(seconds=pl.col("s"))
    return frame.select(
        pl.concat_str(
            local.dt.strftime("%Y-%m-%dT%H:%M:%S"),
            pl.col("day").replace_strict(list(offsets), list(offsets.values()), return_dtype=pl.Utf8),
        )
    ).to_series()
