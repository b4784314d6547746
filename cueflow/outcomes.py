"""Outcomes: write-once reports of how an execution went, and the verification state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import orjson

import cueflow.alert_rules as alert_rules
import cueflow.handoff as handoff
import cueflow.ids as ids
import cueflow.overlap as overlap
from cueflow.authentication import Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.jsonvalues import has_huge_int
from cueflow.records import Execution, OutcomeTarget
from cueflow.schemas import OutcomeReport
from cueflow.states import (
    Event,
    Move,
    ScheduleType,
    Status,
    cue_end_moves,
    move,
    one_time_cue_end,
)
from cueflow.store import CueRun, ReportGate

if TYPE_CHECKING:
    from cueflow.services import Services

MAX_METADATA_BYTES = 10_240
MAX_BATCH = 100
"""Most outcomes one batch request may report."""
_EVIDENCE = ("external_id", "result_url", "result_ref", "result_type", "summary", "artifacts")


def evidence_of(report: OutcomeReport) -> dict[str, Any]:
    """The non-empty evidence fields of a report."""
    found: dict[str, Any] = {}
    for name in _EVIDENCE:
        value = getattr(report, name)
        if value:
            found[name] = str(value) if name == "result_url" else value
    return found


def outcome_state(success: bool, mode: str | None, evidence: dict[str, Any]) -> str:
    """The verification state of a fresh outcome (contract §8)."""
    if not success:
        return "reported_failure"
    required = {
        "require_external_id": "external_id",
        "require_result_url": "result_url",
        "require_artifacts": "artifacts",
    }
    if mode == "manual":
        return "verification_pending"
    if mode in required:
        return "verified_success" if evidence.get(required[mode]) else "verification_failed"
    return "reported_success"


async def record_outcome(
    services: Services,
    user: Principal,
    execution_id: str,
    report: OutcomeReport,
    worker_id: str | None = None,
) -> dict[str, Any]:
    """Record an outcome once. For pull transports it also finishes the execution (and a
    one-time cue); for push transports delivery status and outcome stay separate facts.

    A worker that names itself (``worker_id`` in the body or ``X-Worker-Id``) and no longer holds
    the claim gets 409 ``lease_lost``: the new holder's result stands.
    """
    (answer,) = await record_outcomes(services, user, [(execution_id, report)], worker_id)
    if isinstance(answer, CueflowError):
        raise answer
    return answer


@dataclass
class _Write:
    """One outcome about to be written: where its answer goes and what it sets."""

    index: int
    execution_id: str
    success: bool
    cue_id: str
    schedule_type: ScheduleType | None
    """The cue's schedule type; ``None`` when the cue is gone."""
    values: dict[str, Any]
    move: Move | None
    holder: str | None
    state: str


