"""Runs started by hand: firing a cue now (or at ``send_at``) and replaying an execution.

Both create a new ``pending`` execution that the cue's transport then handles like a scheduled
one: workers see it once ``scheduled_for`` has come (so a future ``send_at`` is honoured for
worker cues too), push transports get it from the dispatcher at that time. Neither changes the
cue's ``fired_count`` nor is refused by the monthly execution limit (both are counted in it).

An execution is unique on its fire key ``(cue_id, scheduled_for)``. When a manual run's time is
already taken (a scheduled run, or another manual run, at that very instant), the new run is
moved a microsecond later rather than refused; a scheduled tick that comes after a manual run
took its exact instant is not created again (the manual run stands in for it).

A flow step's hidden cue is neither fired nor replayed (409 ``flow_step_cue``): a step's retries
are its flow's, and a run starts again through its flow.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.cues import check_payload, refuse_step_cue
from cueflow.errors import Conflict, NotFound
from cueflow.records import Cue, Execution
from cueflow.scheduler import new_execution
from cueflow.states import TERMINAL
from cueflow.store import StoreTx

if TYPE_CHECKING:
    from cueflow.services import Services

MANUAL_FIRE = "manual_fire"
REPLAY = "replay"
_NUDGE = timedelta(microseconds=1)
_MAX_NUDGES = 1000


async def _insert_run(
    tx: StoreTx, cue: Cue, when: datetime, now: datetime, trigger: str, **extra: Any
) -> Execution:
    """Insert a pending execution of ``cue`` at ``when`` (or just after, if taken)."""
    for _ in range(_MAX_NUDGES):
        values = new_execution(cue, when, now, triggered_by=trigger, **extra)
        if await tx.insert_execution(values):
            row = await tx.get_execution(cue.user_id, values["id"])
            assert row is not None
            return row
        when += _NUDGE
    raise Conflict("Too many executions at this instant; try again", code="fire_key_taken")


async def fire_cue(
    services: Services,
    user: Principal,
    cue_id: str,
    send_at: datetime | None = None,
    payload_override: dict[str, Any] | None = None,
) -> Execution:
    """Create a ``manual_fire`` execution of one of the caller's cues, whatever its status, due
    at ``send_at`` when that is in the future and now otherwise; 404 ``cue_not_found``. With
    ``payload_override`` (checked like a cue payload) that run carries this payload instead of
    the cue's; the cue's ``task`` still routes it."""
    if payload_override is not None:
        check_payload(payload_override)
    now = services.clock.now()
    when = send_at if send_at is not None and send_at > now else now
    async with services.store.tx() as tx:
        cue = await tx.get_cue(user.user_id, cue_id)
        if cue is None:
            raise NotFound("Cue not found", code="cue_not_found")
        refuse_step_cue(cue)
        extra = {} if payload_override is None else {"payload_override": payload_override}
        row = await _insert_run(tx, cue, when, now, MANUAL_FIRE, **extra)
    services.signals.executions_created([row])
    return row


async def replay_execution(services: Services, user: Principal, execution_id: str) -> Execution:
    """Create a ``replay`` execution, due now, of the cue of a finished execution (``success``,
    ``failed`` or ``missed``); 404 ``execution_not_found``, 409 ``execution_in_flight`` while
    the original is still under way. The original is left as it is."""
    if not ids.is_uuid(execution_id):
        raise NotFound("Execution not found", code="execution_not_found")
    now = services.clock.now()
    async with services.store.tx() as tx:
        source = await tx.get_execution(user.user_id, execution_id)
        if source is None:
            raise NotFound("Execution not found", code="execution_not_found")
        if source.status not in TERMINAL:
            raise Conflict(
                "Cannot replay an execution that is still in progress",
                code="execution_in_flight",
            )
        cue = await tx.get_cue(user.user_id, source.cue_id)
        if cue is None:
            raise NotFound("Execution not found", code="execution_not_found")
        refuse_step_cue(cue)
        row = await _insert_run(tx, cue, now, now, REPLAY)
    services.signals.executions_created([row])
    return row
