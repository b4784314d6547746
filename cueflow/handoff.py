"""The hand-off: what happens to a flow run when one of its step executions ends.

Every place an execution reaches a terminal status (a reported outcome, single or batched; a
push delivery accepted or failed for the last time; a lease used up; an unclaimed execution
missed; a run's cancellation) calls :func:`executions_ended` **in the transaction that ended
it**. So the end of a step and everything it causes — the next attempt with
``flow.previous_failure``, the children whose last parent it was, the run's end — commit
together or not at all: a crash between the outcome and the hand-off cannot exist, and
nothing is created twice.

Exactly once on N nodes: the hand-off first locks the run's row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite has one writer), so the hand-offs of one run take turns and the second of two
parents finishing at once sees the first one's end. A child is created under the unique key
``(run, step, item)`` of ``flow_steps`` (and its executions under ``(run, step, item,
attempt)``), so even a hand-off run twice creates nothing twice.

Rules, as data in :mod:`cueflow.states` where they are statuses:

* A step starts once all its parents have ended, if its ``when`` holds
  (:func:`cueflow.states.step_should_run`), else it is ``skipped``.
* A task step's attempt is one execution of the step's hidden cue, with the step's payload
  plus ``flow`` (run, input, the parents' outputs, the attempt, the previous failure). A failed
  attempt (reported failure, lease used up, delivery failed, missed, or an output its
  ``output_schema`` refuses: type ``output_contract``) is retried as a new execution after the
  step's backoff until ``retry.max_attempts``; then the step fails.
* ``for_each``: the parent's output must be an array of at most :data:`MAX_ITEMS` items; one
  unit (``item`` 0...) per item, each with its own attempts; the step succeeds when every item
  did, with the array of their outputs.
* The run ends when every step has ended: ``failed`` if one failed, else ``succeeded``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

import cueflow.ids as ids
from cueflow.errors import Conflict
from cueflow.flow_schemas import schema_error, topological
from cueflow.records import Execution, FlowRunRecord, StepRecord
from cueflow.states import (
    RUN_TERMINAL,
    STEP_OPEN,
    STEP_TERMINAL,
    TERMINAL,
    FailureType,
    RunStatus,
    Status,
    StepStatus,
    StepType,
    run_end,
    step_should_run,
)

if TYPE_CHECKING:
    from cueflow.services import Services
    from cueflow.store import StoreTx

MAX_ITEMS = 100
"""Most items a ``for_each`` step fans out to; a longer array fails the step."""
MAX_OUTPUT_BYTES = 65_536
"""Largest step output, as JSON; a larger one fails the attempt (type ``output_too_large``)."""
WHOLE_STEP = -1
"""The ``item`` of a step's own row (items of a ``for_each`` step are 0, 1 ...)."""
_LATE_SIGNAL_SECONDS = 0.05
"""Executions created inside a caller's transaction are signalled again this long after, when
that transaction has most likely committed (signals only shorten waits; loops recheck)."""


async def executions_ended(
    services: Services, tx: StoreTx, rows: Iterable[Execution], now: datetime
) -> None:
    """Hand off after the executions ``rows`` (as updated) ended, inside their transaction.
    Rows that are not flow steps, or not in a terminal status, are ignored; so is the end of an
    attempt its step no longer waits for (a late report, a cancelled run). Runs are locked in
    the order of their ids, so two batches ending steps of the same runs cannot deadlock."""
    ended = [r for r in rows if r.flow_run_id is not None and r.status in TERMINAL]
    for row in sorted(ended, key=lambda r: (r.flow_run_id or "", r.id)):
        await _step_execution_ended(services, tx, row, now)


async def refuse_if_cancelled(tx: StoreTx, row: Execution) -> None:
    """409 ``flow_run_cancelled`` when ``row`` is an execution of a cancelled run: how the
    holder of a running step learns of the cancel (through its heartbeat or its outcome)."""
    run_id = row.flow_run_id
    if run_id is not None and await tx.run_status(run_id) == RunStatus.CANCELLED:
        raise Conflict("The flow run of this execution was cancelled", code="flow_run_cancelled")


