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
* ``for_each``: the parent's output must be an array of at most
  ``settings.flow_for_each_limit`` items (1,000 by default); one unit (``item`` 0...) per
  item, each with its own attempts, created in batches (:mod:`cueflow.step_executions`); the
  step succeeds when every item did, with the array of their outputs. Each item's end asks the
  store whether an item is still open (an index answers), and only the last one reads the
  items, once, to build the output: fan-in costs no read of every item per item.
* A step whose executions would pass the account's monthly execution limit fails at once
  (type ``execution_limit``, :func:`cueflow.quotas.step_budget`), and is not retried.
* The run ends when every step has ended: ``failed`` if one failed, else ``succeeded``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

import cueflow.ids as ids
import cueflow.quotas as quotas
from cueflow.errors import Conflict
from cueflow.flow_schemas import schema_error, topological
from cueflow.metrics import handoff_clock
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
from cueflow.step_executions import WHOLE_STEP, attempt_execution, fan_out

if TYPE_CHECKING:
    from cueflow.services import Services
    from cueflow.store import StoreTx

MAX_OUTPUT_BYTES = 65_536
"""Largest step output, as JSON; a larger one fails the attempt (type ``output_too_large``)."""
log = logging.getLogger(__name__)
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
        with handoff_clock(restart=True):
            await _step_execution_ended(services, tx, row, now)


async def refuse_if_cancelled(tx: StoreTx, row: Execution) -> None:
    """409 ``flow_run_cancelled`` when ``row`` is an execution of a cancelled run: how the
    holder of a running step learns of the cancel (through its heartbeat or its outcome)."""
    run_id = row.flow_run_id
    if run_id is not None and await tx.run_status(run_id) == RunStatus.CANCELLED:
        raise _cancelled()


def _cancelled() -> Conflict:
    return Conflict("The flow run of this execution was cancelled", code="flow_run_cancelled")


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
        finished = await tx.update_run(
            run.id,
            {"status": end.value, "finished_at": now, "updated_at": now},
            sorted(set(RunStatus) - RUN_TERMINAL),
        )
        if finished is not None:
            services.metrics.flow_runs_finished.labels(end.value).inc()
            log.info("flow run ended: %s", end.value, extra={"flow_run_id": run.id})
        signal_run_end(services)
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
    """End a step (or an item: its step ends with its last item) and advance the run (an item
    that is not the last changes nothing else, so nothing else is read)."""
    if error is not None:
        why = f"{error.get('type')}: {error.get('reason')}"
        log.info("step %s failed: %s", unit.step_id, why, extra={"flow_run_id": run.id})
    values = {"status": status.value, "output": output, "error": error, "finished_at": now}
    await tx.update_step(unit.id, values, sorted(STEP_OPEN))
    if unit.item != WHOLE_STEP and not await _finish_fan_in(tx, run, unit.step_id, now):
        return
    with handoff_clock(restart=False):  # an event's or a deadline's hand-off starts here
        await advance(services, tx, run, now)


