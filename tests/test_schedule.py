"""Tests for cueflow.schedule: time zones, validation, once and interval fire times, due ticks."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cueflow import schedule as sched
from cueflow.errors import InvalidSchedule, InvalidTimezone
from cueflow.schedule import Schedule, due_ticks, next_fire_after, resolve_timezone, validate
from tests.schedule_support import NY, cron, utc

# ----------------------------------------------------------------- time zones


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("America/New_York", "America/New_York"),
        ("america/new_york", "America/New_York"),
        ("AMERICA/NEW_YORK", "America/New_York"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Etc/GMT+5", "Etc/GMT+5"),
        ("etc/gmt+5", "Etc/GMT+5"),
        ("US/Pacific", "US/Pacific"),
        ("EST", "EST"),
        ("europe/london", "Europe/London"),
    ],
)
def test_resolve_timezone(name: str, key: str) -> None:
    zone = resolve_timezone(name)
    assert isinstance(zone, ZoneInfo)
    assert zone.key == key


@pytest.mark.parametrize("name", ["Mars/Base", "+05:00", "Z", "", "UTC+5", "America/", " UTC"])
def test_resolve_timezone_rejects_unknown_names(name: str) -> None:
    with pytest.raises(InvalidTimezone) as info:
        resolve_timezone(name)
    assert info.value.message == f"Unknown timezone: '{name}'"
    assert (info.value.code, info.value.status) == ("invalid_timezone", 422)


# ------------------------------------------------------------------- validate


NOW = utc(2026, 5, 1, 12)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(type="weekly"), "Schedule type must be 'once' or 'recurring'"),
        (Schedule(type="recurring"), "Cron expression is required for recurring schedules"),
        (
            Schedule(type="recurring", cron=""),
            "Cron expression is required for recurring schedules",
        ),
        (
            Schedule(type="recurring", cron="  "),
            "Cron expression is required for recurring schedules",
        ),
        (Schedule(type="recurring", cron="61 * * * *"), "Invalid cron expression"),
        (Schedule(type="recurring", cron="0 9 31 2 *"), "Invalid cron expression"),
        (Schedule(type="once"), "Timestamp is required for one-time schedules"),
        (Schedule(type="once", at=NOW), "Scheduled time must be in the future"),
        (Schedule(type="once", at=NOW - timedelta(days=1)), "Scheduled time must be in the future"),
        (Schedule(type="interval"), "interval_seconds must be a positive integer"),
        (
            Schedule(type="interval", interval_seconds=0),
            "interval_seconds must be a positive integer",
        ),
        (
            Schedule(type="interval", interval_seconds=-5),
            "interval_seconds must be a positive integer",
        ),
        (
            Schedule(type="interval", interval_seconds=1.5),
            "interval_seconds must be a positive integer",
        ),  # type: ignore[arg-type]
        (
            Schedule(type="interval", interval_seconds=True),
            "interval_seconds must be a positive integer",
        ),
    ],
)
def test_validate_rejects(schedule: Schedule, message: str) -> None:
    with pytest.raises(InvalidSchedule) as info:
        validate(schedule, NOW)
    assert info.value.message == message
    assert (info.value.code, info.value.status) == ("invalid_schedule", 400)


def test_validate_checks_the_timezone_first() -> None:
    with pytest.raises(InvalidTimezone, match="Unknown timezone: 'Mars/Base'"):
        validate(Schedule(type="weekly", timezone="Mars/Base"), NOW)
    with pytest.raises(InvalidTimezone, match="Unknown timezone: 'Mars/Base'"):
        validate(Schedule(type="recurring", timezone="Mars/Base"), NOW)
    with pytest.raises(InvalidTimezone, match=r"Unknown timezone: '\+05:00'"):
        validate(Schedule(type="once", timezone="+05:00", at=NOW + timedelta(hours=1)), NOW)


def test_validate_accepts_and_normalises() -> None:
    recurring = Schedule(type="recurring", timezone="america/new_york", cron="0 9 * * MON-FRI")
    assert validate(recurring, NOW) == recurring  # timezone and cron kept as sent
    assert validate(Schedule(type="interval", interval_seconds=1), NOW).interval_seconds == 1

    naive = validate(Schedule(type="once", at=datetime(2026, 5, 2, 9, 30)), NOW)
    assert naive.at == utc(2026, 5, 2, 9, 30)
    assert naive.at is not None and naive.at.tzinfo is UTC

    plus_two = timezone(timedelta(hours=2))
    aware = validate(Schedule(type="once", at=datetime(2026, 5, 2, 9, 30, tzinfo=plus_two)), NOW)
    assert aware.at == utc(2026, 5, 2, 7, 30)
    assert aware.at is not None and aware.at.utcoffset() == timedelta(0)

    # A naive `at` is UTC, so 11:00 naive is in the past at 12:00 UTC.
    with pytest.raises(InvalidSchedule, match="Scheduled time must be in the future"):
        validate(Schedule(type="once", at=datetime(2026, 5, 1, 11)), NOW)


# ------------------------------------------------------------ once / interval


def test_once_fires_only_before_at() -> None:
    once = Schedule(type="once", at=utc(2026, 5, 2, 9))
    assert next_fire_after(once, NOW) == utc(2026, 5, 2, 9)
    assert next_fire_after(once, utc(2026, 5, 2, 9)) is None
    assert next_fire_after(once, utc(2026, 6, 1)) is None
    assert next_fire_after(Schedule(type="once", at=datetime(2026, 5, 2, 9)), NOW) == utc(
        2026, 5, 2, 9
    )


def test_interval_ticks_stay_on_the_anchor_grid() -> None:
    every_minute = Schedule(type="interval", interval_seconds=60)
    anchor = utc(2026, 1, 1, 12, 0, 0)
    assert next_fire_after(every_minute, utc(2026, 1, 1, 12, 5, 30), anchor=anchor) == utc(
        2026, 1, 1, 12, 6
    )
    assert next_fire_after(every_minute, utc(2026, 1, 1, 12, 6), anchor=anchor) == utc(
        2026, 1, 1, 12, 7
    )
    assert next_fire_after(every_minute, anchor, anchor=anchor) == utc(2026, 1, 1, 12, 1)
    assert next_fire_after(every_minute, utc(2026, 1, 1, 11), anchor=anchor) == anchor
    # Without an anchor the grid starts at `after`.
    assert next_fire_after(every_minute, utc(2026, 1, 1, 12, 5, 30)) == utc(2026, 1, 1, 12, 6, 30)


def test_interval_grid_is_exact_far_from_the_anchor() -> None:
    seven = Schedule(type="interval", interval_seconds=7)
    anchor = datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    after = utc(2026, 6, 1, 12, 34, 56)
    got = next_fire_after(seven, after, anchor=anchor)
    assert got is not None
    assert got > after >= got - timedelta(seconds=7)
    assert (got - anchor) % timedelta(seconds=7) == timedelta(0)
    assert got.microsecond == 123456


# ------------------------------------------------------------------ due_ticks


def test_due_ticks_returns_all_when_under_the_limit() -> None:
    every_15 = cron("*/15 * * * *")
    ticks, dropped = due_ticks(every_15, utc(2026, 1, 1, 0), utc(2026, 1, 1, 1), limit=10)
    assert ticks == [utc(2026, 1, 1, 0, m) for m in (0, 15, 30, 45)] + [utc(2026, 1, 1, 1)]
    assert dropped == 0


def test_due_ticks_keeps_the_most_recent() -> None:
    every_15 = cron("*/15 * * * *")
    ticks, dropped = due_ticks(every_15, utc(2026, 1, 1, 0), utc(2026, 1, 1, 1, 5), limit=2)
    assert ticks == [utc(2026, 1, 1, 0, 45), utc(2026, 1, 1, 1)]
    assert dropped == 3


def test_due_ticks_edge_cases() -> None:
    every_15 = cron("*/15 * * * *")
    assert due_ticks(every_15, utc(2026, 1, 1, 1), utc(2026, 1, 1, 0), limit=5) == ([], 0)
    assert due_ticks(every_15, utc(2026, 1, 1, 1), utc(2026, 1, 1, 1), limit=5) == (
        [utc(2026, 1, 1, 1)],
        0,
    )
    once = Schedule(type="once", at=utc(2026, 1, 1, 1))
    assert due_ticks(once, utc(2026, 1, 1, 1), utc(2026, 2, 1), limit=5) == (
        [utc(2026, 1, 1, 1)],
        0,
    )
    with pytest.raises(ValueError):
        due_ticks(every_15, utc(2026, 1, 1), utc(2026, 1, 2), limit=0)


def test_due_ticks_interval_grid() -> None:
    every_minute = Schedule(type="interval", interval_seconds=60)
    anchor = utc(2026, 1, 1, 12)
    ticks, dropped = due_ticks(
        every_minute, utc(2026, 1, 1, 12, 1), utc(2026, 1, 1, 12, 10, 5), limit=3, anchor=anchor
    )
    assert ticks == [utc(2026, 1, 1, 12, 8), utc(2026, 1, 1, 12, 9), utc(2026, 1, 1, 12, 10)]
    assert dropped == 7


def test_due_ticks_across_fall_back() -> None:
    ticks, dropped = due_ticks(
        cron("30 1 * * *", NY), utc(2026, 10, 31, 5, 30), utc(2026, 11, 3), limit=10
    )
    assert ticks == [
        utc(2026, 10, 31, 5, 30),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 6, 30),
        utc(2026, 11, 2, 6, 30),
    ]
    assert dropped == 0


def test_due_ticks_past_the_step_cap_joins_head_and_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sched, "MAX_DUE_STEPS", 10)
    ticks, dropped = due_ticks(cron("* * * * *"), utc(2026, 1, 1), utc(2026, 1, 1, 0, 15), limit=10)
    assert ticks == [utc(2026, 1, 1, 0, m) for m in range(6, 16)]
    assert dropped == 6  # exact: the search reached back to the walked part


def test_due_ticks_small_cap_on_a_per_second_cron_for_a_year(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sched, "MAX_DUE_STEPS", 1_000)
    first, now = utc(2025, 1, 1), utc(2026, 1, 1, 0, 0, 0)
    ticks, dropped = due_ticks(cron("* * * * * *"), first, now, limit=5)
    assert ticks == [now - timedelta(seconds=s) for s in range(4, -1, -1)]
    assert 1_000 - 5 < dropped < 365 * 86400  # a lower bound past the cap
    # Interval schedules are counted exactly even past the cap.
    every_second = Schedule(type="interval", interval_seconds=1)
    ticks, dropped = due_ticks(every_second, first, now, limit=5)
    assert ticks == [now - timedelta(seconds=s) for s in range(4, -1, -1)]
    assert dropped == 365 * 86400 + 1 - 5


def test_due_ticks_per_second_cron_missed_for_a_year_is_bounded() -> None:
    started = time.perf_counter()
    now = utc(2026, 1, 1, 0, 0, 0)
    ticks, dropped = due_ticks(cron("* * * * * *", NY), utc(2025, 1, 1), now, limit=3)
    assert time.perf_counter() - started < 20  # ~2 s: MAX_DUE_STEPS bounds the walk
    assert ticks == [now - timedelta(seconds=2), now - timedelta(seconds=1), now]
    assert sched.MAX_DUE_STEPS - 3 <= dropped < 365 * 86400
