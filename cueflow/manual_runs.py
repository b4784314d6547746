"""Runs started by hand: firing a cue now (or at ``send_at``) and replaying an execution.

Both create a new ``pending`` execution that the cue's transport then handles like a scheduled
one: workers see it once ``scheduled_for`` has come (so a future ``send_at`` is honoured for
worker cues too), push transports get it from the dispatcher at that time. Neither changes the
cue's ``fired_count`` nor is refused by the monthly execution limit (both are counted in it).

An execution is unique on its fire key ``(cue_id, scheduled_for)``. When a manual run's time is
already taken (a scheduled run, or another manual run, at that very instant), the new run is
moved a microsecond later rather than refused; a scheduled tick that comes after a manual run
took its exact instant is not created again (the manual run stands in for it).

A fire may carry a ``payload_override`` (merged over the cue's payload, or replacing it) and an
``idempotency_key``: the ``fire_idempotency`` table's primary key makes one execution per key
and cue within 24 hours, even when fires race (see ``docs/run-controls.md``).

A flow step's hidden cue is neither fired nor replayed (409 ``flow_step_cue``): a step's retries
are its flow's, and a run starts again through its flow.
"""

from __future__ import annotations

from dataclasses import field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

import cueflow.ids as ids
import cueflow.tracing as tracing
from cueflow.authentication import Principal
from cueflow.cues import check_payload, refuse_step_cue
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.records import Cue, Execution, record
from cueflow.run_controls import check_required_keys
from cueflow.scheduler import new_execution
from cueflow.schema_examples import with_example
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


class MergeStrategy(StrEnum):
    """How a fire's ``payload_override`` combines with its cue's payload."""

    MERGE = "merge"
    """Shallow merge: the override's top-level keys replace the cue's (the default)."""
    REPLACE = "replace"
    """The override is the whole payload."""


IDEMPOTENCY_WINDOW = timedelta(hours=24)
"""How long a fire's ``idempotency_key`` is remembered."""
MAX_IDEMPOTENCY_KEY = 255


class FireRequest(BaseModel):
    """The optional fire body: ``send_at`` delays the run; ``payload_override`` (a JSON object)
    is merged over the cue's payload (``merge_strategy`` ``merge``, the default) or replaces it
    (``replace``) for this one run; ``idempotency_key`` makes a repeat within 24 h answer with
    the first fire's execution. Other fields are ignored."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=with_example)

    send_at: datetime | None = None
    payload_override: dict[str, Any] | None = None
    merge_strategy: MergeStrategy | None = None
    """``merge`` when left out (or ``null``)."""
    idempotency_key: str | None = Field(None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)


@record
class FiredExecution(Execution):
    """What a manual fire answers (:meth:`cueflow.engine.Engine.fire_cue`): the execution, the
    payload it carries and whether it is an earlier fire's (``repeated``: the fire had an
    ``idempotency_key`` already used)."""

    fire_payload: dict[str, Any] = field(default_factory=dict)
    """The payload the run carries (its override, else its cue's)."""
    repeated: bool = False
    """The key was already held: this is the first fire's execution, nothing was created."""


def fire_payload(
    payload: dict[str, Any] | None,
    override: dict[str, Any] | None,
    strategy: MergeStrategy | str = MergeStrategy.MERGE,
) -> dict[str, Any]:
    """The payload a fire carries: the cue's ``payload`` with ``override`` merged over it
    (top-level keys; nested values are replaced, not merged) or in its place (``replace``).
    An unknown ``strategy`` is 422 ``validation_error``."""
    if strategy not in tuple(MergeStrategy):
        raise CueflowError(
            f"merge_strategy must be one of: {', '.join(MergeStrategy)}",
            code="validation_error",
            status=422,
        )
    if override is None:
        return dict(payload or {})
    if strategy == MergeStrategy.REPLACE:
        return dict(override)
    return {**(payload or {}), **override}


def _check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        raise CueflowError(
            f"idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY} characters",
            code="validation_error",
            status=422,
        )


def _fired(row: Execution, payload: dict[str, Any], repeated: bool) -> FiredExecution:
    values = {f.name: getattr(row, f.name) for f in fields(Execution)}
    return FiredExecution(**values, fire_payload=payload, repeated=repeated)


async def _repeat(tx: StoreTx, cue: Cue, holder: str | None) -> FiredExecution:
    row = None if holder is None else await tx.get_execution(cue.user_id, holder)
    if row is None:  # only if its execution was removed under the key: refuse, do not guess
        raise Conflict("This idempotency key is in use; try again", code="idempotency_key_taken")
    carried = row.payload_override if row.payload_override is not None else cue.payload
    return _fired(row, dict(carried or {}), repeated=True)


async def fire_cue(
    services: Services,
    user: Principal,
    cue_id: str,
    send_at: datetime | None = None,
    payload_override: dict[str, Any] | None = None,
    merge_strategy: MergeStrategy | str = MergeStrategy.MERGE,
    idempotency_key: str | None = None,
) -> FiredExecution:
    """Create a ``manual_fire`` execution of one of the caller's cues, whatever its status, due
    at ``send_at`` when that is in the future and now otherwise; 404 ``cue_not_found``.

    ``payload_override`` is merged over the cue's payload (``merge_strategy`` ``merge``, the
    default) or replaces it (``replace``) for this run; the result is checked like a cue
    payload and must hold the cue's ``required_payload_keys`` (400 ``missing_payload_keys``).
    The cue's ``task`` still routes it. With an ``idempotency_key`` (1..255 characters), a
    fire of the same cue with the same key within :data:`IDEMPOTENCY_WINDOW` creates nothing
    and answers with the first fire's execution (``repeated``), even when fires race."""
    _check_key(idempotency_key)
    started, now = tracing.started(), services.clock.now()
    when = send_at if send_at is not None and send_at > now else now
    async with services.store.tx() as tx:
        cue = await tx.get_cue(user.user_id, cue_id)
        if cue is None:
            raise NotFound("Cue not found", code="cue_not_found")
        refuse_step_cue(cue)
        since = now - IDEMPOTENCY_WINDOW
        if idempotency_key is not None:
            held = await tx.fire_key_holder(user.user_id, cue.id, idempotency_key, since)
            if held is not None:
                return await _repeat(tx, cue, held)
        payload = fire_payload(cue.payload, payload_override, merge_strategy)
        extra: dict[str, Any] = {"id": ids.new_execution_id()}
        if payload_override is not None:
            check_payload(payload)
            extra["payload_override"] = payload
        check_required_keys(cue.required_payload_keys, payload)
        if idempotency_key is not None:
            holder = await tx.hold_fire_key(
                user.user_id, cue.id, idempotency_key, extra["id"], now, since
            )
            if holder != extra["id"]:  # a concurrent fire with the key won
                return await _repeat(tx, cue, holder)
        row = await _insert_run(tx, cue, when, now, MANUAL_FIRE, **extra)
    services.signals.executions_created([row])
    tracing.finished(
        "cueflow.fire", started, [(row.id, {"cue_id": cue.id, "trigger": MANUAL_FIRE})]
    )
    return _fired(row, payload, repeated=False)


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
