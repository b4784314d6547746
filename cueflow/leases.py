"""Leases: a claim's heartbeats, giving a claim back, and the sweeper that returns abandoned
claims to the queue.

An execution heartbeat restarts the claim's lease (``WORKER_CLAIM_TIMEOUT_SECONDS``). The
sweeper returns an execution to the queue when its lease ends or when its worker, registered
through ``POST /v1/worker/heartbeat``, has been silent for ``WORKER_HEARTBEAT_TIMEOUT_SECONDS``;
each claim counts in ``attempts``, and after the cue's ``retry.max_attempts`` claims the
execution fails instead of going round again. A worker that releases a claim (cueflow extension)
puts it back to be claimable again after the cue's retry backoff, or after the
``retry_after_seconds`` it asks for: until then ``next_retry`` holds the execution back from
claimable lists and claims.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.flow_runs as flow_runs
import cueflow.handoff as handoff
import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.errors import Conflict, DatabaseUnavailable, Forbidden, NotFound
from cueflow.push_attempts import retry_wait
from cueflow.states import Event, ScheduleType, Status, move, one_time_cue_end

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)


async def heartbeat(
    services: Services, user: Principal, execution_id: str, worker_id: str | None
) -> dict[str, Any]:
    """Extend a claim's lease. 404 unknown, 409 not claimed, 403 claimed by another worker."""
    if not ids.is_uuid(execution_id):
        raise NotFound("Execution not found", code="execution_not_found")
    now = services.clock.now()
    until = now + timedelta(seconds=services.settings.worker_claim_timeout_seconds)
    async with services.store.tx() as tx:
        row = await tx.get_execution(user.user_id, execution_id)
        if row is None:
            raise NotFound("Execution not found", code="execution_not_found")
        await handoff.refuse_if_cancelled(tx, row)
        if row.status != Status.DELIVERING:
            raise Conflict(
                "Execution is not currently being claimed", code="execution_not_claiming"
            )
        holder = row.claimed_by_worker
        if worker_id and holder and worker_id != holder:
            raise Forbidden("Only the claiming worker can heartbeat", code="not_execution_owner")
        extended = await tx.update_execution(
            execution_id,
            {"last_heartbeat_at": now, "lease_expires_at": until, "updated_at": now},
            expect={"status": Status.DELIVERING.value, "claimed_by_worker": holder},
        )
    if extended is None:
        raise Conflict("Execution is not currently being claimed", code="execution_not_claiming")
    return {
        "execution_id": execution_id,
        "lease_extended_until": until.isoformat(),
        "acknowledged": True,
    }


async def release(
    services: Services,
    user: Principal,
    execution_id: str,
    worker_id: str,
    reason: str | None = None,
    retry_after_seconds: float | None = None,
) -> dict[str, Any]:
    """Give a claimed execution back unfinished (cueflow extension): it returns to the queue
    with the claim counted in ``attempts``, claimable again after ``retry_after_seconds`` or, by
    default, after the cue's retry backoff for that attempt (``next_retry``); or it fails when
    the cue's ``retry.max_attempts`` claims are used up, as when a lease runs out. 404 unknown,
    409 not claimed, 403 claimed by another worker."""
    if not ids.is_uuid(execution_id):
        raise NotFound("Execution not found", code="execution_not_found")
    now = services.clock.now()
    async with services.store.tx() as tx:
        row = await tx.get_execution(user.user_id, execution_id)
        if row is None:
            raise NotFound("Execution not found", code="execution_not_found")
        if row.status != Status.DELIVERING or not services.transports.is_pull(row.transport):
            raise Conflict(
                "Execution is not currently being claimed", code="execution_not_claiming"
            )
        if row.claimed_by_worker != worker_id:
            raise Forbidden("Only the claiming worker can release", code="not_execution_owner")
        cue = await tx.get_cue(user.user_id, row.cue_id)
        exhausted = cue is not None and row.attempts >= cue.retry_max_attempts
        because = f"released by worker: {reason}" if reason else "released by worker"
        event, values = _give_back(Event.RELEASED, exhausted, because, row.attempts, now)
        if not exhausted:
            if retry_after_seconds is not None:
                wait = timedelta(seconds=max(0.0, retry_after_seconds))
            else:
                backoff = cue.retry_backoff_minutes if cue is not None else []
                wait = retry_wait(backoff or [], max(row.attempts, 1))
            values["next_retry"] = now + wait
        done = await tx.update_execution(
            execution_id, values, move=move(event), expect={"claimed_by_worker": worker_id}
        )
        if done is None:
            raise Conflict(
                "Execution is not currently being claimed", code="execution_not_claiming"
            )
        if exhausted and cue is not None:
            await _end_one_time_cue(tx, cue.id, cue.schedule_type, done.status, now)
        await handoff.executions_ended(services, tx, [done], now)
    if not exhausted:
        services.signals.work.notify()
    return {
        "execution_id": execution_id,
        "released": True,
        "status": done.status,
        "attempts": done.attempts,
        "next_attempt_at": done.next_retry,
    }


