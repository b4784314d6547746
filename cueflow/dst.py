""":func:`cron_next`: a wall-clock cron's fire instants in a zone that changes its clocks.

``CronTrigger`` in a DST zone skips fire times when it steps across a transition
(APScheduler 3.11: ``@monthly`` in New York after 2028-03-01 answers May 1), so the cron is
evaluated on wall-clock time (a UTC trigger, where it is exact) and mapped to instants with the
zone's offsets (:func:`cron_next`). The resulting rules, pinned by the tests:

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

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

TICK = timedelta(microseconds=1)
"""The smallest step of time: fire times strictly after ``t`` start at ``t + TICK``."""
_DST_MARGIN = timedelta(hours=3)  # longer than any DST shift, far shorter than a DST period


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(tz).utcoffset() or timedelta(0)


def _change(tz: ZoneInfo, lo: datetime, hi: datetime, base: timedelta) -> datetime | None:
    """The instant the offset changes between ``lo`` (offset ``base``) and ``hi`` (either
    order, at most _DST_MARGIN apart so at most one change), or None."""
    if _offset(tz, hi) == base:
        return None
    while abs(hi - lo) > TICK:
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
    t = after + TICK  # earliest allowed instant
    gap: datetime | None = None  # best skipped-wall instant
    wall: datetime | None
    for _ in range(16):
        o = _offset(tz, t)
        back = _change(tz, t, t - _DST_MARGIN, o)
        if back is not None and (before := _offset(tz, back - TICK)) < o:  # sprang forward
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


def cron_next(
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
        fire = _cron_after(trigger, tz, went_back + (_offset(tz, went_back - TICK) - o) - TICK)
    return fire
