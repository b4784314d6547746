"""Flow runs: start one, read them, cancel one, send it an event, and fail the waits whose
deadline passed (the lease sweeper calls :func:`expire_waits`).

Starting a run creates its root steps' executions in the transaction that stores the run; from
then on the hand-off (:mod:`cueflow.handoff`) moves it on as its executions end. An
``idempotency_key`` makes a start safe to repeat: a second start with the same key answers the
run the first one made. Cancel is final: open steps become ``cancelled``, their executions not
yet taken fail (``Flow run cancelled``), and a worker holding one learns it from its next
heartbeat or outcome (409 ``flow_run_cancelled``); nothing moves the run afterwards.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import cueflow.handoff as handoff
import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.flow_schemas import RunCreate, schema_error
from cueflow.records import FlowRecord, FlowRunRecord, StepRecord
from cueflow.states import (
    RUN_INITIAL,
    RUN_TERMINAL,
    STEP_OPEN,
    Event,
    FailureType,
    RunStatus,
    StepStatus,
    move,
)

if TYPE_CHECKING:
    from cueflow.services import Services
    from cueflow.store import StoreTx

log = logging.getLogger(__name__)

WAIT_SWEEP_LIMIT = 100
"""Most runs one sweep fails a wait of."""


class RunTrigger(StrEnum):
    """What started a run (``trigger`` on the wire)."""

    API = "api"
    """A start request (``POST /v1/flows/{id}/runs``, the Python API)."""
    SCHEDULE = "schedule"
    """The flow's schedule (:mod:`cueflow.flow_schedule`)."""


def check_input(schema: dict[str, Any] | None, value: Any, name: str = "input") -> None:
    """400 ``invalid_input`` when ``schema`` (a flow's ``input_schema``) refuses ``value``."""
    if schema is None:
        return
    problem = schema_error(schema, value)
    if problem is not None:
        message = problem.replace("output", name, 1)
        raise CueflowError(f"Invalid run input: {message}", code="invalid_input")


async def start_run(
    services: Services, user: Principal, flow_id: str, spec: RunCreate
) -> tuple[FlowRunRecord, list[StepRecord], bool]:
    """Start a run of one of the caller's flows; returns it, its steps and whether it was
    created now (``False``: its ``idempotency_key`` had started it already). 400
    ``invalid_input`` when the flow's ``input_schema`` refuses ``input``."""
    now = services.clock.now()
    async with services.store.tx() as tx:
        flow = await tx.get_flow(user.user_id, flow_id, lock=True)
        if flow is None:
            raise NotFound("Flow not found", code="flow_not_found")
        return await begin_run(
            services, tx, flow, spec.input, spec.idempotency_key, now, RunTrigger.API
        )


async def begin_run(
    services: Services,
    tx: StoreTx,
    flow: FlowRecord,
    run_input: Any,
    idempotency_key: str | None,
    now: datetime,
    trigger: RunTrigger,
    scheduled_for: datetime | None = None,
) -> tuple[FlowRunRecord, list[StepRecord], bool]:
    """Start a run of ``flow`` inside ``tx`` (see :func:`start_run`): its root steps'
    executions are created in the same transaction."""
    check_input(flow.input_schema, run_input)
    if idempotency_key is not None:
        existing = await tx.run_by_idempotency_key(flow.id, idempotency_key)
        if existing is not None:
            return existing, await tx.run_steps(existing.id), False
    values = {
        "id": ids.new_flow_run_id(),
        "flow_id": flow.id,
        "user_id": flow.user_id,
        "status": RUN_INITIAL.value,
        "input": run_input,
        "idempotency_key": idempotency_key,
        "steps": flow.steps,
        "step_cues": flow.step_cues,
        "created_at": now,
        "updated_at": now,
        "trigger": trigger.value,
        "scheduled_for": scheduled_for,
    }
    if not await tx.insert_run(values):
        raise Conflict("A run with this idempotency_key is starting", code="run_starting")
    run = await tx.lock_run(values["id"])
    assert run is not None
    services.metrics.flow_runs_started.labels(trigger.value).inc()
    log.info("flow run started (%s)", trigger.value, extra={"flow_run_id": run.id})
    await handoff.advance(services, tx, run, now)
    run = await tx.get_run(flow.user_id, run.id)
    assert run is not None
    return run, await tx.run_steps(run.id), True


async def get_run(
    services: Services, user: Principal, run_id: str
) -> tuple[FlowRunRecord, list[StepRecord]]:
    """One of the caller's runs with its steps (404 ``flow_run_not_found``)."""
    async with services.store.tx() as tx:
        run = await tx.get_run(user.user_id, run_id)
        if run is None:
            raise NotFound("Flow run not found", code="flow_run_not_found")
        return run, await tx.run_steps(run_id)