async def sweep(services: Services, limit: int = 500) -> int:
    """Return expired claims to the queue (or fail them) and mark long-unclaimed executions
    ``missed``; returns how many executions changed.

    Each execution changes in a transaction of its own: a flow step's hand-off locks its run,
    and one transaction locking the runs of many expired leases in lease order would deadlock
    with an outcome batch locking some of them in run order (PostgreSQL answered one of them
    with an error)."""
    now = services.clock.now()
    settings = services.settings
    pull = services.transports.pull()
    changed = 0
    stale_before = now - timedelta(seconds=settings.worker_heartbeat_timeout_seconds)
    async with services.store.tx() as tx:
        expired = await tx.expired_leases(now, stale_before, pull, limit)
    for row in expired:
        lease_over = row.lease_expires_at is not None and row.lease_expires_at <= now
        reason = "claim lease expired" if lease_over else "worker heartbeat stale"
        exhausted = row.attempts >= row.retry_max_attempts
        event, values = _give_back(Event.LEASE_EXPIRED, exhausted, reason, row.attempts, now)
        async with services.store.tx() as tx:
            done = await tx.update_execution(
                row.id,
                values,
                move=move(event),
                expect={"claimed_by_worker": row.claimed_by_worker},
            )
            if done is not None:
                changed += 1
                services.metrics.lease_expiries.labels("claim" if lease_over else "stale").inc()
                if exhausted:
                    await _end_one_time_cue(tx, row.cue_id, row.schedule_type, done.status, now)
                await handoff.executions_ended(services, tx, [done], now)
    if settings.worker_unclaimed_timeout_seconds > 0:
        before = now - timedelta(seconds=settings.worker_unclaimed_timeout_seconds)
        async with services.store.tx() as tx:
            unclaimed = await tx.unclaimed(before, pull, limit)
        for run in unclaimed:
            async with services.store.tx() as tx:
                done = await tx.update_execution(
                    run.id,
                    {
                        "updated_at": now,
                        "error_message": "No worker claimed this execution within timeout window",
                    },
                    move=move(Event.UNCLAIMED),
                )
                if done is not None:
                    changed += 1
                    await _end_one_time_cue(tx, run.cue_id, run.schedule_type, done.status, now)
                    await handoff.executions_ended(services, tx, [done], now)
    changed += await flow_runs.expire_waits(services, now)
    if changed:
        services.signals.work.notify()
    return changed


async def sweep_forever(services: Services) -> None:
    """The engine's sweeper task: :func:`sweep` every ``sweep_interval_seconds``."""
    interval = services.settings.sweep_interval_seconds
    pulse = services.loops.pulse("sweeper")
    while True:
        pulse.busy()
        try:
            await sweep(services)
        except DatabaseUnavailable as exc:
            log.warning("lease sweep failed: %s", exc.message)
        except Exception:
            log.exception("lease sweep failed")
        pulse.idle()
        await services.clock.sleep_until(
            services.clock.now() + timedelta(seconds=interval), asyncio.Event()
        )


def _give_back(
    requeue: Event, exhausted: bool, reason: str, attempts: int, now: datetime
) -> tuple[Event, dict[str, Any]]:
    """The event and values that end a claim: back to the queue through ``requeue``, or
    ``LEASE_EXHAUSTED`` once the cue's attempts are used up."""
    values: dict[str, Any] = {"updated_at": now, "lease_expires_at": None}
    if exhausted:
        values["error_message"] = (
            f"Failed: {reason} after {attempts} claim(s), max attempts exhausted"
        )
        return Event.LEASE_EXHAUSTED, values
    values.update(
        claimed_by_worker=None,
        claimed_at=None,
        started_at=None,
        next_retry=None,
        error_message=f"Reset: {reason}; execution returned to the queue",
    )
    return requeue, values


async def _end_one_time_cue(
    tx: Any, cue_id: str, schedule_type: ScheduleType, status: Status, now: datetime
) -> None:
    """End the cue if it is a one-time cue whose run ended in ``status`` (failed, missed)."""
    ended = one_time_cue_end(schedule_type, status)
    if ended is not None:
        change = move(ended)
        await tx.bump_cue(
            cue_id,
            values={"status": change.target, "last_run": now, "updated_at": now},
            only_if_status=change.sources,
        )