async def record_outcomes(
    services: Services,
    user: Principal,
    reports: Sequence[tuple[str, OutcomeReport]],
    worker_id: str | None = None,
) -> list[dict[str, Any] | CueflowError]:
    """Record several outcomes in one transaction (cueflow extension). Each item has exactly
    the semantics of :func:`record_outcome`; its answer, or the error it would have raised, is
    returned in order.

    The batch costs a handful of statements whatever its size: executions and their cues are
    read in one statement, outcomes that set the same values are written by one conditional
    ``UPDATE``, and cue run counters by one more. An id repeated in the batch is answered as a
    second report would be: 409 ``outcome_already_recorded`` once the first was written."""
    if len(reports) > MAX_BATCH:
        raise CueflowError(f"At most {MAX_BATCH} outcomes per request", code="batch_too_large")
    now = services.clock.now()
    found: dict[str, OutcomeTarget] | None = None
    if len(reports) == 1:
        single = await _record_single(services, user, *reports[0], worker_id, now)
        if not isinstance(single, OutcomeTarget):
            return [single]
        found = {single.execution.id: single}
    answers: list[dict[str, Any] | CueflowError | None] = [None] * len(reports)
    recorded: list[tuple[Execution, bool]] = []
    async with services.store.tx() as tx:
        if found is None:
            wanted = list({eid for eid, _ in reports if ids.is_uuid(eid)})
            found = {t.execution.id: t for t in await tx.outcome_targets(user.user_id, wanted)}
        refused = await handoff.refusals(tx, [t.execution for t in found.values()])
        refused.update(overlap.refusals(t.execution for t in found.values()))
        groups: dict[bytes, list[_Write]] = {}
        repeats: list[int] = []
        seen: set[str] = set()
        for index, (execution_id, report) in enumerate(reports):
            if execution_id in seen:
                repeats.append(index)
                continue
            seen.add(execution_id)
            try:
                if execution_id in refused:
                    raise refused[execution_id]
                write = _prepare(services, index, found.get(execution_id), report, worker_id, now)
            except CueflowError as error:
                answers[index] = error
                continue
            key = _group_key(write)
            groups.setdefault(key, []).append(write)
        finished: dict[tuple[int, Move | None], list[str]] = {}
        runs: dict[str, list[Any]] = {}
        for writes in groups.values():
            first = writes[0]
            written = await tx.record_outcomes(
                user.user_id,
                [w.execution_id for w in writes],
                first.values,
                first.move,
                report_gate(first.holder),
            )
            by_id = {execution.id: execution for execution in written}
            for write in writes:
                execution = by_id.get(write.execution_id)
                if execution is None:
                    answers[write.index] = Conflict(
                        "This worker no longer holds the claim on this execution",
                        code="lease_lost",
                    )
                    continue
                recorded.append((execution, write.success))
                answers[write.index] = _answer(write)
                if write.move is not None and write.schedule_type is not None:
                    run = runs.setdefault(write.cue_id, [0, None])
                    run[0] += 1
                    ended = one_time_cue_end(write.schedule_type, execution.status)
                    if ended is not None:
                        run[1] = move(ended)
        await handoff.executions_ended(services, tx, [row for row, _ in recorded], now)
        for cue_id, (count, finish) in runs.items():
            finished.setdefault((count, finish), []).append(cue_id)
        bumps = list(finished.items())
        if len(bumps) > 1:
            # Cue rows are locked in id order, one at a time: two batches touching the same
            # cues (a flow's step cues) in different groups would otherwise deadlock.
            bumps = [((count, finish), [cue]) for cue, (count, finish) in sorted(runs.items())]
        for (count, finish), ids_ in bumps:
            await tx.bump_cues(
                ids_,
                run_count=count,
                values={"last_run": now, "updated_at": now},
                finish=finish,
            )
    for index in repeats:
        execution_id = reports[index][0]
        answer = next(
            a for (eid, _), a in zip(reports, answers, strict=True) if eid == execution_id
        )
        answers[index] = (
            answer
            if isinstance(answer, CueflowError)
            else Conflict(
                "Outcome has already been recorded for this execution",
                code="outcome_already_recorded",
            )
        )
    await _after(services, recorded)
    return cast("list[dict[str, Any] | CueflowError]", answers)


async def _record_single(
    services: Services,
    user: Principal,
    execution_id: str,
    report: OutcomeReport,
    worker_id: str | None,
    now: datetime,
) -> dict[str, Any] | CueflowError | OutcomeTarget:
    """One outcome, the hot path of a worker: a read and one write (the outcome with its cue's
    run counted, :meth:`~cueflow.store.ExecutionStore.record_outcome`), outside a transaction
    where the store can (PostgreSQL: two round trips instead of five). The read needs no
    lock: the write checks again everything the answer depends on (no outcome recorded yet,
    the report gate, the status the move starts from), so a report that lost a race to
    another is refused as it would be in a transaction (409 ``lease_lost``).

    Returns the answer (or the error it raises); for a flow step, whose hand-off must happen in
    the outcome's transaction, the target as read, for :func:`record_outcomes` to go on with."""
    async with services.store.tx(single_statement=True) as tx:
        targets = (
            await tx.outcome_targets(user.user_id, [execution_id])
            if ids.is_uuid(execution_id)
            else []
        )
        target = targets[0] if targets else None
        if target is not None and target.execution.flow_run_id is not None:
            return target
        try:
            if target is not None:
                refused = overlap.refusals([target.execution])
                if execution_id in refused:
                    raise refused[execution_id]
            write = _prepare(services, 0, target, report, worker_id, now)
        except CueflowError as error:
            return error
        run = None
        if write.move is not None and write.schedule_type is not None:
            run = CueRun({"last_run": now, "updated_at": now}, cue_end_moves(write.schedule_type))
        execution = await tx.record_outcome(
            user.user_id,
            write.execution_id,
            write.values,
            write.move,
            report_gate(write.holder),
            run,
        )
    if execution is None:
        return Conflict(
            "This worker no longer holds the claim on this execution", code="lease_lost"
        )
    await _after(services, [(execution, write.success)])
    return _answer(write)


