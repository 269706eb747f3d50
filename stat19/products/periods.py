"""Periods of a time dimension: ISO weeks (``2026-W03``) and months (``2026-01``)."""

from __future__ import annotations

from datetime import date, timedelta


def period_of(kind: str, day: date) -> str:
    if kind == "iso_week":
        y, w, _ = day.isocalendar()
        return f"{y}-W{w:02d}"
    return f"{day.year}-{day.month:02d}"


def period_start(kind: str, period: str) -> date:
    if kind == "iso_week":
        y, w = period.split("-W")
        return date.fromisocalendar(int(y), int(w), 1)
    y, mth = period.split("-")
    return date(int(y), int(mth), 1)


def period_days(kind: str, period: str) -> int:
    if kind == "iso_week":
        return 7
    start = period_start(kind, period)
    nxt = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return (nxt - start).days


def next_period(kind: str, period: str) -> str:
    start = period_start(kind, period)
    if kind == "iso_week":
        return period_of(kind, start + timedelta(days=7))
    return period_of(kind, date(start.year + (start.month == 12), start.month % 12 + 1, 1))


def period_range(kind: str, first: str, last: str) -> list[str]:
    out = [first]
    while out[-1] < last:
        out.append(next_period(kind, out[-1]))
    return out


def same_period_in_year(kind: str, period: str, year: int) -> str | None:
    """The period with the same number (ISO week / month) in another year; None when that year
    has no such ISO week (week 53)."""
    if kind == "iso_week":
        w = int(period.split("-W")[1])
        try:
            date.fromisocalendar(year, w, 1)
        except ValueError:
            return None
        return f"{year}-W{w:02d}"
    return f"{year}-{period.split('-')[1]}"
