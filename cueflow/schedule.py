"""Schedules: validation and fire-time computation (pure computation, no I/O, no database).

Fire times come from APScheduler 3.x triggers: ``DateTrigger`` (once), ``IntervalTrigger``
(interval) and ``CronTrigger`` (an ``OrTrigger`` of two under cron's day rule) for recurring.

Cron dialect (croniter 6.2, as CueAPI accepted it), translated field by field; never via
``CronTrigger.from_crontab``, whose weekday 0 is Monday. ``minute hour day month weekday``,
optional 6th field seconds and 7th years (1970-2099); names (``MON-FRI``, ``jan``), lists,
ranges, steps (``*/15``, ``1-30/5``, ``5/15``), wrapping ranges (``5-0`` = fri,sat,sun), ``?``
in the day fields, weekday 0 and 7 = Sunday, ``L`` / ``25-L`` in day-of-month, ``5L`` or ``L5``
(last Friday) and ``1#2`` (second Monday) in day-of-week, ``@yearly @annually @monthly @weekly
@daily @midnight @hourly``. When day-of-month and day-of-week are both restricted either may
match (croniter's rule: a full list still counts as restricted unless the other field has a
``*``). Rejected: ``@reboot``, ``H``/``R``, ``W``, a bare ``L`` weekday, ``#`` on a range, and
crons with no fire time within 50 years (nor before 2100). Unlike croniter, ``5-5`` is 5 (not
"all") and a wrapping range keeps its step across the wrap (``nov-feb/3`` = nov, feb).

DST. ``CronTrigger`` in a DST zone skips fire times when it steps across a transition
(APScheduler 3.11: ``@monthly`` in New York after 2028-03-01 answers May 1), so the cron is
evaluated on wall-clock time (a UTC trigger, where it is exact) and mapped to instants with the
zone's offsets (``_cron_after``). The resulting rules, pinned by the tests:

* spring forward: a wall time that does not exist is read with the offset before the jump,
  so in America/New_York ``30 2 * * *`` fires once on 2026-03-08, at 07:30 UTC = 03:30 EDT
  (croniter: 03:00 EDT). This is also how ``zoneinfo`` and APScheduler read such a time.
* fall back: by default (``fall_back="both"``) a wall time in the repeated hour fires twice,
  once per offset: ``30 1 * * *`` fires on 2026-11-01 at 05:30 UTC (01:30 EDT) and 06:30 UTC
  (01:30 EST), as croniter (and so CueAPI) does. With ``fall_back="first"`` it fires only at
  the first occurrence (05:30 UTC), as cron daemons do for jobs at a fixed time; every fire
  time in the repeated hour's second pass is skipped, so a cron firing hourly or more often
  has no fire for that hour (use ``both`` for those).
* successive fire times strictly increase.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
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
from cueflow.states import ScheduleType

FallBack = Literal["both", "first"]

SCHEDULE_TYPES: tuple[str, ...] = tuple(t.value for t in ScheduleType)
MAX_CRON_LENGTH = 100
NEVER_FIRES_HORIZON = timedelta(days=365 * 50)  # no fire time within this (or before 2100):
_LAST_YEAR_END = datetime(2100, 1, 1, tzinfo=UTC)  # "can never fire"; the year field ends 2099
MAX_DUE_STEPS = 20_000  # due_ticks walks at most this far; beyond, dropped is a lower bound

_TICK = timedelta(microseconds=1)
_DST_MARGIN = timedelta(hours=3)  # longer than any DST shift, far shorter than a DST period
_ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *"}
_ALIASES |= {"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}
_ALIASES |= {"@hourly": "0 * * * *"}
_MONTHS = {name: i + 1 for i, name in enumerate(MONTHS)}
_DOWS = {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)}  # cron: 0 = Sunday
_NTH = ("1st", "2nd", "3rd", "4th", "5th")
_ITEM = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")
_SPECIAL_DOW = re.compile(r"([a-z0-9]+)#([1-5])|l([a-z0-9]+)|([a-z0-9]+)l")

Spec = tuple[tuple[tuple[str, str], ...], ...]  # CronTrigger keyword sets, OR-ed together


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


def _bad_cron() -> InvalidSchedule:
    return InvalidSchedule("Invalid cron expression")


def _number(token: str, lo: int, hi: int, names: dict[str, int]) -> int:
    value = int(token) if token.isascii() and token.isdigit() else names.get(token)
    if value is None or not lo <= value <= hi:
        raise _bad_cron()
    return value


def _expand(part: str, lo: int, top: int, names: dict[str, int] | None = None) -> set[int]:
    """The values of a comma list; ``top`` is the field's last value (weekdays also allow 7)."""
    values: set[int] = set()
    for item in part.split(","):
        match = _ITEM.fullmatch(item)
        span, step = (match[1], int(match[2] or 1)) if match else ("", 0)
        if step < 1:
            raise _bad_cron()
        hi = 7 if names is _DOWS else top
        if span == "*":
            first, last = lo, top
        else:
            start, _, end = span.partition("-")
            first = _number(start, lo, hi, names or {})
            last = _number(end, lo, hi, names or {}) if end else (top if match[2] else first)
        size = top - lo + 1
        if last < first:  # wraps past the field's end, e.g. fri-sun written 5-0
            last += size
        values |= {lo + (value - lo) % size for value in range(first, last + 1, step)}
    return values


