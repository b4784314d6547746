"""Schedules: validation and fire-time computation (pure computation, no I/O, no database).

Every fire time comes from an APScheduler 3.x trigger: ``DateTrigger`` for one-time schedules,
``IntervalTrigger`` for fixed intervals and ``CronTrigger`` (``OrTrigger`` of two when cron's
day-of-month/day-of-week OR rule applies) for recurring ones, evaluated in a ``ZoneInfo`` zone.

Cron dialect: the croniter 6.2 dialect CueAPI accepted, translated field by field (never with
``CronTrigger.from_crontab``, whose weekday 0 is Monday). Five fields
``minute hour day month day_of_week``, an optional 6th field of seconds and 7th of years
(1970-2099); names (``MON-FRI``, ``jan-mar``), lists, ranges, steps (``*/15``, ``1-30/5``,
``5/15``), ranges that wrap (``5-0`` = ``fri,sat,sun``; ``50-10`` minutes), ``?`` for ``*`` in
the day fields, weekday 0 and 7 = Sunday, ``L`` (last day) in day-of-month, ``5L``/``L5`` (last
Friday) and ``1#2`` (second Monday) in day-of-week, and the ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly`` aliases. When both day fields
are restricted a time matches if EITHER does (croniter's rule, including its quirk that a list
covering every day still counts as restricted unless the other field contains ``*``).
Rejected: ``@reboot``, Jenkins ``H``/``R``, ``W`` (nearest weekday), a bare ``L`` in
day-of-week, ranges with ``#``. A cron that cannot fire within 50 years is invalid.
Deliberate departures from croniter quirks: ``5-5`` means 5 (croniter: every value) and
wrapped ranges with a step continue the step across the wrap (``nov-feb/3`` = nov, feb).

Daylight saving time, as APScheduler 3.11 does it with ``zoneinfo`` (pinned by the tests):

* Spring forward: a wall time that does not exist is read with the offset in force before the
  jump, so in America/New_York ``30 2 * * *`` fires once on 2026-03-08, at 07:30 UTC = 03:30
  EDT (croniter said 03:00 EDT). Sub-hourly crons are not doubled: the vanished slots land on
  instants that real slots already occupy.
* Fall back: a wall time in the repeated hour fires twice, once per offset: ``30 1 * * *``
  fires on 2026-11-01 at 01:30 EDT (05:30 UTC) and again at 01:30 EST (06:30 UTC), as croniter.
* Fire times are strictly increasing: each is asked for strictly after the previous one, in UTC.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import MONTHS, WEEKDAYS
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cueflow.errors import InvalidSchedule, InvalidTimezone

ScheduleType = Literal["once", "recurring", "interval"]

SCHEDULE_TYPES: tuple[str, ...] = ("once", "recurring", "interval")
MAX_CRON_LENGTH = 100
#: A cron with no fire time within this horizon is rejected as one that can never fire.
NEVER_FIRES_HORIZON = timedelta(days=365 * 50)
#: ``due_ticks`` walks at most this many ticks forward from ``first``; past it, dropped is a
#: lower bound.
MAX_DUE_STEPS = 100_000

_TICK = timedelta(microseconds=1)
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {name: i + 1 for i, name in enumerate(MONTHS)}
_APS_DAYS = tuple(WEEKDAYS)  # APScheduler 3.x numbering: 0 = Monday
_DOWS = {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)}  # cron numbering: 0 = Sunday
_NTH = ("1st", "2nd", "3rd", "4th", "5th")
_ITEM = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")
_SPECIAL_DOW = re.compile(r"([a-z0-9]+)#([1-5])|l([a-z0-9]+)|([a-z0-9]+)l")

Spec = tuple[tuple[tuple[str, str], ...], ...]  # CronTrigger keyword sets, OR-ed together


@dataclass(frozen=True)
class Schedule:
    """When a cue fires: once at ``at``, on a ``cron`` in ``timezone``, or every N seconds."""

    type: str  # "once" | "recurring" | "interval"
    timezone: str = "UTC"  # stored exactly as the user sent it
    cron: str | None = None
    at: datetime | None = None  # aware UTC
    interval_seconds: int | None = None


@cache
def _timezone_index() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def resolve_timezone(name: str) -> ZoneInfo:
    """Look an IANA zone name up case-insensitively; raise :class:`InvalidTimezone` if unknown.

    Only names from the tz database are accepted: offsets such as ``+05:00`` or ``Z`` are not.
    """
    key = _timezone_index().get(name.lower()) if isinstance(name, str) else None
    if key is not None:
        try:
            return ZoneInfo(key)
        except (KeyError, ValueError, OSError):  # listed, but the database cannot load it
            pass
    raise InvalidTimezone(f"Unknown timezone: '{name}'")


def _bad_cron() -> InvalidSchedule:
    return InvalidSchedule("Invalid cron expression")


def _number(token: str, lo: int, hi: int, names: dict[str, int]) -> int:
    value = int(token) if token.isascii() and token.isdigit() else names.get(token)
    if value is None or not lo <= value <= hi:
        raise _bad_cron()
    return value


def _expand(item: str, lo: int, top: int, hi: int, names: dict[str, int]) -> set[int]:
    """Values of one list item; ``top`` is the field's last value, ``hi`` the largest allowed."""
    match = _ITEM.fullmatch(item)
    if match is None:
        raise _bad_cron()
    span, step_text = match.groups()
    step = int(step_text) if step_text else 1
    if step < 1:
        raise _bad_cron()
    if span == "*":
        first, last = lo, top
    else:
        start, _, end = span.partition("-")
        first = _number(start, lo, hi, names)
        last = _number(end, lo, hi, names) if end else (top if step_text else first)
    size = top - lo + 1
    if last < first:  # a range that wraps past the field's end, e.g. fri-sun written 5-0
        last += size
    return {lo + (value - lo) % size for value in range(first, last + 1, step)}


