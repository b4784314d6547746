"""Shorthands for the schedule tests: UTC times, cron schedules and their next fire times."""

from __future__ import annotations

from datetime import UTC, datetime

from cueflow.schedule import Schedule, next_fire_after

NY = "America/New_York"


def utc(*args: int) -> datetime:
    """``datetime(*args)`` in UTC."""
    return datetime(*args, tzinfo=UTC)


def cron(expr: str, tz: str = "UTC") -> Schedule:
    """A recurring schedule on ``expr`` in ``tz``."""
    return Schedule(type="recurring", timezone=tz, cron=expr)


def fires(expr: str, after: datetime, n: int = 1, tz: str = "UTC") -> list[datetime]:
    """The ``n`` fire times of ``expr`` in ``tz`` after ``after``."""
    out: list[datetime] = []
    for _ in range(n):
        nxt = next_fire_after(cron(expr, tz), out[-1] if out else after)
        assert nxt is not None
        out.append(nxt)
    return out


def nxt(expr: str, after: datetime, tz: str = "UTC") -> datetime:
    """The first fire time of ``expr`` in ``tz`` after ``after``."""
    return fires(expr, after, 1, tz)[0]


# 2026-01-01 is a Thursday.
JAN1 = utc(2026, 1, 1)