def _answer(write: _Write) -> dict[str, Any]:
    """The answer to a written outcome."""
    return {
        "execution_id": write.execution_id,
        "outcome_recorded": True,
        "outcome_state": write.state,
        "reason": None,
    }


async def _after(services: Services, recorded: list[tuple[Execution, bool]]) -> None:
    """What follows written outcomes, once committed: wake workers, count, raise alerts."""
    if any(e.flow_run_id is not None or e.concurrency_key is not None for e, _ in recorded):
        # The steps their hand-off created, or the room a concurrency limit regained, are
        # committed now: wake long-polling workers at once (the hand-off's own signal, inside
        # the transaction, comes before the commit).
        services.signals.work.notify()
    for execution, success in recorded:
        services.metrics.outcomes.labels(execution.transport, str(success).lower()).inc()
        await alert_rules.after_outcome(services, execution, success)


_HELD = frozenset({Status.DELIVERING})
"""A claim under way: only the worker holding it may report (the worker it was taken from gets
``lease_lost``: the new holder's result stands)."""
_LEASE_FAILED = frozenset({Status.FAILED})
"""A claimed execution that failed without an outcome: its lease ran out for the last time, and
its worker's late report is refused (its last attempt ended without it)."""


def report_gate(worker_id: str | None) -> ReportGate | None:
    """Where a late report of the worker that names itself ``worker_id`` may land: on an
    execution it holds, one nobody holds, or one back in the queue; not on one its claim was
    taken from, nor on one its expired lease failed. ``None`` (no check) for an unnamed
    reporter."""
    if worker_id is None:
        return None
    return ReportGate(worker_id, open=_OPEN_TO_ANY, held=_OPEN_TO_HOLDER)


_OPEN_TO_ANY = tuple(sorted(s.value for s in set(Status) - _HELD - _LEASE_FAILED))
_OPEN_TO_HOLDER = tuple(sorted(s.value for s in _HELD))


def _prepare(
    services: Services,
    index: int,
    target: OutcomeTarget | None,
    report: OutcomeReport,
    worker_id: str | None,
    now: datetime,
) -> _Write:
    """Check one report against the execution as read and work out what to write."""
    if target is None:
        raise NotFound("Execution not found", code="execution_not_found")
    current = target.execution
    if report.metadata is not None and len(json.dumps(report.metadata)) > MAX_METADATA_BYTES:
        raise CueflowError("Outcome metadata must be under 10KB", code="metadata_too_large")
    if has_huge_int(report.metadata) or has_huge_int(report.artifacts):
        raise CueflowError(
            "Outcome metadata contains an integer beyond 64 bits, which is not supported",
            code="invalid_metadata",
        )
    if current.outcome_recorded_at is not None:
        raise Conflict(
            "Outcome has already been recorded for this execution",
            code="outcome_already_recorded",
        )
    evidence = evidence_of(report)
    state = outcome_state(report.success, target.verification_mode, evidence)
    if report.success and state in ("verified_success", "verification_failed"):
        evidence["validation_state"] = "valid" if state == "verified_success" else "invalid"
    pull = services.transports.is_pull(current.transport)
    values: dict[str, Any] = {
        "outcome_success": report.success,
        "outcome_result": report.result,
        "outcome_error": report.error,
        "outcome_metadata": report.metadata,
        "outcome_output": report.output,
        "outcome_state": state,
        "evidence": evidence or None,
        "outcome_recorded_at": now,
        "updated_at": now,
    }
    if pull:
        values["lease_expires_at"] = None
        if report.success:
            values["delivered_at"] = now
            values["error_message"] = None  # a reset's note no longer describes it
        else:
            values["error_message"] = report.error
    event = Event.SUCCEEDED if report.success else Event.FAILED
    return _Write(
        index=index,
        execution_id=current.id,
        success=report.success,
        cue_id=current.cue_id,
        schedule_type=target.schedule_type,
        values=values,
        move=move(event) if pull else None,
        holder=report.worker_id or worker_id,
        state=state,
    )


def _group_key(write: _Write) -> bytes:
    """Outcomes with equal keys set equal values and can be written by one statement."""
    target = write.move.target if write.move is not None else None
    return orjson.dumps(
        [write.values, target, write.holder], option=orjson.OPT_SORT_KEYS, default=str
    )