def _render(values: set[int], lo: int, hi: int, names: tuple[str, ...] | None = None) -> str:
    """An APScheduler field expression for ``values``: ``*`` or a list of runs."""
    if values == set(range(lo, hi + 1)):
        return "*"
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    label = (lambda v: names[v]) if names else str
    return ",".join(label(a) if a == b else f"{label(a)}-{label(b)}" for a, b in runs)


def _plain(part: str, lo: int, hi: int, names: dict[str, int] | None = None) -> str:
    values: set[int] = set()
    for item in part.split(","):
        values |= _expand(item, lo, hi, hi, names or {})
    return _render(values, lo, hi)


def _day_of_month(part: str) -> tuple[str, bool]:
    """APScheduler ``day`` expression and whether it covers every day."""
    values: set[int] = set()
    last = False
    for item in part.split(","):
        if item == "l":
            last = True
            continue
        values |= _expand(item[:-1] + "31" if item.endswith("-l") else item, 1, 31, 31, {})
    full = values == set(range(1, 32))
    expr = _render(values, 1, 31) if values else ""
    return ("last" if not values else expr + ",last") if last and not full else expr, full


def _day_of_week(part: str) -> tuple[str, str, bool]:
    """(APScheduler field, expression, covers every day); ``#``/``L`` items go in ``day``."""
    plain: set[int] = set()
    special: list[str] = []
    for item in part.split(","):
        match = _SPECIAL_DOW.fullmatch(item)
        if match is None:
            plain |= _expand(item, 0, 6, 7, _DOWS)
            continue
        day_text, nth, last_a, last_b = match.groups()
        day = _number(day_text or last_a or last_b, 0, 7, _DOWS) % 7
        special.append(f"{_NTH[int(nth) - 1] if nth else 'last'} {_APS_DAYS[(day + 6) % 7]}")
    if special and plain:  # croniter cannot mix them either
        raise _bad_cron()
    if special:
        return "day", ",".join(special), False
    aps_days = {(day + 6) % 7 for day in plain}
    return "day_of_week", _render(aps_days, 0, 6, _APS_DAYS), len(plain) == 7