async def _finish_fan_in(tx: StoreTx, run: FlowRunRecord, step_id: str, now: datetime) -> bool:
    """End a ``for_each`` step once its last item ended; whether it did."""
    if await tx.step_has_items_in(run.id, step_id, sorted(STEP_OPEN)):
        return False
    rows = await tx.run_steps(run.id, step_id)
    items = [row for row in rows if row.item != WHOLE_STEP]
    head = next(row for row in rows if row.item == WHOLE_STEP)
    failed = next((item for item in items if item.status != StepStatus.SUCCEEDED), None)
    values: dict[str, Any] = {"finished_at": now}
    if failed is None:
        values.update(status=StepStatus.SUCCEEDED.value, output=[i.output for i in items])
    else:
        error = dict(failed.error or {"type": "item_failed", "reason": "An item failed"})
        values.update(status=StepStatus.FAILED.value, error={**error, "item": failed.item})
    await tx.update_step(head.id, values, sorted(STEP_OPEN))
    return True


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
        most = services.settings.flow_for_each_limit
        if not isinstance(source, list) or len(source) > most:
            reason = (
                f"for_each '{step['for_each']}' output is not an array"
                if not isinstance(source, list)
                else f"for_each '{step['for_each']}' output has over {most} items"
            )
            error = {"type": FailureType.FOR_EACH.value, "reason": reason}
            values.update(status=StepStatus.FAILED.value, error=error, finished_at=now)
        elif not source:
            values.update(status=StepStatus.SUCCEEDED.value, output=[], finished_at=now)
        else:
            items = source
    if values["status"] == StepStatus.RUNNING:
        budget = await quotas.step_budget(services, tx, run.user_id, now)
        if budget is not None and budget < (1 if items is None else len(items)):
            error = quotas.limit_failure(services)
            values.update(status=StepStatus.FAILED.value, error=error, finished_at=now)
    if not await tx.insert_step(values):
        return (await tx.run_steps(run.id, step["id"], WHOLE_STEP))[0]
    head = _record(values)
    if values["status"] != StepStatus.RUNNING:
        return head
    if items is None:
        head = await _attempt(services, tx, run, step, head, heads, now, None, timedelta(0))
        services.metrics.observe_handoff()
        return head
    _signal(services, await fan_out(tx, run, step, values, items, heads, now))
    services.metrics.observe_handoff()
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
    execution = attempt_execution(
        run, step, heads, unit.item, unit.item_input, attempt, previous_failure, now + delay, now
    )
    if not await tx.insert_step_execution(execution):
        return unit
    values = {"attempts": attempt, "execution_ids": [*unit.execution_ids, execution["id"]]}
    updated = await tx.update_step(unit.id, values, sorted(STEP_OPEN))
    _signal(services, [execution])
    return updated or unit


async def _step_execution_ended(
    services: Services, tx: StoreTx, row: Execution, now: datetime
) -> None:
    run = await tx.lock_run(row.flow_run_id) if row.flow_run_id is not None else None
    if run is None or run.status in RUN_TERMINAL:
        return
    units = await tx.run_steps(run.id, row.step_id, row.item) if row.step_id is not None else []
    unit = units[0] if units else None
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
        budget = await quotas.step_budget(services, tx, run.user_id, now)
        if budget == 0:
            refused = quotas.limit_failure(services)
            reason = f"{refused['reason']}; attempt {unit.attempts} failed: {failure['reason']}"
            failure = {**failure, **refused, "reason": reason}
        else:
            delay = backoff(retry.get("backoff_minutes") or [], unit.attempts)
            why = f"attempt {unit.attempts} failed ({failure['type']}); retrying"
            log.info("step %s %s", unit.step_id, why, extra={"flow_run_id": run.id})
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
    fields: dict[str, Any] = {f.name: values.get(f.name) for f in dataclasses.fields(StepRecord)}
    fields["execution_ids"] = list(values.get("execution_ids") or [])
    fields["status"] = StepStatus(fields["status"])
    return StepRecord(**fields)


def _signal(services: Services, rows: list[dict[str, Any]]) -> None:
    services.signals.executions_created(rows)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(_LATE_SIGNAL_SECONDS, services.signals.executions_created, rows)


def signal_run_end(services: Services) -> None:
    """Wake the callers waiting for a run to end, now and once the transaction most likely
    committed (they read the run again; a wake-up before the commit costs one read)."""
    services.signals.flow_runs.notify()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    loop.call_later(_LATE_SIGNAL_SECONDS, services.signals.flow_runs.notify)


async def refusals(tx: StoreTx, rows: Iterable[Execution]) -> dict[str, Conflict]:
    """For the executions among ``rows`` whose run was cancelled, the 409 their outcome gets
    (each run's status read once)."""
    statuses: dict[str, str | None] = {}
    refused: dict[str, Conflict] = {}
    for row in rows:
        run_id = row.flow_run_id
        if run_id is None:
            continue
        if run_id not in statuses:
            statuses[run_id] = await tx.run_status(run_id)
        if statuses[run_id] == RunStatus.CANCELLED:
            refused[row.id] = _cancelled()
    return refused
