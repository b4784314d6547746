"""Flow definitions: create, list, read, change and delete a flow.

Each task step gets a hidden cue (``cues.flow_id`` set): it carries the step's transport,
callback, task, timeout and signing, so every transport, lease, alert and official worker
treats a step's execution as any other. Hidden cues are never scheduled (no ``next_run``),
listed by ``GET /v1/cues`` nor counted in cue quotas or usage. Their own ``retry`` is one
attempt: a step's retries are new executions made by the hand-off (:mod:`cueflow.handoff`),
each carrying ``flow.previous_failure``.

A flow's ``schedule`` is held by one more hidden cue, its trigger, which the scheduler fires
(:mod:`cueflow.flow_schedule`).

A changed definition (``PATCH`` with ``steps``) keeps the hidden cue of each task step whose
delivery (type, transport, payload, callback, retry backoff, timeout) did not change and gets
new ones for the others; runs already started keep the definition and cues they started with.
The same change deletes the flow's hidden step cues that neither the new definition nor any of
the flow's runs refers to, never its trigger (a run's cues carry its executions, so they stay
while it exists). A run starting share-locks the flow's row, so a change cannot delete the
cues of a run being stored.
Hidden cues are no cues of their owner's (:func:`cueflow.cues.refuse_step_cue`).

A flow with a run still open cannot be deleted (409 ``flow_has_open_runs``); deleting one
deletes its finished runs, its hidden cues and their executions with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import cueflow.flow_schedule as flow_schedule
import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.cues import check_payload
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.flow_schemas import FlowCreate, FlowUpdate, InvalidFlow, StepIn, check_definition
from cueflow.records import FlowRecord
from cueflow.states import CUE_INITIAL, RUN_TERMINAL, RunStatus, ScheduleType, StepType
from cueflow.store import Duplicate

if TYPE_CHECKING:
    from cueflow.services import Services
    from cueflow.store import StoreTx

OPEN_RUNS = tuple(sorted(s.value for s in set(RunStatus) - RUN_TERMINAL))


async def create_flow(services: Services, user: Principal, spec: FlowCreate) -> FlowRecord:
    """Validate and store a flow with the hidden cue of each task step."""
    check_definition(spec.steps, spec.input_schema)
    now = services.clock.now()
    flow_id = ids.new_flow_id()
    cues = await _hidden_cues(services, user, flow_id, spec.steps, now)
    trigger = flow_schedule.new_trigger(user.user_id, flow_id, spec, now)
    values = {
        "id": flow_id,
        "user_id": user.user_id,
        "name": spec.name,
        "description": spec.description,
        "input_schema": spec.input_schema,
        "steps": [_stored(step) for step in spec.steps],
        "step_cues": {cue["step"]: cue["values"]["id"] for cue in cues},
        "created_at": now,
        "updated_at": now,
    }
    async with services.store.tx() as tx:
        await _insert_flow(tx, values)
        for cue in cues:
            await tx.insert_cue(cue["values"])
        if trigger is not None:
            await tx.insert_cue(trigger)
            await tx.notify_schedule_changed()
        flow = await tx.get_flow(user.user_id, flow_id)
        assert flow is not None
        [flow] = await flow_schedule.with_schedules(tx, user.user_id, [flow])
    if trigger is not None:
        services.signals.wake()
    return flow


async def list_flows(
    services: Services, user: Principal, limit: int, offset: int
) -> tuple[list[FlowRecord], int]:
    """A page of the caller's flows, newest first, and their total."""
    async with services.store.tx() as tx:
        flows, total = await tx.list_flows(user.user_id, limit, offset)
        return await flow_schedule.with_schedules(tx, user.user_id, flows), total


async def get_flow(services: Services, user: Principal, flow_id: str) -> FlowRecord:
    """One of the caller's flows (404 ``flow_not_found``)."""
    async with services.store.tx() as tx:
        flow = await tx.get_flow(user.user_id, flow_id)
        if flow is None:
            raise NotFound("Flow not found", code="flow_not_found")
        [flow] = await flow_schedule.with_schedules(tx, user.user_id, [flow])
    return flow


