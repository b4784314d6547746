"""Scheduled flows: a flow's ``schedule`` starts runs the way a cue fires.

A flow's schedule is held by a hidden **trigger cue** of the flow (``cues.flow_id`` set,
transport ``flow``, which no dispatcher or worker serves). Its schedule, ``next_run``, misfire
policy, pause and resume are a cue's, so the durable scheduler (:mod:`cueflow.scheduler`) fires
it with every other due cue: locked (``SKIP LOCKED`` on PostgreSQL), its execution inserted
under the fire key ``(cue_id, scheduled_for)``, ``next_run`` advanced. In that same
transaction :func:`start_fired_runs` starts one run for each such execution the batch inserted
and records the execution as ``success`` with the run's id as its result. An execution whose
fire key existed already was not inserted and starts nothing, so a fire starts exactly one run
whatever the number of nodes, and a fire and its run commit together or not at all. The run's
``idempotency_key`` is ``schedule:<trigger cue id>:<scheduled_for>``, a second guard.

Misfire policies hold unchanged: ``fire_once`` starts one run for the latest missed time,
``skip`` records a ``missed`` execution and starts none, ``fire_all`` starts one per missed time
(the newest ``catchup_limit``). Times missed while the schedule was paused are skipped on
resume. A run the schedule starts has ``trigger: "schedule"``, its ``scheduled_for`` and the
flow's ``schedule_input`` as ``input``; should that input no longer fit ``input_schema``, the
fire's execution fails with the reason and no run starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import cueflow.flow_runs as flow_runs
import cueflow.ids as ids
from cueflow.cues import (
    check_payload,
    first_run,
    schedule_of_cue,
    schedule_of_spec,
    schedule_values,
)
from cueflow.errors import CueflowError
from cueflow.flow_schemas import FlowCreate, FlowUpdate
from cueflow.records import Cue, FiredRun, FlowRecord
from cueflow.schemas import ScheduleIn
from cueflow.states import (
    CUE_INITIAL,
    CueEvent,
    CueStatus,
    Event,
    Status,
    move,
    one_time_cue_end,
)
from cueflow.store import FirePlan

if TYPE_CHECKING:
    from collections.abc import Callable

    from cueflow.services import Services
    from cueflow.store import StoreTx

TRIGGER_TRANSPORT = "flow"
"""The transport of a trigger cue: none is registered under this name, so nothing delivers or
claims its executions (they end in the transaction that fired them)."""
_SCHEDULE_FIELDS = frozenset({"schedule", "misfire_policy", "schedule_input", "schedule_status"})


def new_trigger(
    user_id: str, flow_id: str, spec: FlowCreate, now: datetime
) -> dict[str, Any] | None:
    """The values of the trigger cue of a flow being created (``None`` without a schedule);
    400 for a schedule a cue would refuse or a ``schedule_input`` the ``input_schema``
    refuses."""
    if spec.schedule is None:
        return None
    sched = schedule_of_spec(spec.schedule, now)
    _check_input(spec.input_schema, spec.schedule_input)
    return {
        "id": ids.new_cue_id(),
        "user_id": user_id,
        "name": f"flow:{flow_id}:schedule:{ids.new_cue_id()}",
        "description": None,
        "status": CUE_INITIAL.value,
        **schedule_values(sched, spec.schedule),
        "misfire_policy": spec.misfire_policy or "fire_once",
        "transport": TRIGGER_TRANSPORT,
        "task": None,
        "callback_url": None,
        "callback_method": "POST",
        "callback_headers": {},
        "payload": {"input": spec.schedule_input},
        "retry_max_attempts": 1,
        "retry_backoff_minutes": [],
        "on_failure": None,
        "timeout_seconds": None,
        "next_run": first_run(sched, now),
        "run_count": 0,
        "fired_count": 0,
        "created_at": now,
        "updated_at": now,
        "flow_id": flow_id,
    }


def changes_schedule(spec: FlowUpdate) -> bool:
    """Whether a ``PATCH`` touches the flow's schedule."""
    return bool(spec.model_fields_set & _SCHEDULE_FIELDS)


async def trigger_ids(tx: StoreTx, flow: FlowRecord) -> set[str]:
    """The ids of ``flow``'s trigger cues (none or one), which a definition change keeps."""
    return {cue.id for cue in await tx.flow_triggers(flow.user_id, [flow.id], TRIGGER_TRANSPORT)}


async def change(tx: StoreTx, flow: FlowRecord, spec: FlowUpdate, now: datetime) -> None:
    """Apply a ``PATCH``'s schedule fields to ``flow`` (as updated) inside its transaction:
    ``schedule`` sets or (``null``) removes it; ``misfire_policy``, ``schedule_input`` and
    ``schedule_status`` (pause, resume) change it. 400 ``no_schedule`` for those on a flow
    without one."""
    sent = spec.model_fields_set
    triggers = await tx.flow_triggers(flow.user_id, [flow.id], TRIGGER_TRANSPORT)
    current = triggers[0] if triggers else None
    if "schedule" in sent and spec.schedule is None:
        if current is not None:
            await tx.delete_flow_trigger(current.id)
            await tx.notify_schedule_changed()
        return
    if current is None:
        if not changes_schedule(spec):  # only input_schema changed
            return
        if spec.schedule is None:
            raise CueflowError("The flow has no schedule", code="no_schedule")
        create = FlowCreate.model_validate(
            {
                "name": flow.name,
                "steps": flow.steps,
                "input_schema": flow.input_schema,
                "schedule": spec.schedule,
                "misfire_policy": spec.misfire_policy,
                "schedule_input": spec.schedule_input,
            }
        )
        values = new_trigger(flow.user_id, flow.id, create, now)
        assert values is not None
        if spec.schedule_status == CueStatus.PAUSED:
            values.update(status=move(CueEvent.PAUSE).target, next_run=None)
        await tx.insert_cue(values)
        await tx.notify_schedule_changed()
        return
    await tx.update_flow_trigger(current.id, _changes(current, flow, spec, now))
    await tx.notify_schedule_changed()