async def list_runs(
    services: Services,
    user: Principal,
    flow_id: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[FlowRunRecord], int]:
    """A page of the caller's runs (of ``flow_id``, in ``status``), newest first."""
    async with services.store.tx() as tx:
        return await tx.list_runs(user.user_id, flow_id, status, limit, offset)


async def cancel_run(
    services: Services, user: Principal, run_id: str
) -> tuple[FlowRunRecord, list[StepRecord]]:
    """Cancel an open run (409 ``flow_run_finished`` once it ended)."""
    now = services.clock.now()
    async with services.store.tx() as tx:
        run = await _locked(tx, user, run_id)
        cancelled = await tx.update_run(
            run_id,
            {"status": RunStatus.CANCELLED.value, "finished_at": now, "updated_at": now},
            sorted(set(RunStatus) - RUN_TERMINAL),
        )
        if cancelled is None:
            raise _finished()
        services.metrics.flow_runs_finished.labels(cancelled.status.value).inc()
        log.info("flow run ended: %s", cancelled.status.value, extra={"flow_run_id": run_id})
        values = {"status": StepStatus.CANCELLED.value, "finished_at": now}
        await tx.update_run_steps(run_id, values, sorted(STEP_OPEN))
        handoff.signal_run_end(services)
        await tx.cancel_step_executions(
            run.id,
            move(Event.CANCELLED),
            {"error_message": "Flow run cancelled", "next_retry": None, "updated_at": now},
        )
        return cancelled, await tx.run_steps(run_id)


async def send_event(
    services: Services, user: Principal, run_id: str, name: str, data: Any
) -> tuple[FlowRunRecord, list[str]]:
    """Resume the run's wait steps waiting for ``name``: ``data`` becomes their output, or,
    when it breaks a wait step's ``output_schema``, the step fails (type ``output_contract``;
    how a rejected approval fails the run). Returns the run and the ids of the steps resumed
    (none when no step waits for it now); 409 ``flow_run_finished`` once the run ended."""
    now = services.clock.now()
    async with services.store.tx() as tx:
        run = await _locked(tx, user, run_id)
        waiting = [
            step
            for step in await tx.run_steps(run_id)
            if step.status == StepStatus.WAITING and step.event == name
        ]
        for step in waiting:
            schema = handoff.definition(run, step.step_id).get("output_schema")
            problem = schema_error(schema, data) if schema is not None else None
            if problem is None:
                await handoff.finish_unit(
                    services, tx, run, step, StepStatus.SUCCEEDED, now, output=data
                )
                continue
            failure = {"type": FailureType.OUTPUT_CONTRACT.value, "reason": problem}
            error = {**failure, "attempt": 1, "output": data}
            await handoff.finish_unit(services, tx, run, step, StepStatus.FAILED, now, error=error)
        current = await tx.get_run(user.user_id, run_id)
        assert current is not None
        return current, [step.step_id for step in waiting]


async def expire_waits(services: Services, now: datetime | None = None) -> int:
    """Fail every wait step whose deadline passed (type ``wait_timeout``), so that
    ``when: "failure"`` steps can react; returns how many failed."""
    now = now or services.clock.now()
    expired = 0
    async with services.store.tx() as tx:
        run_ids = await tx.runs_with_due_waits(now, StepStatus.WAITING.value, WAIT_SWEEP_LIMIT)
    for run_id in run_ids:
        async with services.store.tx() as tx:
            run = await tx.lock_run(run_id)
            if run is None or run.status in RUN_TERMINAL:
                continue
            for step in await tx.run_steps(run_id):
                due = step.wait_until is not None and step.wait_until <= now
                if step.status == StepStatus.WAITING and due:
                    reason = f"No event '{step.event}' arrived before the wait's deadline"
                    error = {"type": FailureType.WAIT_TIMEOUT.value, "reason": reason, "attempt": 1}
                    await handoff.finish_unit(
                        services, tx, run, step, StepStatus.FAILED, now, error=error
                    )
                    expired += 1
    return expired


async def _locked(tx: Any, user: Principal, run_id: str) -> FlowRunRecord:
    if await tx.get_run(user.user_id, run_id) is None:
        raise NotFound("Flow run not found", code="flow_run_not_found")
    run: FlowRunRecord = await tx.lock_run(run_id)
    if run.status in RUN_TERMINAL:
        raise _finished()
    return run


def _finished() -> Conflict:
    return Conflict("The flow run has ended", code="flow_run_finished")
