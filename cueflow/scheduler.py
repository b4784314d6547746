"""Firing due cues: the durable, multi-node scheduler loop and the misfire policy.

Each cue row keeps its ``next_run``. The loop sleeps until the earliest one (or until woken by a
cue change here or, on PostgreSQL, a ``NOTIFY`` from another node), then fires every due cue in
batches: one transaction locks the batch (``SKIP LOCKED`` where the store has it), inserts the
executions under their fire key ``(cue_id, scheduled_for)`` and advances ``next_run``. Two nodes,
a crashed batch retried, or a restart can therefore never create the same run twice.

Misfire policy, per cue (``misfire_policy``), for runs later than ``misfire_grace_seconds``
(default 60 s) — after downtime, or a one-time cue resumed after its time:

* ``fire_once`` (default): one execution for the most recent missed run; the older ones are
  folded into it. A one-time cue fires once, late.
* ``skip``: no run; one ``missed`` execution records what was skipped. A one-time cue fails.
* ``fire_all``: every missed run fires, the newest ``catchup_limit`` (default 100) of them; any
  older ones are recorded as one ``missed`` execution.

So missed runs are never dropped silently and never fire in an unbounded burst. Runs missed
while a cue is paused are skipped on resume (as CueAPI does).
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.flow_schedule as flow_schedule
import cueflow.ids as ids
import cueflow.overlap as overlap
import cueflow.quotas as quotas
import cueflow.schedule as schedule
import cueflow.tracing as tracing
from cueflow.config import Settings
from cueflow.cues import schedule_of_cue
from cueflow.errors import DatabaseUnavailable
from cueflow.records import Cue
from cueflow.run_controls import execution_controls
from cueflow.states import ScheduleType, Status, move, one_time_cue_end
from cueflow.store import FirePlan

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)


def new_execution(cue: Cue, scheduled_for: datetime, now: datetime, **extra: Any) -> dict[str, Any]:
    """The values of a new ``pending`` execution of ``cue`` (``extra`` overrides)."""
    return {
        "id": ids.new_execution_id(),
        "cue_id": cue.id,
        "user_id": cue.user_id,
        "transport": cue.transport,
        "scheduled_for": scheduled_for,
        "status": Status.PENDING.value,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
        **execution_controls(cue),
        **extra,
    }


def _missed(cue: Cue, scheduled_for: datetime, now: datetime, message: str) -> dict[str, Any]:
    return new_execution(
        cue,
        scheduled_for,
        now,
        status=Status.MISSED.value,
        error_message=message,
        triggered_by="misfire",
    )


def plan_fire(cue: Cue, now: datetime, settings: Settings) -> FirePlan:
    """Decide what a due cue produces at ``now``: executions and its next ``next_run``."""
    sched = schedule_of_cue(cue)
    assert cue.next_run is not None  # the store fires only cues with a next run
    due = cue.next_run
    policy = cue.misfire_policy
    late = (now - due).total_seconds() > settings.misfire_grace_seconds
    plan = FirePlan(cue_values={"updated_at": now})
    if sched.type == ScheduleType.ONCE:
        plan.cue_values["next_run"] = None
        if late and policy == "skip":
            why = "Skipped: the cue was due while cueflow was not running"
            skipped = _missed(cue, due, now, why)
            plan.executions.append(skipped)
            ended = one_time_cue_end(sched.type, skipped["status"])
            if ended is not None:  # the scheduler fires only active cues, locked: the move holds
                plan.cue_values_if_fired["status"] = move(ended).target
        else:
            plan.executions.append(new_execution(cue, due, now))
        return plan
    anchor = due  # interval ticks stay on the grid the cue was started on
    if not late:
        plan.executions.append(new_execution(cue, due, now))
        plan.cue_values["next_run"] = schedule.next_fire_after(sched, due, anchor=anchor)
        return plan
    ticks, dropped = schedule.due_ticks(
        sched,
        due,
        now,
        limit=settings.catchup_limit if policy == "fire_all" else 1,
        anchor=anchor,
    )
    if policy == "skip":
        missed = len(ticks) + dropped
        plan.executions.append(
            _missed(cue, ticks[-1], now, f"Skipped {missed} missed run(s) (misfire policy skip)")
        )
    else:
        plan.executions.extend(new_execution(cue, tick, now) for tick in ticks)
        if dropped and policy == "fire_all":
            plan.executions.append(
                _missed(
                    cue,
                    due,
                    now,
                    f"Skipped {dropped} older missed run(s) beyond the "
                    f"catch-up limit of {settings.catchup_limit}",
                )
            )
    plan.cue_values["next_run"] = schedule.next_fire_after(sched, now, anchor=anchor)
    return plan


class Scheduler:
    """The loop that fires due cues; one per engine, any number per database."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.wakeup = services.signals.scheduler

    async def fire_due(self) -> int:
        """Fire every cue due now, batch by batch; returns how many executions were created."""
        services = self.services
        created = 0
        while True:
            since, now = tracing.started(), services.clock.now()
            plan = functools.partial(plan_fire, now=now, settings=services.settings)
            watch = services.metrics.watch_fires(plan)
            async with services.store.tx() as tx:
                overlaps = overlap.FireGate(tx)
                gated = await quotas.monthly_gate(services, tx, overlaps.wrap(watch), now)
                triggers = flow_schedule.TriggerWatch(gated)
                locked, inserted = await tx.fire_due(
                    now, services.settings.scheduler_batch_size, triggers, overlaps.prepare
                )
                busy = await overlaps.after(inserted, now)
                # a scheduled flow's fire starts its run in the fire's transaction
                await flow_schedule.start_fired_runs(services, tx, triggers, inserted, now)
            await overlap.cancel_later(services, busy, now)
            created += len(inserted)
            services.loops.pulse("scheduler").beat()
            watch.record(inserted, now)
            tracing.finished(
                "cueflow.fire", since, ((r.id, {"cue_id": r.cue_id}) for r in inserted)
            )
            if inserted:
                services.signals.executions_created(inserted)
            if locked < services.settings.scheduler_batch_size:
                return created

    async def next_wakeup(self) -> datetime | None:
        """The earliest ``next_run`` of any active cue."""
        async with self.services.store.tx() as tx:
            return await tx.earliest_next_run()

    async def run(self) -> None:
        """Fire due cues, then sleep until the next one is due, a change wakes the loop or
        ``scheduler_recheck_seconds`` passed: a change notice from another node that was lost
        (a dropped listening connection) delays a fire by at most that, never for good."""
        clock = self.services.clock
        pulse = self.services.loops.pulse("scheduler")
        recheck = timedelta(seconds=self.services.settings.scheduler_recheck_seconds)
        while True:
            self.wakeup.clear()
            pulse.busy()
            try:
                await self.fire_due()
                when = await self.next_wakeup()
            except DatabaseUnavailable as exc:
                log.warning("scheduler cycle failed: %s; retrying in 1 s", exc.message)
                when = clock.now() + timedelta(seconds=1)
            except Exception:
                log.exception("scheduler cycle failed; retrying in 1 s")
                when = clock.now() + timedelta(seconds=1)
            pulse.idle()
            latest = clock.now() + recheck
            await clock.sleep_until(latest if when is None else min(when, latest), self.wakeup)
