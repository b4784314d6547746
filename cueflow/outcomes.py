"""Outcomes: write-once reports of how an execution went, and the verification state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cueflow import ids, outcome_alerts
from cueflow.accounts import Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.jsonvalues import has_huge_int
from cueflow.schemas import OutcomeReport
from cueflow.states import Event, Status, move

if TYPE_CHECKING:
    from cueflow.engine import Engine

MAX_METADATA_BYTES = 10_240
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
    engine: Engine,
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
    if not ids.is_uuid(execution_id):
        raise NotFound("Execution not found", code="execution_not_found")
    if report.metadata is not None and len(json.dumps(report.metadata)) > MAX_METADATA_BYTES:
        raise CueflowError("Outcome metadata must be under 10KB", code="metadata_too_large")
    if has_huge_int(report.metadata) or has_huge_int(report.artifacts):
        raise CueflowError(
            "Outcome metadata contains an integer beyond 64 bits, which is not supported",
            code="invalid_metadata",
        )
    holder = report.worker_id or worker_id
    now = engine.clock.now()
    evidence = evidence_of(report)
    async with engine.store.tx() as tx:
        current = await tx.get_execution(user.user_id, execution_id)
        if current is None:
            raise NotFound("Execution not found", code="execution_not_found")
        if current["outcome_recorded_at"] is not None:
            raise Conflict(
                "Outcome has already been recorded for this execution",
                code="outcome_already_recorded",
            )
        cue = await tx.get_cue(user.user_id, current["cue_id"])
        state = outcome_state(report.success, cue["verification_mode"] if cue else None, evidence)
        if report.success and state in ("verified_success", "verification_failed"):
            evidence["validation_state"] = "valid" if state == "verified_success" else "invalid"
        pull = engine.is_pull(current["transport"])
        values: dict[str, Any] = {
            "outcome_success": report.success,
            "outcome_result": report.result,
            "outcome_error": report.error,
            "outcome_metadata": report.metadata,
            "outcome_recorded_at": now,
            "outcome_state": state,
            "evidence": evidence or None,
            "updated_at": now,
        }
        event = Event.SUCCEEDED if report.success else Event.FAILED
        if pull:
            values["lease_expires_at"] = None
            if report.success:
                values["delivered_at"] = now
            else:
                values["error_message"] = report.error
        row = await tx.record_outcome(
            user.user_id, execution_id, values, move(event) if pull else None, holder
        )
        if row is None:
            raise Conflict(
                "This worker no longer holds the claim on this execution", code="lease_lost"
            )
        if pull and cue is not None:
            cue_values: dict[str, Any] = {"last_run": now, "updated_at": now}
            await tx.bump_cue(cue["id"], run_count=1, values=cue_values)
            if cue["schedule_type"] == "once" and row["status"] in (Status.SUCCESS, Status.FAILED):
                status = "completed" if row["status"] == Status.SUCCESS else "failed"
                await tx.bump_cue(cue["id"], values={"status": status}, only_if_status=["active"])
    engine.metrics.outcomes.labels(current["transport"], str(report.success).lower()).inc()
    await outcome_alerts.after_outcome(engine, row, report.success)
    return {
        "execution_id": execution_id,
        "outcome_recorded": True,
        "outcome_state": state,
        "reason": None,
    }
