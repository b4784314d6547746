"""The executions of a flow's steps: what one attempt of a step (or of one item of a
``for_each`` step) is delivered as, and a ``for_each`` step's fan-out.

The fan-out creates every item's row and first execution in multi-row statements
(:meth:`cueflow.store.flows.FlowStore.insert_steps`, ``insert_step_executions``), in the
transaction of the hand-off that starts the step: 1,000 items are ten statements, not 2,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import cueflow.ids as ids
import cueflow.run_controls as run_controls
from cueflow.records import FlowRunRecord, StepRecord
from cueflow.states import Status

if TYPE_CHECKING:
    from cueflow.store import StoreTx

WHOLE_STEP = -1
"""The ``item`` of a step's own row (items of a ``for_each`` step are 0, 1 ...)."""


def attempt_execution(
    run: FlowRunRecord,
    step: dict[str, Any],
    heads: Mapping[str, StepRecord],
    item: int,
    item_input: Any,
    attempt: int,
    previous_failure: dict[str, Any] | None,
    scheduled_for: datetime,
    now: datetime,
) -> dict[str, Any]:
    """The values of the execution of attempt ``attempt`` of a step's unit ``item``
    (``heads``: the run's steps' own rows, for the parents' outputs)."""
    flow: dict[str, Any] = {
        "run_id": run.id,
        "flow_id": run.flow_id,
        "step": step["id"],
        "input": run.input,
        "parents": {p: heads[p].output if p in heads else None for p in step["needs"]},
        "attempt": attempt,
        "previous_failure": previous_failure,
    }
    if step.get("output_schema") is not None:  # what the output must match (agents show it)
        flow["output_schema"] = step["output_schema"]
    if item != WHOLE_STEP:
        flow.update(item=item_input, item_index=item)
    return {
        "id": ids.new_execution_id(),
        "cue_id": run.step_cues[step["id"]],
        "user_id": run.user_id,
        "transport": step["transport"],
        "scheduled_for": scheduled_for,
        "status": Status.PENDING.value,
        "triggered_by": "flow",
        "attempts": 0,
        "payload_override": {**step["payload"], "flow": flow},
        "created_at": now,
        "updated_at": now,
        "flow_run_id": run.id,
        "step_id": step["id"],
        "item": item,
        "step_attempt": attempt,
        **step_controls(run.step_cues[step["id"]], step),
    }


def step_controls(cue_id: str, step: Mapping[str, Any]) -> dict[str, Any]:
    """The run-control columns a stored step's executions are stamped with (its ``priority``,
    ``concurrency`` and ``rate_limit``; a step without them: priority 0, no limits). A limit
    without a key counts the step's runs under its hidden cue ``cue_id``."""
    concurrency = step.get("concurrency") or {}
    rate = step.get("rate_limit") or {}
    return run_controls.stamp(
        cue_id,
        step.get("priority") or 0,
        concurrency.get("limit"),
        concurrency.get("key"),
        rate.get("limit"),
        rate.get("period_seconds"),
        rate.get("key"),
    )


async def fan_out(
    tx: StoreTx,
    run: FlowRunRecord,
    step: dict[str, Any],
    head: dict[str, Any],
    items: Sequence[Any],
    heads: Mapping[str, StepRecord],
    now: datetime,
) -> list[dict[str, Any]]:
    """Create one row per item of a ``for_each`` step (``head``: the values of the step's own
    row, just inserted) with its first execution; returns the executions created."""
    units: list[dict[str, Any]] = []
    executions: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        execution = attempt_execution(run, step, heads, index, item, 1, None, now, now)
        executions.append(execution)
        unit = {**head, "id": ids.new_execution_id(), "item": index, "item_input": item}
        units.append({**unit, "attempts": 1, "execution_ids": [execution["id"]]})
    await tx.insert_steps(units)
    created = set(await tx.insert_step_executions(executions))
    return [execution for execution in executions if execution["id"] in created]
