"""Backfill: run a cue for the scheduled times of a past window (cueflow extension,
``POST /v1/cues/{id}/backfill``; see ``docs/run-controls.md``).

* The times are those the scheduler fires, computed by the same code
  (:func:`cueflow.schedule.fire_times`): a cron in its IANA time zone with DST gaps and
  repeats (``fall_back``), an interval on the cue's current grid (through its ``next_run``), a
  one-time cue's ``at``. The window is half-open, ``start <= t < end``; naive datetimes are
  UTC. Only past times run: the window is clipped to now (a later time is the scheduler's to
  fire); ``end`` not after ``start``, or a window starting after now, is refused 422
  ``invalid_window``.
* At most :data:`MAX_BACKFILL` runs per request: a window with more is refused 422
  ``backfill_too_large``, saying how many times it holds.
* Each run is made by :func:`cueflow.scheduler.new_execution` (the cue's priority and limits),
  ``triggered_by`` ``backfill``, due at its time (so at once) and delivered by the cue's
  transport as any run. Fire keys ``(cue_id, scheduled_for)`` make it idempotent: a time that
  has a run already (fired by the scheduler, or backfilled before) is not run again and is
  counted in ``skipped_existing``.
* The overlap policy (the request's, or the cue's) applies among the new runs, oldest first,
  and the cue's runs still open, as for a scheduled fire (:mod:`cueflow.overlap`): with
  ``skip`` and nothing running the first time runs and the others are ``missed``.
* Backfilled runs count toward the monthly execution limit but are never refused by it, as
  manual fires are. Any cue status may be backfilled; a flow step's hidden cue may not (409
  ``flow_step_cue``).

All of it happens in one transaction, after the cue's row is locked: a backfill and the
scheduler (on any node) firing the same cue take turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import cueflow.overlap as overlap
import cueflow.schedule as schedule
from cueflow.authentication import Principal
from cueflow.cues import refuse_step_cue, schedule_of_cue
from cueflow.dst import TICK
from cueflow.errors import CueflowError, NotFound
from cueflow.records import Cue, Execution
from cueflow.run_controls import Overlap
from cueflow.scheduler import new_execution
from cueflow.states import ScheduleType

if TYPE_CHECKING:
    from cueflow.services import Services

BACKFILL = "backfill"
"""The ``triggered_by`` of a backfilled run."""
MAX_BACKFILL = 1000
"""Most runs one backfill request may create."""
_COUNT_LIMIT = 100_000
"""How far a refused window's times are counted for the message."""


@dataclass
class Backfill:
    """What a backfill did: the runs it created (oldest first) and the times it left alone
    because a run of them existed already."""

    cue_id: str
    created: list[Execution] = field(default_factory=list)
    skipped_existing: list[datetime] = field(default_factory=list)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _invalid(message: str, code: str = "invalid_window") -> CueflowError:
    return CueflowError(message, code=code, status=422)


def check_policy(policy: str | None) -> str | None:
    """``policy`` if it is an overlap policy (or ``None``), else 422."""
    if policy is not None and policy not in {p.value for p in Overlap}:
        allowed = ", ".join(p.value for p in Overlap)
        raise _invalid(f"overlap_policy must be one of: {allowed}", "validation_error")
    return policy


def window_times(cue: Cue, start: datetime, end: datetime, now: datetime) -> list[datetime]:
    """The cue's scheduled times in ``[start, min(end, now + 1 µs))`` (at most
    :data:`MAX_BACKFILL`; a window holding more is refused 422 ``backfill_too_large``)."""
    sched = schedule_of_cue(cue)
    stop = min(end, now + TICK)
    anchor = (cue.next_run or cue.created_at) if sched.type == ScheduleType.INTERVAL else None
    times, complete = schedule.fire_times(sched, start, stop, limit=MAX_BACKFILL, anchor=anchor)
    if not complete:
        counted, exact = schedule.fire_times(sched, start, stop, limit=_COUNT_LIMIT, anchor=anchor)
        held = f"{len(counted)}" if exact else f"more than {_COUNT_LIMIT}"
        raise _invalid(
            f"The window holds {held} scheduled times; a backfill creates at most "
            f"{MAX_BACKFILL} runs: split it into smaller windows",
            "backfill_too_large",
        )
    return times


async def backfill_cue(
    services: Services,
    user: Principal,
    cue_id: str,
    start: datetime,
    end: datetime,
    overlap_policy: str | None = None,
) -> Backfill:
    """Create one run of the caller's cue per scheduled time in ``[start, end)`` that has
    passed (see the module); 404 ``cue_not_found``, 409 ``flow_step_cue``, 422
    ``invalid_window`` / ``backfill_too_large`` / ``validation_error``."""
    start, end = _utc(start), _utc(end)
    check_policy(overlap_policy)
    if end <= start:
        raise _invalid("end must be after start")
    now = services.clock.now()
    if start > now:
        raise _invalid("A backfill runs past times only: start must not be in the future")
    result = Backfill(cue_id)
    async with services.store.tx() as tx:
        cue = await tx.lock_cue(user.user_id, cue_id)
        if cue is None:
            raise NotFound("Cue not found", code="cue_not_found")
        refuse_step_cue(cue)
        times = window_times(cue, start, end, now)
        open_runs = await overlap.read_open_runs(tx, [cue.id])
        state = overlap.state_of(overlap_policy or cue.overlap_policy, open_runs[cue.id])
        stored: list[str] = []
        for when in times:
            values = new_execution(cue, when, now, triggered_by=BACKFILL)
            state.admit(values)
            if not await tx.insert_execution(values):
                state.forget(values["id"])
                result.skipped_existing.append(when)
                continue
            stored.append(values["id"])
        busy = await overlap.cancel_superseded(tx, [cue.id], state.cancels, stored, now)
        for execution_id in stored:
            row = await tx.get_execution(user.user_id, execution_id)
            if row is not None:
                result.created.append(row)
    await overlap.cancel_later(services, busy, now)
    services.signals.executions_created(result.created)
    return result