@lru_cache(maxsize=1024)
def _spec(expr: str) -> Spec:
    """Translate a cron expression into CronTrigger keyword sets, OR-ed when more than one."""
    if not isinstance(expr, str) or len(expr) > MAX_CRON_LENGTH:
        raise _bad_cron()
    text = expr.strip().lower()
    parts = _ALIASES.get(text, text).split()
    if len(parts) not in (5, 6, 7):
        raise _bad_cron()
    minute, hour, dom, month, dow, second, year = parts + ["0", "*"][len(parts) - 5 :]
    common = (
        ("minute", _plain(minute, 0, 59)),
        ("hour", _plain(hour, 0, 23)),
        ("month", _plain(month, 1, 12, _MONTHS)),
        ("second", _plain(second, 0, 59)),
        ("year", _plain(year, 1970, 2099)),
    )
    day_expr, dom_full = _day_of_month("*" if dom == "?" else dom)
    dow_field, dow_expr, dow_full = _day_of_week("*" if dow == "?" else dow)
    dom_free = dom in ("*", "?") or (dom_full and "*" in dow)
    dow_free = dow in ("*", "?") or (dow_full and "*" in dom)
    if not dom_free and not dow_free:
        return ((*common, ("day", day_expr)), (*common, (dow_field, dow_expr)))
    if dow_free:
        return ((*common, ("day", day_expr)),)
    return ((*common, (dow_field, dow_expr)),)


def _build(spec: Spec, tz: ZoneInfo, end_date: datetime | None = None) -> BaseTrigger:
    triggers = [CronTrigger(timezone=tz, end_date=end_date, **dict(kw)) for kw in spec]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


@lru_cache(maxsize=1024)
def _trigger(expr: str, tz: ZoneInfo) -> BaseTrigger:
    return _build(_spec(expr), tz)


def parse_cron(expr: str, tz: ZoneInfo) -> BaseTrigger:
    """Translate a cron expression into an APScheduler trigger in ``tz``.

    Raises :class:`InvalidSchedule` ("Invalid cron expression") for anything outside the
    dialect, expressions over 100 characters and ones that cannot fire within 50 years.
    """
    spec = _spec(expr)
    now = datetime.now(UTC)
    if _build(spec, tz, end_date=now + NEVER_FIRES_HORIZON).get_next_fire_time(None, now) is None:
        raise _bad_cron()
    return _trigger(expr, tz)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _interval(schedule: Schedule) -> timedelta:
    seconds = schedule.interval_seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise InvalidSchedule("interval_seconds must be a positive integer")
    return timedelta(seconds=seconds)


def validate(schedule: Schedule, now: datetime) -> Schedule:
    """Check a schedule at create/update time and return it normalised (``at`` aware UTC).

    Raises :class:`InvalidSchedule` or :class:`InvalidTimezone` with the contract's messages.
    """
    if schedule.type not in SCHEDULE_TYPES:
        raise InvalidSchedule("Schedule type must be 'once' or 'recurring'")
    tz = resolve_timezone(schedule.timezone)
    if schedule.type == "recurring":
        if not isinstance(schedule.cron, str) or not schedule.cron.strip():
            raise InvalidSchedule("Cron expression is required for recurring schedules")
        parse_cron(schedule.cron, tz)
        return schedule
    if schedule.type == "once":
        if not isinstance(schedule.at, datetime):
            raise InvalidSchedule("Timestamp is required for one-time schedules")
        at = _utc(schedule.at)
        if at <= _utc(now):
            raise InvalidSchedule("Scheduled time must be in the future")
        return replace(schedule, at=at)
    _interval(schedule)
    return schedule