async def advance(services: Services, tx: StoreTx, run: FlowRunRecord, now: datetime) -> None:
    """Start every step whose parents have all ended, and end the run when all steps have
    (the run's row must be locked)."""
    heads = {row.step_id: row for row in await tx.run_steps(run.id, item=WHOLE_STEP)}
    for step in topological(run.steps):
        if step["id"] in heads:
            continue
        parents = [heads.get(parent) for parent in step["needs"]]
        if any(p is None or p.status not in STEP_TERMINAL for p in parents):
            continue
        ended = [p for p in parents if p is not None]
        heads[step["id"]] = await _start_step(services, tx, run, step, ended, heads, now)
    statuses = [heads[s["id"]].status if s["id"] in heads else None for s in run.steps]
    end = run_end(s for s in statuses if s is not None) if None not in statuses else None
    if end is not None:
        await tx.update_run(
            run.id,
            {"status": end.value, "finished_at": now, "updated_at": now},
            sorted(set(RunStatus) - RUN_TERMINAL),
        )
        return
    open_ = [s for s in statuses if s in STEP_OPEN]
    waiting = bool(open_) and all(s == StepStatus.WAITING for s in open_)
    status = RunStatus.WAITING if waiting else RunStatus.RUNNING
    await tx.update_run(
        run.id, {"status": status.value, "updated_at": now}, sorted(set(RunStatus) - RUN_TERMINAL)
    )


async def finish_unit(
    services: Services,
    tx: StoreTx,
    run: FlowRunRecord,
    unit: StepRecord,
    status: StepStatus,
    now: datetime,
    output: Any = None,
    error: dict[str, Any] | None = None,
) -> None:
    """End a step (or an item: its step ends with its last item) and advance the run."""
    values = {"status": status.value, "output": output, "error": error, "finished_at": now}
    await tx.update_step(unit.id, values, sorted(STEP_OPEN))
    if unit.item != WHOLE_STEP:
        await _finish_fan_in(tx, run, unit.step_id, now)
    await advance(services, tx, run, now)


async def _finish_fan_in(tx: StoreTx, run: FlowRunRecord, step_id: str, now: datetime) -> None:
    # Counted in the database: reading every item each time one ends is quadratic in items.
    if await tx.count_steps(run.id, step_id, sorted(STEP_OPEN)):
        return
    rows = await tx.run_steps(run.id, step_id=step_id)
    items = sorted((row for row in rows if row.item != WHOLE_STEP), key=lambda r: r.item)
    if any(item.status not in STEP_TERMINAL for item in items):
        return
    head = next(row for row in rows if row.item == WHOLE_STEP)
    failed = next((item for item in items if item.status != StepStatus.SUCCEEDED), None)
    values: dict[str, Any] = {"finished_at": now}
    if failed is None:
        values.update(status=StepStatus.SUCCEEDED.value, output=[i.output for i in items])
    else:
        error = dict(failed.error or {"type": "item_failed", "reason": "An item failed"})
        values.update(status=StepStatus.FAILED.value, error={**error, "item": failed.item})
    await tx.update_step(head.id, values, sorted(STEP_OPEN))