def _render(values: set[int], lo: int, hi: int, label: Callable[[int], str] = str) -> str:
    """An APScheduler field expression for ``values``: ``*`` or a list of runs."""
    if values == set(range(lo, hi + 1)):
        return "*"
    runs: list[list[int]] = []
    for value in sorted(values):
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(label(a) if a == b else f"{label(a)}-{label(b)}" for a, b in runs)


def _day_of_month(part: str) -> tuple[str, bool]:
    """APScheduler ``day`` expression and whether it lists every day."""
    items = part.split(",")
    plain = [item[:-1] + "31" if item.endswith("-l") else item for item in items if item != "l"]
    values = _expand(",".join(plain), 1, 31) if plain else set()
    full = len(values) == 31
    expr = ",".join([_render(values, 1, 31)] * bool(values) + ["last"] * ("l" in items))
    return ("*" if full else expr), full


def _day_of_week(part: str) -> tuple[str, str, bool]:
    """(APScheduler field, expression, lists every day); ``#`` and ``L`` items go to ``day``."""
    items = [(item, _SPECIAL_DOW.fullmatch(item)) for item in part.split(",")]
    special = [match for _, match in items if match]
    if not special:
        days = {(day + 6) % 7 for day in _expand(part, 0, 6, _DOWS)}  # APScheduler: 0 = Monday
        return "day_of_week", _render(days, 0, 6, WEEKDAYS.__getitem__), len(days) == 7
    if len(special) < len(items):  # croniter cannot mix them either
        raise _bad_cron()
    exprs = []
    for day_text, nth, last_a, last_b in (match.groups() for match in special):
        day = _number(day_text or last_a or last_b, 0, 7, _DOWS) % 7
        exprs.append(f"{_NTH[int(nth) - 1] if nth else 'last'} {WEEKDAYS[(day + 6) % 7]}")
    return "day", ",".join(exprs), False


@lru_cache(maxsize=1024)
def _spec(expr: str) -> Spec:
    """Translate a cron expression into CronTrigger keyword sets (OR-ed when two)."""
    if not isinstance(expr, str) or len(expr) > MAX_CRON_LENGTH:
        raise _bad_cron()
    text = expr.strip().lower()
    parts = _ALIASES.get(text, text).split()
    if len(parts) not in (5, 6, 7):
        raise _bad_cron()
    minute, hour, dom, month, dow, second, year = parts + ["0", "*"][len(parts) - 5 :]
    common = (
        ("minute", _render(_expand(minute, 0, 59), 0, 59)),
        ("hour", _render(_expand(hour, 0, 23), 0, 23)),
        ("month", _render(_expand(month, 1, 12, _MONTHS), 1, 12)),
        ("second", _render(_expand(second, 0, 59), 0, 59)),
        ("year", _render(_expand(year, 1970, 2099), 1970, 2099)),
    )
    day_expr, dom_full = _day_of_month("*" if dom == "?" else dom)
    dow_field, dow_expr, dow_full = _day_of_week("*" if dow == "?" else dow)
    dom_free = dom in ("*", "?") or (dom_full and "*" in dow)
    dow_free = dow in ("*", "?") or (dow_full and "*" in dom)
    by_dom, by_dow = (*common, ("day", day_expr)), (*common, (dow_field, dow_expr))
    if not dom_free and not dow_free:
        return (by_dom, by_dow)
    return (by_dom,) if dow_free else (by_dow,)


def _build(spec: Spec, tz: tzinfo, end_date: datetime | None = None) -> BaseTrigger:
    triggers = [CronTrigger(timezone=tz, end_date=end_date, **dict(kw)) for kw in spec]
    return triggers[0] if len(triggers) == 1 else OrTrigger(triggers)


@lru_cache(maxsize=1024)
def _wall_trigger(expr: str) -> BaseTrigger:
    """The cron on wall-clock time, written as UTC (where there is no DST to trip over)."""
    return _build(_spec(expr), UTC)


