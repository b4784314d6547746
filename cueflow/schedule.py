"""Schedules: validation and fire-time computation (pure computation, no I/O, no database).

Fire times come from APScheduler 3.x triggers: ``DateTrigger`` (once), ``IntervalTrigger``
(interval) and, for recurring, the cron dialect of :mod:`cueflow.cron` evaluated on wall-clock
time and mapped to instants across DST by :mod:`cueflow.dst`. :func:`due_ticks` walks the fire
times a cue missed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Literal, cast
from zoneinfo import ZoneInfo, available_timezones

from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from cueflow.cron import parse_cron, wall_trigger
from cueflow.dst import TICK, cron_next
from cueflow.errors import InvalidSchedule, InvalidTimezone
from cueflow.states import ScheduleType

FallBack = Literal["both", "first"]

SCHEDULE_TYPES: tuple[str, ...] = tuple(t.value for t in ScheduleType)
MAX_DUE_STEPS = 20_000  # due_ticks walks at most this far; beyond, dropped is a lower bound


@dataclass(frozen=True)
class Schedule:
    """When a cue fires: once ``at``, on a ``cron`` in ``timezone``, or every N seconds."""

    type: str  # a ScheduleType
    timezone: str = "UTC"  # stored exactly as the user sent it
    cron: str | None = None
    at: datetime | None = None  # aware UTC
    interval_seconds: int | None = None
    fall_back: str = "both"  # a cron's wall times the clocks repeat: fire at "both" or "first"


@cache
def _timezone_index() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def resolve_timezone(name: str) -> ZoneInfo:
    """Look an IANA zone name up case-insensitively; raise :class:`InvalidTimezone` if unknown.

    Only tz database names are accepted: offsets such as ``+05:00`` or ``Z`` are not.
    """
    key = _timezone_index().get(name.lower()) if isinstance(name, str) else None
    if key is not None:
        try:
            return ZoneInfo(key)
        except (KeyError, ValueError, OSError):  # listed, but the database cannot load it
            pass
    raise InvalidTimezone(f"Unknown timezone: '{name}'")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


MAX_INTERVAL_SECONDS = 10 * 366 * 86_400
"""The longest interval schedule (about ten years; longer ones leave the calendar)."""


def _interval(schedule: Schedule) -> timedelta:
    seconds = schedule.interval_seconds
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 1:
        raise InvalidSchedule("interval_seconds must be a positive integer")
    if seconds > MAX_INTERVAL_SECONDS:
        raise InvalidSchedule(f"interval_seconds must be at most {MAX_INTERVAL_SECONDS}")
    return timedelta(seconds=seconds)


def validate(schedule: Schedule, now: datetime) -> Schedule:
    """Check a schedule at create/update time; return it with ``at`` normalised to aware UTC.

    Raises :class:`InvalidSchedule` or :class:`InvalidTimezone` with the contract's messages.
    """
    tz = resolve_timezone(schedule.timezone)
    if schedule.type not in SCHEDULE_TYPES:
        raise InvalidSchedule("Schedule type must be 'once' or 'recurring'")
    if schedule.type == ScheduleType.RECURRING:
        if not isinstance(schedule.cron, str) or not schedule.cron.strip():
            raise InvalidSchedule("Cron expression is required for recurring schedules")
        parse_cron(schedule.cron, tz)
    elif schedule.type == ScheduleType.ONCE:
        if not isinstance(schedule.at, datetime):
            raise InvalidSchedule("Timestamp is required for one-time schedules")
        try:
            at = _utc(schedule.at)
        except OverflowError:  # a year-1 or year-9999 time whose offset leaves the calendar
            raise InvalidSchedule("Timestamp is out of range") from None
        if at <= _utc(now):
            raise InvalidSchedule("Scheduled time must be in the future")
        return replace(schedule, at=at)
    else:
        _interval(schedule)
    return schedule


def next_fire_after(
    schedule: Schedule, after: datetime, *, anchor: datetime | None = None
) -> datetime | None:
    """The first fire time strictly after ``after`` (aware UTC), or None if there is none.

    Interval ticks are ``anchor + k * interval_seconds`` for k >= 0 (``anchor`` defaults to
    ``after``; pass the cue's creation time to keep a fixed grid). Cron times are whole seconds.
    """
    after = _utc(after)
    if schedule.type == ScheduleType.ONCE:
        if schedule.at is None:
            return None
        fire = DateTrigger(_utc(schedule.at), UTC).get_next_fire_time(None, after)
        return fire if fire > after else None
    if schedule.type == ScheduleType.INTERVAL:
        step = _interval(schedule)
        start = after if anchor is None else _utc(anchor)
        trigger = IntervalTrigger(seconds=step.total_seconds(), start_date=start, timezone=UTC)
        # An interval trigger without an end always has a next time; it answers >= now: skip
        # `after`.
        fire = cast(datetime, trigger.get_next_fire_time(None, after + TICK))
        fire = start + round((fire - start) / step) * step  # exact grid; the trigger uses floats
        return fire if fire > after else fire + step
    if schedule.type == ScheduleType.RECURRING:
        tz = resolve_timezone(schedule.timezone)
        return cron_next(wall_trigger(schedule.cron or ""), tz, after, schedule.fall_back)
    raise InvalidSchedule("Schedule type must be 'once' or 'recurring'")


def _stepper(schedule: Schedule, anchor: datetime) -> Callable[[datetime], datetime | None]:
    """``next_fire_after`` for one schedule, with the cron trigger and zone looked up once."""
    if schedule.type != ScheduleType.RECURRING:
        return lambda after: next_fire_after(schedule, after, anchor=anchor)
    trigger, tz = wall_trigger(schedule.cron or ""), resolve_timezone(schedule.timezone)
    return lambda after: cron_next(trigger, tz, after, schedule.fall_back)


def _walk(
    step: Callable[[datetime], datetime | None],
    start: datetime,
    now: datetime,
    window: deque[datetime],
    cap: int,
) -> tuple[int, bool]:
    """Append the fire times in (start, now] to ``window``: (how many, all within ``cap``)."""
    count, fire = 0, step(start)
    while fire is not None and fire <= now:
        if count >= cap:
            return count, False
        window.append(fire)
        count, fire = count + 1, step(fire)
    return count, True


def due_ticks(
    schedule: Schedule,
    first: datetime,
    now: datetime,
    *,
    limit: int,
    anchor: datetime | None = None,
) -> tuple[list[datetime], int]:
    """The due fire times ``first <= t <= now`` (``first`` is one): the ``limit`` most recent,
    oldest first, and how many older ones were dropped.

    At most :data:`MAX_DUE_STEPS` ticks are walked from ``first``; if more are due, the most
    recent ``limit`` are found by searching back from ``now`` and the dropped count is a lower
    bound (exact for intervals). Interval ticks use the grid of ``anchor`` (default ``first``).
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    first, now = _utc(first), _utc(now)
    if first > now:
        return [], 0
    step = _stepper(schedule, first if anchor is None else anchor)
    head: deque[datetime] = deque([first], maxlen=limit)
    count, complete = _walk(step, first, now, head, MAX_DUE_STEPS - 1)
    count += 1
    if complete:
        return list(head), count - len(head)
    span = now - head[-1]
    delta = min(max((head[-1] - first) / max(count - 1, 1) * limit * 2, TICK * 10**6), span)
    low, high = timedelta(0), None  # search windows known to hold too few / too many ticks
    for _ in range(64):
        tail: deque[datetime] = deque(maxlen=limit)
        found, complete = _walk(step, now - delta, now, tail, 4 * limit + 1000)
        if complete and (found >= limit or delta >= span):
            if delta >= span:  # the tail meets the walked head: the count is exact
                tail = deque([*head, *tail], maxlen=limit)
            ticks, dropped = list(tail), count + found - len(tail)
            if schedule.type == ScheduleType.INTERVAL and ticks[0] != first:  # count the grid
                dropped = 1 + (ticks[0] - (step(first) or first)) // _interval(schedule)
            return ticks, dropped
        low, high = (delta, high) if complete else (low, delta)
        delta = min(delta * 2, span) if high is None else (low + high) / 2
    return list(head), count - len(head)  # not reached: cron ticks are >= 1 s apart


def fire_times(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    *,
    limit: int,
    anchor: datetime | None = None,
) -> tuple[list[datetime], bool]:
    """The fire times ``start <= t < end`` of ``schedule``, oldest first, as the scheduler
    computes them (:func:`next_fire_after`; interval ticks on the grid of ``anchor``), at most
    ``limit`` of them, and whether that is all (``False``: more were left out)."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return [], True
    if schedule.type == ScheduleType.INTERVAL and anchor is not None:
        step = _interval(schedule)
        anchor = _utc(anchor)
        if anchor > start:  # the grid reaches back before the window: step it back
            anchor -= ((anchor - start) // step + 1) * step
    step_from = _stepper(schedule, start if anchor is None else anchor)
    found: list[datetime] = []
    fire = step_from(start - TICK)
    while fire is not None and fire < end:
        if len(found) >= limit:
            return found, False
        found.append(fire)
        fire = step_from(fire)
    return found, True
