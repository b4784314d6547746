"""The cron dialect: a cron expression translated into APScheduler triggers (pure computation).

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

A cron's fire times in a zone with DST come from :func:`wall_trigger` through
:mod:`cueflow.dst`, not from the zoned trigger :func:`parse_cron` returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.cron.expressions import MONTHS, WEEKDAYS

from cueflow.errors import InvalidSchedule

MAX_CRON_LENGTH = 100
NEVER_FIRES_HORIZON = timedelta(days=365 * 50)  # no fire time within this (or before 2100):
_LAST_YEAR_END = datetime(2100, 1, 1, tzinfo=UTC)  # "can never fire"; the year field ends 2099

_ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *"}
_ALIASES |= {"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *"}
_ALIASES |= {"@hourly": "0 * * * *"}
_MONTHS = {name: i + 1 for i, name in enumerate(MONTHS)}
_DOWS = {name: (i + 1) % 7 for i, name in enumerate(WEEKDAYS)}  # cron: 0 = Sunday
_NTH = ("1st", "2nd", "3rd", "4th", "5th")
_ITEM = re.compile(r"(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/([0-9]+))?")
_SPECIAL_DOW = re.compile(r"([a-z0-9]+)#([1-5])|l([a-z0-9]+)|([a-z0-9]+)l")

Spec = tuple[tuple[tuple[str, str], ...], ...]  # CronTrigger keyword sets, OR-ed together


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
        if match is None:
            raise _bad_cron()
        span, step = match[1], int(match[2] or 1)
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
def wall_trigger(expr: str) -> BaseTrigger:
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