async def update_flow(
    services: Services, user: Principal, flow_id: str, spec: FlowUpdate
) -> FlowRecord:
    """Change a flow's name, description, input schema or steps (see the module's text)."""
    now = services.clock.now()
    changes = spec.model_dump(exclude_unset=True, exclude_none=True)
    values: dict[str, Any] = {"updated_at": now}
    for name in ("name", "description", "input_schema"):
        if name in changes:
            values[name] = changes[name]
    cues: list[dict[str, Any]] = []
    if spec.steps is not None or spec.input_schema is not None:
        current = await get_flow(services, user, flow_id)
        steps = spec.steps or [StepIn.model_validate(s) for s in current.steps]
        check_definition(steps, spec.input_schema)
        if spec.steps is not None:
            kept = _unchanged_cues(current, steps)
            fresh = [step for step in steps if step.id not in kept]
            cues = await _hidden_cues(services, user, flow_id, fresh, now)
            values["steps"] = [_stored(step) for step in steps]
            values["step_cues"] = {**kept, **{cue["step"]: cue["values"]["id"] for cue in cues}}
    async with services.store.tx() as tx:
        try:
            flow = await tx.update_flow(user.user_id, flow_id, values)
        except Duplicate as exc:
            raise _name_taken() from exc
        if flow is None:
            raise NotFound("Flow not found", code="flow_not_found")
        for cue in cues:
            await tx.insert_cue(cue["values"])
        if spec.steps is not None:
            used = set(flow.step_cues.values()) | await tx.runs_step_cues(flow_id)
            used |= await flow_schedule.trigger_ids(tx, flow)
            await tx.delete_step_cues(flow_id, sorted(used))
        if flow_schedule.changes_schedule(spec) or "input_schema" in values:
            await flow_schedule.change(tx, flow, spec, now)
        [flow] = await flow_schedule.with_schedules(tx, user.user_id, [flow])
    if flow_schedule.changes_schedule(spec):
        services.signals.wake()
    return flow


def _unchanged_cues(current: FlowRecord, steps: list[StepIn]) -> dict[str, str]:
    """The hidden cues of ``current`` that the new ``steps`` keep, by step id."""
    before = {step["id"]: step for step in current.steps}
    kept: dict[str, str] = {}
    for step in steps:
        old = before.get(step.id)
        cue_id = current.step_cues.get(step.id)
        if old is not None and cue_id is not None and _delivery(old) == _delivery(_stored(step)):
            kept[step.id] = cue_id
    return kept


def _delivery(step: dict[str, Any]) -> tuple[Any, ...]:
    """What a step's hidden cue is made of."""
    retry = step.get("retry") or {}
    return (
        step.get("type"),
        step.get("transport"),
        step.get("payload"),
        step.get("callback"),
        retry.get("backoff_minutes"),
        step.get("timeout_seconds"),
    )


async def delete_flow(services: Services, user: Principal, flow_id: str) -> None:
    """Delete a flow with its finished runs; 409 ``flow_has_open_runs`` while one is open."""
    async with services.store.tx() as tx:
        if await tx.get_flow(user.user_id, flow_id) is None:
            raise NotFound("Flow not found", code="flow_not_found")
        # first, so that a fire of the schedule running now ends before the runs are counted
        await flow_schedule.remove(tx, user.user_id, flow_id)
        if await tx.count_open_runs(flow_id, OPEN_RUNS):
            raise Conflict(
                "The flow has runs still open; cancel them or let them finish first",
                code="flow_has_open_runs",
            )
        await tx.delete_flow(user.user_id, flow_id)


async def _insert_flow(tx: StoreTx, values: dict[str, Any]) -> None:
    try:
        await tx.insert_flow(values)
    except Duplicate as exc:
        raise _name_taken() from exc


def _name_taken() -> Conflict:
    return Conflict("A flow with this name already exists", code="flow_name_taken")


def _stored(step: StepIn) -> dict[str, Any]:
    return step.model_dump(mode="json")


async def _hidden_cues(
    services: Services, user: Principal, flow_id: str, steps: list[StepIn], now: datetime
) -> list[dict[str, Any]]:
    """The hidden cues of the task steps (``step`` and cue ``values`` each)."""
    return [
        await _hidden_cue(services, user, flow_id, step, now)
        for step in steps
        if step.type == StepType.TASK
    ]


async def _hidden_cue(
    services: Services, user: Principal, flow_id: str, step: StepIn, now: datetime
) -> dict[str, Any]:
    """The values of the hidden cue of a task step, checked by the step's transport; an error
    names the step."""
    try:
        transport = services.transports.named(step.transport)
        check_payload(step.payload)
    except CueflowError as exc:
        raise InvalidFlow(f"Step '{step.id}': {exc.message}") from exc
    callback = step.callback
    task = step.payload.get("task")
    values: dict[str, Any] = {
        "id": ids.new_cue_id(),
        "user_id": user.user_id,
        "name": f"flow:{flow_id}:{step.id}:{ids.new_cue_id()}",
        "description": None,
        "status": CUE_INITIAL.value,
        "schedule_type": ScheduleType.RECURRING.value,
        "schedule_timezone": "UTC",
        "transport": step.transport,
        "task": task if isinstance(task, str) and len(task) <= 255 else None,
        "callback_url": str(callback.url) if callback and callback.url else None,
        "callback_method": callback.method if callback else "POST",
        "callback_headers": (callback.headers or {}) if callback else {},
        "payload": step.payload,
        "retry_max_attempts": 1,
        "retry_backoff_minutes": step.retry.backoff_minutes if step.retry else [],
        "on_failure": None,
        "timeout_seconds": step.timeout_seconds,
        "next_run": None,
        "run_count": 0,
        "fired_count": 0,
        "created_at": now,
        "updated_at": now,
        "flow_id": flow_id,
    }
    try:
        await transport.validate_cue(values)
    except CueflowError as exc:
        raise InvalidFlow(f"Step '{step.id}': {exc.message}") from exc
    return {"step": step.id, "values": values}
