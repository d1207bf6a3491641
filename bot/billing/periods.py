"""Quota periods: calendar days, ISO weeks (from Monday 00:00) or months, all in UTC. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

PeriodKind = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Period:
    """One calendar period in UTC."""

    kind: PeriodKind
    label: str  # day "2026-11-25", ISO week "2026-W48", month "2026-11"
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive (the next period's start)


def period_at(now: datetime, kind: PeriodKind) -> Period:
    """The ``kind`` period containing ``now``, which must be timezone-aware (naive raises ``ValueError``)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"period_at needs a timezone-aware datetime, got naive {now.isoformat()}")
    utc = now.astimezone(UTC)
    day = datetime(utc.year, utc.month, utc.day, tzinfo=UTC)
    if kind == "day":
        return Period(kind, day.date().isoformat(), day, day + timedelta(days=1))
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        iso = monday.date().isocalendar()
        return Period(kind, f"{iso.year}-W{iso.week:02d}", monday, monday + timedelta(days=7))
    if kind == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
        return Period(kind, f"{start.year:04d}-{start.month:02d}", start, end)
    raise ValueError(f"period kind must be day, week or month, got {kind!r}")


def format_moment(moment: datetime) -> str:
    """How a period's end (a reset time) reads to users: ``2026-12-01 00:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
