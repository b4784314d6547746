"""Tests for cueflow.schedule: cron dialect, time zones, DST, validation, intervals, due ticks."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from cueflow import schedule as sched
from cueflow.errors import InvalidSchedule, InvalidTimezone
from cueflow.schedule import (
    Schedule,
    due_ticks,
    next_fire_after,
    parse_cron,
    resolve_timezone,
    validate,
)

NY = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cron(expr: str, tz: str = "UTC") -> Schedule:
    return Schedule(type="recurring", timezone=tz, cron=expr)


def fires(expr: str, after: datetime, n: int = 1, tz: str = "UTC") -> list[datetime]:
    out: list[datetime] = []
    for _ in range(n):
        nxt = next_fire_after(cron(expr, tz), out[-1] if out else after)
        assert nxt is not None
        out.append(nxt)
    return out


def nxt(expr: str, after: datetime, tz: str = "UTC") -> datetime:
    return fires(expr, after, 1, tz)[0]


# 2026-01-01 is a Thursday.
JAN1 = utc(2026, 1, 1)


# --------------------------------------------------------------------------- cron dialect


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", utc(2026, 1, 1, 0, 7), [utc(2026, 1, 1, 0, 15), utc(2026, 1, 1, 0, 30)]),
        ("1-30/5 * * * *", utc(2026, 1, 1, 0, 7), [utc(2026, 1, 1, 0, 11), utc(2026, 1, 1, 0, 16)]),
        ("26-59/5 * * * *", utc(2026, 1, 1, 0, 57), [utc(2026, 1, 1, 1, 26)]),
        ("5/20 * * * *", JAN1, [utc(2026, 1, 1, 0, 5), utc(2026, 1, 1, 0, 25)]),
        (
            "0,30 9-10 * * *",
            JAN1,
            [utc(2026, 1, 1, 9), utc(2026, 1, 1, 9, 30), utc(2026, 1, 1, 10)],
        ),
        ("50-10/10 * * * *", utc(2026, 1, 1, 0, 45), [utc(2026, 1, 1, 0, 50), utc(2026, 1, 1, 1)]),
        ("0 22-1 * * *", utc(2026, 1, 1, 12), [utc(2026, 1, 1, 22), utc(2026, 1, 1, 23)]),
        ("0 0 1 JAN-MAR *", utc(2026, 3, 15), [utc(2027, 1, 1), utc(2027, 2, 1)]),
        ("0 0 1 jul,Dec *", JAN1, [utc(2026, 7, 1), utc(2026, 12, 1)]),
        ("0 0 1 nov-feb *", utc(2026, 3, 1), [utc(2026, 11, 1), utc(2026, 12, 1), utc(2027, 1, 1)]),
        ("0 0 28-2 * *", utc(2026, 2, 3), [utc(2026, 2, 28), utc(2026, 3, 1), utc(2026, 3, 2)]),
    ],
)
def test_fields_ranges_steps_and_names(
    expr: str, after: datetime, expected: list[datetime]
) -> None:
    assert fires(expr, after, len(expected)) == expected


def test_weekday_names_are_case_insensitive() -> None:
    # Friday 2026-01-02 10:00 -> next weekday morning is Monday the 5th.
    assert fires("0 9 * * MON-FRI", utc(2026, 1, 2, 10), 2) == [
        utc(2026, 1, 5, 9),
        utc(2026, 1, 6, 9),
    ]
    assert fires("0 9 * * mon,FRI", JAN1, 2) == [utc(2026, 1, 2, 9), utc(2026, 1, 5, 9)]
    assert nxt("0 9 * * Fri", JAN1) == utc(2026, 1, 2, 9)


@pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN"])
def test_sunday_is_0_and_7(dow: str) -> None:
    assert fires(f"0 0 * * {dow}", JAN1, 2) == [utc(2026, 1, 4), utc(2026, 1, 11)]


@pytest.mark.parametrize(
    ("dow", "days"),
    [
        ("1-5", [2, 5, 6, 7, 8, 9, 12]),  # Mon-Fri (APScheduler would read 1-5 as Tue-Sat)
        ("5-0", [2, 3, 4, 9, 10, 11]),  # wraps: Fri, Sat, Sun
        ("5-7", [2, 3, 4, 9, 10, 11]),
        ("fri-mon", [2, 3, 4, 5, 9, 10]),
        ("7-1", [4, 5, 11, 12]),
        ("0-7", [2, 3, 4, 5, 6, 7]),
        ("1-5/2", [2, 5, 7, 9, 12]),  # Mon, Wed, Fri
        ("*/2", [3, 4, 6, 8, 10, 11]),  # Sun, Tue, Thu, Sat
    ],
)
def test_numeric_weekdays_follow_cron_numbering(dow: str, days: list[int]) -> None:
    assert fires(f"0 0 * * {dow}", JAN1, len(days)) == [utc(2026, 1, d) for d in days]


def test_question_mark_is_star_in_day_fields() -> None:
    assert fires("0 0 ? * ?", JAN1, 2) == [utc(2026, 1, 2), utc(2026, 1, 3)]
    assert fires("0 0 ? * 1", JAN1, 2) == [utc(2026, 1, 5), utc(2026, 1, 12)]


def test_last_day_of_month() -> None:
    assert fires("0 0 L * *", JAN1, 3) == [utc(2026, 1, 31), utc(2026, 2, 28), utc(2026, 3, 31)]
    assert nxt("0 0 l 2 *", utc(2027, 3, 1)) == utc(2028, 2, 29)
    assert fires("0 0 1,L * *", utc(2026, 1, 2), 2) == [utc(2026, 1, 31), utc(2026, 2, 1)]
    assert fires("0 0 29-L * *", utc(2026, 2, 1), 2) == [utc(2026, 3, 29), utc(2026, 3, 30)]


@pytest.mark.parametrize("dow", ["5L", "L5", "friL", "5l"])
def test_last_weekday_of_month(dow: str) -> None:
    assert fires(f"0 0 * * {dow}", JAN1, 3) == [
        utc(2026, 1, 30),
        utc(2026, 2, 27),
        utc(2026, 3, 27),
    ]


def test_nth_weekday_of_month() -> None:
    assert fires("0 0 * * 1#2", JAN1, 3) == [utc(2026, 1, 12), utc(2026, 2, 9), utc(2026, 3, 9)]
    assert nxt("0 0 * * mon#2", JAN1) == utc(2026, 1, 12)
    assert fires("0 0 * * 0#1", JAN1, 2) == [utc(2026, 1, 4), utc(2026, 2, 1)]
    assert nxt("0 0 * * 7#1", JAN1) == utc(2026, 1, 4)
    # A fifth Monday exists only in some months.
    assert fires("0 0 * * 1#5", JAN1, 2) == [utc(2026, 3, 30), utc(2026, 6, 29)]
    assert fires("0 0 * * 1#2,3#1", JAN1, 3) == [utc(2026, 1, 7), utc(2026, 1, 12), utc(2026, 2, 4)]


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@monthly", utc(2026, 2, 1)),
        ("@weekly", utc(2026, 1, 4)),
        ("@daily", utc(2026, 1, 2)),
        ("@midnight", utc(2026, 1, 2)),
        ("@hourly", utc(2026, 1, 1, 1)),
        ("@DAILY", utc(2026, 1, 2)),
    ],
)
def test_aliases(alias: str, expected: datetime) -> None:
    assert nxt(alias, JAN1) == expected


def test_six_fields_end_with_seconds() -> None:
    assert fires("0 0 * * * 7", JAN1, 2) == [utc(2026, 1, 1, 0, 0, 7), utc(2026, 1, 2, 0, 0, 7)]
    assert fires("* * * * * */20", JAN1, 3) == [
        utc(2026, 1, 1, 0, 0, 20),
        utc(2026, 1, 1, 0, 0, 40),
        utc(2026, 1, 1, 0, 1, 0),
    ]


def test_seven_fields_end_with_year() -> None:
    assert fires("0 0 1 1 * 0 2027-2028", JAN1, 2) == [utc(2027, 1, 1), utc(2028, 1, 1)]
    assert next_fire_after(cron("0 0 1 1 * 0 2027"), utc(2027, 6, 1)) is None


def test_day_of_month_or_day_of_week() -> None:
    # Both restricted: the 13th OR any Friday (APScheduler alone would AND them).
    assert fires("0 0 13 * 5", JAN1, 5) == [
        utc(2026, 1, 2),
        utc(2026, 1, 9),
        utc(2026, 1, 13),
        utc(2026, 1, 16),
        utc(2026, 1, 23),
    ]
    assert isinstance(parse_cron("0 0 13 * 5", ZoneInfo("UTC")), OrTrigger)
    # Last day of the month OR Friday; first Monday OR the 15th.
    assert fires("0 0 L * 5", utc(2026, 1, 24), 2) == [utc(2026, 1, 30), utc(2026, 1, 31)]
    assert fires("0 0 15 * 1#1", JAN1, 3) == [utc(2026, 1, 5), utc(2026, 1, 15), utc(2026, 2, 2)]
    # croniter's rule: a list covering every day still counts as restricted...
    assert fires("0 0 1-31 * 1", JAN1, 2) == [utc(2026, 1, 2), utc(2026, 1, 3)]
    # ...but with '*' in one field the other alone decides.
    assert fires("0 0 * * 5", JAN1, 2) == [utc(2026, 1, 2), utc(2026, 1, 9)]
    assert fires("0 0 13 * *", JAN1, 2) == [utc(2026, 1, 13), utc(2026, 2, 13)]


def test_parse_cron_returns_zoned_apscheduler_trigger() -> None:
    tz = ZoneInfo(NY)
    trigger = parse_cron("0 9 * * 1-5", tz)
    assert isinstance(trigger, CronTrigger)
    assert isinstance(trigger, BaseTrigger)
    assert trigger.timezone == tz
    fields = {field.name: str(field) for field in trigger.fields}
    assert fields["day_of_week"] == "mon-fri"  # cron 1-5, in APScheduler's Monday-first names
    assert (fields["hour"], fields["minute"], fields["second"], fields["day"]) == (
        "9",
        "0",
        "0",
        "*",
    )


@pytest.mark.parametrize(
    "expr",
    [
        "@reboot",
        "H * * * *",
        "H/5 * * * *",
        "61 * * * *",
        "* 24 * * *",
        "0 0 0 * *",
        "0 0 32 * *",
        "0 0 * 13 *",
        "0 0 * 0 *",
        "0 0 * * 8",
        "0 0 * * * 60",
        "0 0 * * * 0 1969",
        "0 0 * * * 0 2100",
        "0 0 * * * 0 2020",  # only in the past
        "",
        "   ",
        "* * * *",
        "* * * * * * * *",
        "0 9 31 2 *",
        "0 0 30 2 *",
        "*/0 * * * *",
        "-1 * * * *",
        "1,,2 * * * *",
        "mon * * * *",
        "0 0 * jan *x",
        "0 0 * * L",
        "0 0 15W * *",
        "0 0 LW * *",
        "0 0 * * 1#6",
        "0 0 * * 1#0",
        "0 0 * * 1-3#2",
        "0 0 * * 1#2,3",
        "? * * * *",
        "0 0 1? * *",
        "0 0 * * foo",
        "0 0 \u0661 * *",  # a non-ASCII digit
    ],
)
def test_invalid_cron(expr: str) -> None:
    with pytest.raises(InvalidSchedule, match=r"^Invalid cron expression$"):
        parse_cron(expr, ZoneInfo("UTC"))


def test_cron_length_limit() -> None:
    at_limit = "0 0 * * *" + " " * 91  # extra blanks between or around fields are fine
    assert len(at_limit) == 100
    assert nxt(at_limit, JAN1) == utc(2026, 1, 2)
    for too_long in (at_limit + " ", ",".join(["1"] * 50) + " * * * *"):
        assert len(too_long) > 100
        with pytest.raises(InvalidSchedule, match="Invalid cron expression"):
            parse_cron(too_long, ZoneInfo("UTC"))


def test_rare_but_possible_cron_is_valid() -> None:
    parse_cron("0 0 29 2 *", ZoneInfo("UTC"))  # leap day
    parse_cron("0 0 * 2 1#5", ZoneInfo("UTC"))  # fifth Monday of February: next in 2044
    parse_cron("0 0 1 1 * 0 2099", ZoneInfo("UTC"))  # the last year the year field allows


# --------------------------------------------------------------------------- time zones


def test_cron_in_a_time_zone() -> None:
    la = "America/Los_Angeles"
    assert nxt("0 9 * * *", utc(2026, 1, 15), la) == utc(2026, 1, 15, 17)  # PST
    assert nxt("0 9 * * *", utc(2026, 7, 15), la) == utc(2026, 7, 15, 16)  # PDT
    assert nxt("0 9 * * *", utc(2026, 1, 15), "Asia/Kolkata") == utc(2026, 1, 15, 3, 30)
    assert nxt("0 9 * * *", utc(2026, 1, 15, 4), "asia/kolkata") == utc(2026, 1, 16, 3, 30)


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


# --------------------------------------------------------------------------- validate

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


# --------------------------------------------------------------------------- once / interval


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


# --------------------------------------------------------------------------- DST


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


# --------------------------------------------------------------------------- due_ticks


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
