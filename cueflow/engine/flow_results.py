"""Flow runs as Python code reads them: :class:`FlowRun` with a :class:`StepRun` per step, and
the wait for a run's end.

``engine.run_flow(...)`` and ``engine.wait_for_flow_run(...)`` answer a :class:`FlowRun`; its
:meth:`FlowRun.result` waits until the run has ended and answers it again, ended::

    run = await engine.run_flow("orders", input={"order": 7})
    done = await run.result(timeout=60)
    if done.status == "succeeded":
        receipt = done.outputs["charge"]["receipt"]

The shape is the REST API's ``GET /v1/flow-runs/{id}`` (:mod:`cueflow.flow_wire`), typed: a
step not started yet is ``pending``; a ``for_each`` step lists its ``items``.

Waiting reads the run, then sleeps until this process signals that a run ended
(:attr:`cueflow.signals.Signals.flow_runs`) or :data:`RECHECK_SECONDS` passed (a run ended by
another node, which no local signal announces), and reads it again: no busy loop, and a run
that ends anywhere is seen within that bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cueflow.records import FlowRunRecord, StepRecord
from cueflow.signals import WorkSignal
from cueflow.states import RUN_TERMINAL, RunStatus, StepStatus
from cueflow.step_executions import WHOLE_STEP

RECHECK_SECONDS = 0.5
"""Longest sleep of a wait for a run's end between two reads of the run."""


@dataclass(frozen=True, slots=True)
class StepFailure:
    """Why a step's attempt failed: a step's :attr:`StepRun.error`, and what the next attempt
    of an in-process step sees as :attr:`cueflow.StepContext.previous_failure`."""

    type: str
    """A :class:`cueflow.states.FailureType` value: ``reported_failure``, ``output_contract``,
    ``wait_timeout`` ..."""
    reason: str
    """What went wrong, in words (the exception's text, the schema's complaint ...)."""
    attempt: int | None = None
    """The attempt that failed (1-based)."""
    output: Any = None
    """The output the attempt gave, when it gave one (the refused output of an
    ``output_contract`` failure)."""
    item: int | None = None
    """For a ``for_each`` step: the item whose failure failed the step."""

    @classmethod
    def of(cls, error: dict[str, Any] | None) -> StepFailure | None:
        """The failure stored as ``error`` (``None`` for none)."""
        if error is None:
            return None
        return cls(
            type=str(error.get("type", "")),
            reason=str(error.get("reason", "")),
            attempt=error.get("attempt"),
            output=error.get("output"),
            item=error.get("item"),
        )


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of a run (or one item of a ``for_each`` step)."""

    id: str
    """The step's id in the flow."""
    status: StepStatus
    attempts: int
    """Attempts made (all items' together for a ``for_each`` step)."""
    output: Any
    """What the step gave (JSON), once it succeeded: an in-process step's return value, a
    worker's reported ``output``, a wait step's event data, a ``for_each`` step's list."""
    error: StepFailure | None
    execution_ids: list[str]
    started_at: datetime | None
    finished_at: datetime | None
    item: int | None = None
    """For an item of a ``for_each`` step: its index."""
    items: list[StepRun] = field(default_factory=list)
    """For a ``for_each`` step: its items, in order."""


@dataclass(frozen=True, slots=True)
class FlowRun:
    """A run of a flow: its status, input and steps, as read when it was answered."""

    id: str
    flow_id: str
    status: RunStatus
    input: Any
    idempotency_key: str | None
    steps: dict[str, StepRun]
    """Every step of the definition the run started with, by id, in definition order."""
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    _waiter: Callable[[str, float | None], Awaitable[FlowRun]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def done(self) -> bool:
        """Whether the run has ended (``succeeded``, ``failed`` or ``cancelled``)."""
        return self.status in RUN_TERMINAL

    @property
    def outputs(self) -> dict[str, Any]:
        """The output of each step that succeeded, by step id."""
        return {k: s.output for k, s in self.steps.items() if s.status == StepStatus.SUCCEEDED}

    async def result(self, timeout: float | None = None) -> FlowRun:
        """This run once it has ended (it is answered at once if it already had). Raises
        :class:`TimeoutError` when it is still open after ``timeout`` seconds (``None``: no
        limit); a run that failed or was cancelled is answered, not raised."""
        if self._waiter is None:
            raise RuntimeError("this FlowRun was not made by an engine")
        return await self._waiter(self.id, timeout)


def flow_run(
    run: FlowRunRecord,
    rows: list[StepRecord],
    waiter: Callable[[str, float | None], Awaitable[FlowRun]] | None = None,
) -> FlowRun:
    """The :class:`FlowRun` of ``run`` and its step rows (``waiter``: what
    :meth:`FlowRun.result` calls)."""
    heads = {row.step_id: row for row in rows if row.item == WHOLE_STEP}
    steps: dict[str, StepRun] = {}
    for definition in run.steps:
        step_id = definition["id"]
        head = heads.get(step_id)
        step = _step(step_id, head) if head is not None else _pending(step_id)
        if definition.get("for_each") is not None:
            units = sorted((r for r in rows if r.step_id == step_id and r.item >= 0), key=_item)
            items = [_step(step_id, r, r.item) for r in units]
            step = StepRun(
                id=step.id,
                status=step.status,
                attempts=sum(r.attempts for r in units),
                output=step.output,
                error=step.error,
                execution_ids=[e for r in units for e in r.execution_ids],
                started_at=step.started_at,
                finished_at=step.finished_at,
                items=items,
            )
        steps[step_id] = step
    return FlowRun(
        id=run.id,
        flow_id=run.flow_id,
        status=run.status,
        input=run.input,
        idempotency_key=run.idempotency_key,
        steps=steps,
        created_at=run.created_at,
        updated_at=run.updated_at,
        finished_at=run.finished_at,
        _waiter=waiter,
    )


async def wait_for_end(
    read: Callable[[], Awaitable[FlowRun]], signal: WorkSignal, timeout: float | None
) -> FlowRun:
    """``read()`` again each time ``signal`` says a run ended (or :data:`RECHECK_SECONDS`
    passed) until the run it reads has ended; :class:`TimeoutError` after ``timeout``
    seconds."""
    async with asyncio.timeout(timeout):
        while True:
            ticket = signal.ticket()  # before the read: an end signalled during it is not lost
            run = await read()
            if run.done:
                return run
            waiter = asyncio.ensure_future(ticket.wait())
            try:
                await asyncio.wait({waiter}, timeout=RECHECK_SECONDS)
            finally:
                waiter.cancel()


def _item(row: StepRecord) -> int:
    return row.item


def _step(step_id: str, row: StepRecord, item: int | None = None) -> StepRun:
    return StepRun(
        id=step_id,
        status=row.status,
        attempts=row.attempts,
        output=row.output,
        error=StepFailure.of(row.error),
        execution_ids=list(row.execution_ids),
        started_at=row.started_at,
        finished_at=row.finished_at,
        item=item,
    )


def _pending(step_id: str) -> StepRun:
    return StepRun(
        id=step_id,
        status=StepStatus.PENDING,
        attempts=0,
        output=None,
        error=None,
        execution_ids=[],
        started_at=None,
        finished_at=None,
    )
