"""Flows, runs and steps as wire dicts (the REST API and the Python API render them alike)."""

from __future__ import annotations

from typing import Any

from cueflow.flow_runs import RunTrigger
from cueflow.records import FlowRecord, FlowRunRecord, StepRecord
from cueflow.states import StepStatus, StepType
from cueflow.step_executions import WHOLE_STEP
from cueflow.wire import schedule_json


def flow_json(flow: FlowRecord) -> dict[str, Any]:
    """A flow as ``GET /v1/flows/{id}`` answers it (with its schedule, when it has one)."""
    trigger = flow.schedule
    return {
        "id": flow.id,
        "name": flow.name,
        "description": flow.description,
        "input_schema": flow.input_schema,
        "schedule": schedule_json(trigger) if trigger is not None else None,
        "misfire_policy": trigger.misfire_policy if trigger is not None else None,
        "schedule_input": trigger.payload.get("input") if trigger is not None else None,
        "schedule_status": trigger.status if trigger is not None else None,
        "next_run": trigger.next_run if trigger is not None else None,
        "steps": flow.steps,
        "created_at": flow.created_at,
        "updated_at": flow.updated_at,
    }


def run_json(run: FlowRunRecord, steps: list[StepRecord] | None = None) -> dict[str, Any]:
    """A run; with ``steps``, the state of each of its steps (``items`` for a ``for_each``
    step; a step not started yet is ``pending``) with its ``type``, ``needs`` and ``event`` as
    the run started (the flow may have changed since)."""
    body: dict[str, Any] = {
        "id": run.id,
        "flow_id": run.flow_id,
        "status": run.status,
        "input": run.input,
        "idempotency_key": run.idempotency_key,
        "trigger": run.trigger or RunTrigger.API.value,
        "scheduled_for": run.scheduled_for,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
    }
    if steps is None:
        return body
    heads = {row.step_id: row for row in steps if row.item == WHOLE_STEP}
    shown: dict[str, Any] = {}
    for definition in run.steps:
        step_id = definition["id"]
        head = heads.get(step_id)
        shown[step_id] = {
            "type": definition.get("type") or StepType.TASK.value,
            "needs": list(definition.get("needs") or []),
            **({"event": definition["event"]} if definition.get("event") else {}),
            **(_step_json(head) if head is not None else _pending()),
        }
        if definition.get("for_each") is not None:
            items = sorted((r for r in steps if r.step_id == step_id and r.item >= 0), key=_item)
            shown[step_id]["items"] = [{"item": r.item, **_step_json(r)} for r in items]
            shown[step_id]["attempts"] = sum(r.attempts for r in items)
            shown[step_id]["execution_ids"] = [e for r in items for e in r.execution_ids]
    body["steps"] = shown
    return body


def _item(row: StepRecord) -> int:
    return row.item


def _step_json(row: StepRecord) -> dict[str, Any]:
    return {
        "status": row.status,
        "attempts": row.attempts,
        "execution_ids": list(row.execution_ids),
        "output": row.output,
        "error": row.error,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
    }


def _pending() -> dict[str, Any]:
    return {
        "status": StepStatus.PENDING.value,
        "attempts": 0,
        "execution_ids": [],
        "output": None,
        "error": None,
        "started_at": None,
        "finished_at": None,
    }
