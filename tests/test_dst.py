"""Tests for cueflow.dst: cron fire times across DST transitions (spring forward, fall back)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.schedule_support import NY, fires, nxt, utc


def local_dates(times: list[datetime], tz: str) -> list[str]:
    return [t.astimezone(ZoneInfo(tz)).date().isoformat() for t in times]


def test_spring_forward_fires_once_at_0330_edt() -> None:
    got = fires("30 2 * * *", utc(2026, 3, 7), 3, NY)
    assert got == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert local_dates(got, NY) == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert got[1].astimezone(ZoneInfo(NY)).strftime("%H:%M %Z") == "03:30 EDT"


def test_fall_back_fires_in_both_repeated_hours_and_never_goes_back() -> None:
    got = fires("30 1 * * *", utc(2026, 10, 31), 4, NY)
    assert got == [
        utc(2026, 10, 31, 5, 30),
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT
        utc(2026, 11, 1, 6, 30),  # 01:30 EST
        utc(2026, 11, 2, 6, 30),
    ]
    assert local_dates(got, NY).count("2026-11-01") == 2
    assert got == sorted(set(got))


def test_sub_hourly_cron_keeps_a_steady_pace_across_transitions() -> None:
    spring = fires("*/20 * * * *", utc(2026, 3, 8, 6, 30), 5, NY)
    assert spring == [utc(2026, 3, 8, 6, 40) + timedelta(minutes=20 * i) for i in range(5)]
    fall = fires("*/20 * * * *", utc(2026, 11, 1, 4, 30), 9, NY)
    assert fall == [utc(2026, 11, 1, 4, 40) + timedelta(minutes=20 * i) for i in range(9)]


def test_apscheduler_dst_skips_are_corrected() -> None:
    # A zoned CronTrigger answers 2028-05-01 here (and skips the rest of the 2026-03-08 hours).
    assert nxt("@monthly", utc(2028, 3, 1, 5), NY) == utc(2028, 4, 1, 4)
    assert fires("0,30 1-2 * * *", utc(2026, 3, 8, 6, 45), 3, NY) == [
        utc(2026, 3, 8, 7),  # 02:00 read as EST = 03:00 EDT
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 9, 5),
    ]
    # After a skipped wall time's instant, the remaining skipped times still fire.
    assert fires("*/15 2 * * *", utc(2026, 3, 8, 7, 10), 3, NY) == [
        utc(2026, 3, 8, 7, 15),
        utc(2026, 3, 8, 7, 30),
        utc(2026, 3, 8, 7, 45),
    ]


@pytest.mark.parametrize(
    "tz", [NY, "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Antarctica/Troll"]
)
@pytest.mark.parametrize("expr", ["0 * * * *", "30 2 * * *", "*/25 0-3 * * *", "0 0 * * *"])
def test_fire_times_increase_and_match_the_wall_clock(tz: str, expr: str) -> None:
    zone = ZoneInfo(tz)
    got = fires(expr, utc(2026, 1, 1), 24 * 14 if expr.startswith("0 *") else 400, tz)
    assert all(a < b for a, b in itertools.pairwise(got))
    minutes = {"0 * * * *": {0}, "30 2 * * *": {30}, "*/25 0-3 * * *": {0, 25, 50}}
    for t in got:
        local = t.astimezone(zone)
        # A skipped wall time is read with the offset before the jump, so its minute can move.
        if local.utcoffset() == (t - timedelta(hours=3)).astimezone(zone).utcoffset():
            assert local.minute in minutes.get(expr, {0})