def next_fire_after(
    schedule: Schedule, after: datetime, *, anchor: datetime | None = None
) -> datetime | None:
    """The first fire time strictly after ``after`` (aware UTC), or ``None`` if there is none.

    Interval ticks lie on the grid ``anchor + k * interval_seconds`` (``anchor`` defaults to
    ``after``); cron times are whole seconds.
    """
    after = _utc(after)
    if schedule.type == "once":
        if schedule.at is None:
            return None
        fire = DateTrigger(run_date=_utc(schedule.at), timezone=UTC).get_next_fire_time(None, after)
        return fire if fire > after else None
    if schedule.type == "interval":
        step = _interval(schedule)
        start = after if anchor is None else _utc(anchor)
        trigger = IntervalTrigger(seconds=step.total_seconds(), start_date=start, timezone=UTC)
        fire = trigger.get_next_fire_time(None, after + _TICK)
        fire = start + round((fire - start) / step) * step  # exact grid (trigger uses floats)
        return fire if fire > after else fire + step
    if schedule.type == "recurring":
        trigger = _trigger(schedule.cron or "", resolve_timezone(schedule.timezone))
        fire = trigger.get_next_fire_time(None, after + _TICK)  # returns >= now: skip `after`
        return None if fire is None else fire.astimezone(UTC)
    raise InvalidSchedule("Schedule type must be 'once' or 'recurring'")


def _walk(
    schedule: Schedule,
    start: datetime,
    now: datetime,
    window: deque[datetime],
    anchor: datetime | None,
    cap: int,
) -> tuple[int, bool]:
    """Append fire times in (start, now] to ``window``; (count, reached now within ``cap``)."""
    count = 0
    fire = next_fire_after(schedule, start, anchor=anchor)
    while fire is not None and fire <= now:
        if count >= cap:
            return count, False
        window.append(fire)
        count += 1
        fire = next_fire_after(schedule, fire, anchor=anchor)
    return count, True


def due_ticks(
    schedule: Schedule,
    first: datetime,
    now: datetime,
    *,
    limit: int,
    anchor: datetime | None = None,
) -> tuple[list[datetime], int]:
    """Fire times ``first <= t <= now`` (``first`` is itself due): the ``limit`` most recent,
    oldest first, and how many older ones were dropped.

    Walks at most :data:`MAX_DUE_STEPS` ticks from ``first``; if more are due it finds the most
    recent ``limit`` by searching back from ``now``, and the dropped count is then a lower bound
    (exact for interval schedules). Interval ticks use ``anchor`` (default ``first``) as grid.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    first, now = _utc(first), _utc(now)
    if first > now:
        return [], 0
    if schedule.type == "interval" and anchor is None:
        anchor = first
    window: deque[datetime] = deque([first], maxlen=limit)
    count, complete = _walk(schedule, first, now, window, anchor, MAX_DUE_STEPS - 1)
    count += 1
    if complete:
        return list(window), count - len(window)
    walked, span = window[-1], now - window[-1]
    delta = min(max((walked - first) / max(count - 1, 1) * limit * 2, timedelta(seconds=1)), span)
    low, high = timedelta(0), None  # windows known to hold too few / too many ticks
    for _ in range(64):
        tail: deque[datetime] = deque(maxlen=limit)
        found, complete = _walk(schedule, now - delta, now, tail, anchor, 4 * limit + 1000)
        if complete and (found >= limit or delta >= span):
            if delta >= span:  # the tail joins the walked head: the count is exact
                tail = deque([*window, *tail], maxlen=limit)
            ticks = list(tail)
            dropped = count + found - len(ticks)
            if schedule.type == "interval" and ticks[0] != first:
                grid = next_fire_after(schedule, first, anchor=anchor) or ticks[0]
                dropped = 1 + (ticks[0] - grid) // _interval(schedule)
            return ticks, dropped
        low, high = (delta, high) if complete else (low, delta)
        delta = min(delta * 2, span) if high is None else (low + high) / 2
    return list(window), count - len(window)  # not reached: cron ticks are >= 1 s apart
