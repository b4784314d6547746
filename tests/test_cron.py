"""Tests for cueflow.cron: the cron dialect, its limits and its APScheduler triggers."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from cueflow.cron import parse_cron
from cueflow.errors import InvalidSchedule
from cueflow.schedule import next_fire_after
from tests.schedule_support import JAN1, NY, cron, fires, nxt, utc


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


def test_cron_in_a_time_zone() -> None:
    la = "America/Los_Angeles"
    assert nxt("0 9 * * *", utc(2026, 1, 15), la) == utc(2026, 1, 15, 17)  # PST
    assert nxt("0 9 * * *", utc(2026, 7, 15), la) == utc(2026, 7, 15, 16)  # PDT
    assert nxt("0 9 * * *", utc(2026, 1, 15), "Asia/Kolkata") == utc(2026, 1, 15, 3, 30)
    assert nxt("0 9 * * *", utc(2026, 1, 15, 4), "asia/kolkata") == utc(2026, 1, 16, 3, 30)