async def _start_step(
    services: Services,
    tx: StoreTx,
    run: FlowRunRecord,
    step: dict[str, Any],
    parents: list[StepRecord],
    heads: dict[str, StepRecord],
    now: datetime,
) -> StepRecord:
    """Create the step's row (and its first executions) once its parents have ended."""
    values: dict[str, Any] = {
        "id": ids.new_execution_id(),
        "run_id": run.id,
        "step_id": step["id"],
        "item": WHOLE_STEP,
        "status": StepStatus.RUNNING.value,
        "attempts": 0,
        "execution_ids": [],
        "started_at": now,
    }
    items: list[Any] | None = None
    if not step_should_run(step["when"], [p.status for p in parents]):
        values.update(status=StepStatus.SKIPPED.value, finished_at=now)
    elif step["type"] == StepType.WAIT:
        until = now + timedelta(seconds=step["timeout_seconds"])
        values.update(status=StepStatus.WAITING.value, event=step["event"], wait_until=until)
    elif step.get("for_each") is not None:
        source = heads[step["for_each"]].output
        if not isinstance(source, list) or len(source) > MAX_ITEMS:
            reason = (
                f"for_each '{step['for_each']}' output is not an array"
                if not isinstance(source, list)
                else f"for_each '{step['for_each']}' output has over {MAX_ITEMS} items"
            )
            error = {"type": FailureType.FOR_EACH.value, "reason": reason}
            values.update(status=StepStatus.FAILED.value, error=error, finished_at=now)
        elif not source:
            values.update(status=StepStatus.SUCCEEDED.value, output=[], finished_at=now)
        else:
            items = source
    if not await tx.insert_step(values):
        return _existing(await tx.run_steps(run.id), step["id"], WHOLE_STEP)
    head = _record(values)
    if values["status"] != StepStatus.RUNNING:
        return head
    if items is None:
        return await _attempt(services, tx, run, step, head, heads, now, None, timedelta(0))
    for index, item in enumerate(items):
        unit = {**values, "id": ids.new_execution_id(), "item": index, "item_input": item}
        if await tx.insert_step(unit):
            first = _record(unit)
            await _attempt(services, tx, run, step, first, heads, now, None, timedelta(0))
    return head


async def _attempt(
    services: Services,
    tx: StoreTx,
    run: FlowRunRecord,
    step: dict[str, Any],
    unit: StepRecord,
    heads: Mapping[str, StepRecord],
    now: datetime,
    previous_failure: dict[str, Any] | None,
    delay: timedelta,
) -> StepRecord:
    """Create the next attempt's execution of ``unit`` (``heads``: the run's steps' own rows,
    for the parents' outputs)."""
    attempt = unit.attempts + 1
    flow: dict[str, Any] = {
        "run_id": run.id,
        "flow_id": run.flow_id,
        "step": step["id"],
        "input": run.input,
        "parents": {p: heads[p].output if p in heads else None for p in step["needs"]},
        "attempt": attempt,
        "previous_failure": previous_failure,
    }
    if unit.item != WHOLE_STEP:
        flow.update(item=unit.item_input, item_index=unit.item)
    execution_id = ids.new_execution_id()
    execution = {
        "id": execution_id,
        "cue_id": run.step_cues[step["id"]],
        "user_id": run.user_id,
        "transport": step["transport"],
        "scheduled_for": now + delay,
        "status": Status.PENDING.value,
        "triggered_by": "flow",
        "attempts": 0,
        "payload_override": {**step["payload"], "flow": flow},
        "created_at": now,
        "updated_at": now,
        "flow_run_id": run.id,
        "step_id": step["id"],
        "item": unit.item,
        "step_attempt": attempt,
    }
    if not await tx.insert_step_execution(execution):
        return unit
    values = {"attempts": attempt, "execution_ids": [*unit.execution_ids, execution_id]}
    updated = await tx.update_step(unit.id, values, sorted(STEP_OPEN))
    _signal(services, [execution])
    return updated or unit