def parse_cron(expr: str, tz: ZoneInfo) -> BaseTrigger:
    """Translate a cron expression into an APScheduler trigger in ``tz``.

    Raises :class:`InvalidSchedule` ("Invalid cron expression") for anything outside the
    dialect, expressions over 100 characters and ones with no fire time in the next 50 years
    (nor before 2100, the end of the year field). Take
    fire times from :func:`next_fire_after`, which corrects the trigger's DST skips.
    """
    spec, now = _spec(expr), datetime.now(UTC)
    end = max(now + NEVER_FIRES_HORIZON, _LAST_YEAR_END)
    if _build(spec, UTC, end).get_next_fire_time(None, now) is None:
        raise _bad_cron()
    return _build(spec, tz)


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _change(tz: ZoneInfo, lo: datetime, hi: datetime, base: timedelta) -> datetime | None:
    """The instant the offset changes between ``lo`` (offset ``base``) and ``hi`` (either
    order, at most _DST_MARGIN apart so at most one change), or None."""
    if _offset(tz, hi) == base:
        return None
    while abs(hi - lo) > _TICK:
        mid = lo + (hi - lo) / 2
        lo, hi = (mid, hi) if _offset(tz, mid) == base else (lo, mid)
    return max(lo, hi)


def _cron_after(trigger: BaseTrigger, tz: ZoneInfo, after: datetime) -> datetime | None:
    """First instant after ``after`` whose wall time in ``tz`` matches the wall ``trigger``.

    Wall w at offset o is instant w - o. With no offset change within _DST_MARGIN of either
    end, the first matching wall after ``after``'s maps straight back (a change in between
    cannot produce an earlier match); otherwise continue from the change. Wall times a
    spring-forward skipped are read with the offset before it.
    """
    t, gap = after + _TICK, None  # earliest allowed instant; best skipped-wall instant
    for _ in range(16):
        o = _offset(tz, t)
        back = _change(tz, t, t - _DST_MARGIN, o)
        if back is not None and (before := _offset(tz, back - _TICK)) < o:  # sprang forward
            wall = trigger.get_next_fire_time(None, t + before)
            if wall is not None and wall < back + o and (gap is None or wall - before < gap):
                gap = wall - before
        wall = trigger.get_next_fire_time(None, t + o)
        if wall is None or (gap is not None and gap <= wall - o):
            return gap
        fire = wall - o
        if (change := _change(tz, t, min(fire, t + _DST_MARGIN), o)) is not None:
            t = change
        elif fire - t <= _DST_MARGIN or _offset(tz, fire) == o == _offset(tz, fire - _DST_MARGIN):
            return fire
        else:
            t = fire - _DST_MARGIN  # nothing before this can match
    return gap


def _cron_next(
    trigger: BaseTrigger, tz: ZoneInfo, after: datetime, fall_back: str
) -> datetime | None:
    """:func:`_cron_after`, skipping the second pass of a repeated hour under ``first``."""
    fire = _cron_after(trigger, tz, after)
    while fall_back == "first" and fire is not None and fire.astimezone(tz).fold:
        o = _offset(tz, fire)
        went_back = _change(tz, fire, fire - _DST_MARGIN, o)
        if went_back is None:  # not reached: fold=1 only follows a change within the margin
            break
        # The repeated wall times end as long after the change as the clocks went back.
        fire = _cron_after(trigger, tz, went_back + (_offset(tz, went_back - _TICK) - o) - _TICK)
    return fire


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
        fire = trigger.get_next_fire_time(None, after + _TICK)  # answers >= now: skip `after`
        fire = start + round((fire - start) / step) * step  # exact grid; the trigger uses floats
        return fire if fire > after else fire + step
    if schedule.type == ScheduleType.RECURRING:
        tz = resolve_timezone(schedule.timezone)
        return _cron_next(_wall_trigger(schedule.cron or ""), tz, after, schedule.fall_back)
    raise InvalidSchedule("Schedule type must be 'once' or 'recurring'")


def _stepper(schedule: Schedule, anchor: datetime) -> Callable[[datetime], datetime | None]:
    """``next_fire_after`` for one schedule, with the cron trigger and zone looked up once."""
    if schedule.type != ScheduleType.RECURRING:
        return lambda after: next_fire_after(schedule, after, anchor=anchor)
    trigger, tz = _wall_trigger(schedule.cron or ""), resolve_timezone(schedule.timezone)
    return lambda after: _cron_next(trigger, tz, after, schedule.fall_back)


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
    delta = min(max((head[-1] - first) / max(count - 1, 1) * limit * 2, _TICK * 10**6), span)
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