def _changes(current: Cue, flow: FlowRecord, spec: FlowUpdate, now: datetime) -> dict[str, Any]:
    sent = spec.model_fields_set
    values: dict[str, Any] = {"updated_at": now}
    sched = schedule_of_cue(current)
    if isinstance(spec.schedule, ScheduleIn):
        sched = schedule_of_spec(spec.schedule, now)
        values.update(schedule_values(sched, spec.schedule))
        if current.status == CueStatus.ACTIVE:
            values["next_run"] = first_run(sched, now)
    if spec.misfire_policy is not None:
        values["misfire_policy"] = spec.misfire_policy
    schedule_input = spec.schedule_input if "schedule_input" in sent else current.payload["input"]
    _check_input(flow.input_schema, schedule_input)
    values["payload"] = {"input": schedule_input}
    if spec.schedule_status == CueStatus.PAUSED:
        values.update(status=move(CueEvent.PAUSE).target, next_run=None)
    elif spec.schedule_status == CueStatus.ACTIVE:
        values.update(status=move(CueEvent.RESUME).target, next_run=first_run(sched, now))
    return values


def _check_input(schema: dict[str, Any] | None, value: Any) -> None:
    """400 for a ``schedule_input`` JSON cannot store (as a cue's payload) or the flow's
    ``input_schema`` refuses."""
    check_payload({"input": value})
    flow_runs.check_input(schema, value, "schedule_input")


async def remove(tx: StoreTx, user_id: str, flow_id: str) -> None:
    """Delete the flow's schedule (its trigger cue and the fires' executions). A fire of it
    in progress holds the trigger's row: this waits for that fire, whose run then counts."""
    for trigger in await tx.flow_triggers(user_id, [flow_id], TRIGGER_TRANSPORT):
        await tx.delete_flow_trigger(trigger.id)


async def with_schedules(tx: StoreTx, user_id: str, flows: list[FlowRecord]) -> list[FlowRecord]:
    """``flows`` with their trigger cue attached (``FlowRecord.schedule``), in one query."""
    if not flows:
        return flows
    triggers = await tx.flow_triggers(user_id, [f.id for f in flows], TRIGGER_TRANSPORT)
    by_flow = {cue.flow_id: cue for cue in triggers}
    return [dataclasses.replace(flow, schedule=by_flow.get(flow.id)) for flow in flows]


class TriggerWatch:
    """The scheduler's fire plan, remembering the executions it planned for trigger cues."""

    def __init__(self, plan: Callable[[Cue], FirePlan]) -> None:
        self.plan = plan
        self.planned: dict[str, tuple[Cue, datetime]] = {}

    def __call__(self, cue: Cue) -> FirePlan:
        """Plan ``cue``'s fire; a trigger cue's executions are remembered by id."""
        fired = self.plan(cue)
        if cue.flow_id is not None and cue.transport == TRIGGER_TRANSPORT:
            for execution in fired.executions:
                self.planned[execution["id"]] = (cue, execution["scheduled_for"])
        return fired


async def start_fired_runs(
    services: Services,
    tx: StoreTx,
    watch: TriggerWatch,
    inserted: Iterable[FiredRun],
    now: datetime,
) -> int:
    """Start a run for each trigger cue execution the batch ``inserted`` as ``pending``, in the
    batch's transaction; returns how many started."""
    started = 0
    for fired in inserted:
        planned = watch.planned.get(fired.id)
        if planned is None or fired.status != Status.PENDING:
            continue
        cue, scheduled_for = planned
        flow = await tx.get_flow(cue.user_id, cue.flow_id or "")
        if flow is None:
            continue
        key = f"schedule:{cue.id}:{scheduled_for.isoformat()}"
        try:
            run, _, _ = await flow_runs.begin_run(
                services,
                tx,
                flow,
                cue.payload.get("input"),
                key,
                now,
                trigger=flow_runs.RunTrigger.SCHEDULE,
                scheduled_for=scheduled_for,
            )
        except CueflowError as exc:
            values: dict[str, Any] = {"error_message": exc.message, "updated_at": now}
            ended = move(Event.FAILED)
        else:
            started += 1
            values = {
                "outcome_success": True,
                "outcome_result": run.id,
                "outcome_recorded_at": now,
                "updated_at": now,
            }
            ended = move(Event.SUCCEEDED)
        await tx.update_execution(fired.id, values, move=ended)
        finished = one_time_cue_end(cue.schedule_type, ended.target)
        if finished is not None:
            await tx.bump_cue(
                cue.id,
                values={"status": move(finished).target},
                only_if_status=[CueStatus.ACTIVE.value],
            )
    return started