async def _step_execution_ended(
    services: Services, tx: StoreTx, row: Execution, now: datetime
) -> None:
    run = await tx.lock_run(row.flow_run_id) if row.flow_run_id is not None else None
    if run is None or run.status in RUN_TERMINAL:
        return
    if row.step_id is None or row.item is None:
        return
    rows = await tx.run_steps(run.id, step_id=row.step_id, item=row.item)
    unit = next(iter(rows), None)
    if unit is None or unit.status not in STEP_OPEN or unit.execution_ids[-1:] != [row.id]:
        return
    step = definition(run, unit.step_id)
    execution = await tx.get_execution(run.user_id, row.id) or row
    output, failure = judge(execution, step)
    if failure is None:
        await finish_unit(services, tx, run, unit, StepStatus.SUCCEEDED, now, output=output)
        return
    failure = {**failure, "attempt": unit.attempts}
    retry = step.get("retry") or {}
    if unit.attempts < retry.get("max_attempts", 1):
        delay = backoff(retry.get("backoff_minutes") or [], unit.attempts)
        heads = {r.step_id: r for r in await tx.run_steps(run.id, item=WHOLE_STEP)}
        await _attempt(services, tx, run, step, unit, heads, now, failure, delay)
        return
    await finish_unit(services, tx, run, unit, StepStatus.FAILED, now, error=failure)


def judge(execution: Execution, step: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """The output of an ended step execution and, when the attempt failed, its failure
    (``reason``, ``type``, ``output``)."""
    recorded = execution.outcome_recorded_at is not None
    output = execution.outcome_output
    if output is None and recorded:
        output = execution.outcome_result
    if execution.status == Status.MISSED:
        reason = execution.error_message or "No worker claimed it in time"
        return None, {"type": FailureType.MISSED.value, "reason": reason, "output": None}
    if execution.status != Status.SUCCESS:
        if recorded and execution.outcome_success is False:
            reason = execution.outcome_error or "The step reported a failure"
            return None, {
                "type": FailureType.REPORTED_FAILURE.value,
                "reason": reason,
                "output": output,
            }
        reason = execution.error_message or "The execution failed"
        return None, {"type": FailureType.EXECUTION_FAILED.value, "reason": reason, "output": None}
    if len(orjson.dumps(output)) > MAX_OUTPUT_BYTES:
        reason = f"The output is over {MAX_OUTPUT_BYTES} bytes of JSON"
        return None, {"type": FailureType.OUTPUT_TOO_LARGE.value, "reason": reason, "output": None}
    schema = step.get("output_schema")
    if schema is not None:
        problem = schema_error(schema, output)
        if problem is not None:
            return None, {
                "type": FailureType.OUTPUT_CONTRACT.value,
                "reason": problem,
                "output": output,
            }
    return output, None


def backoff(minutes: list[int], attempt: int) -> timedelta:
    """The wait after failed attempt ``attempt`` (1-based): ``minutes[attempt-1]``, the last
    one once the list runs out, none when it is empty (cues' retry rule, without jitter)."""
    if not minutes:
        return timedelta(0)
    return timedelta(minutes=max(minutes[min(attempt - 1, len(minutes) - 1)], 0))


def definition(run: FlowRunRecord, step_id: str) -> dict[str, Any]:
    """The definition of one of the run's steps, as the run started."""
    return next(step for step in run.steps if step["id"] == step_id)


def _record(values: dict[str, Any]) -> StepRecord:
    fields: dict[str, Any] = {name: values.get(name) for name in StepRecord.__slots__}
    fields["execution_ids"] = list(values.get("execution_ids") or [])
    fields["status"] = StepStatus(fields["status"])
    return StepRecord(**fields)


def _existing(rows: list[StepRecord], step_id: str, item: int) -> StepRecord:
    return next(r for r in rows if r.step_id == step_id and r.item == item)


def _signal(services: Services, rows: list[dict[str, Any]]) -> None:
    services.signals.executions_created(rows)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(_LATE_SIGNAL_SECONDS, services.signals.executions_created, rows)


async def refusals(tx: StoreTx, rows: Iterable[Execution]) -> dict[str, Conflict]:
    """For the executions among ``rows`` whose run was cancelled, the 409 their outcome gets."""
    refused: dict[str, Conflict] = {}
    for row in rows:
        try:
            await refuse_if_cancelled(tx, row)
        except Conflict as error:
            refused[row.id] = error
    return refused
