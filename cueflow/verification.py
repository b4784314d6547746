"""Verification of reported outcomes, after the fact: confirming or rejecting a reported
outcome, sending it back to ``verification_pending``, and appending evidence.

``outcome_state`` starts where :func:`cueflow.outcomes.outcome_state` puts it when the outcome
is recorded; from there:

* ``verify`` (``valid`` true or false) moves ``reported_success``, ``reported_failure`` or
  ``verification_pending`` to ``verified_success`` or ``verification_failed`` (any other state,
  or no outcome: 409 ``invalid_state``). A rejection's ``reason`` is kept in the evidence
  summary. No alert is raised from here.
* ``mark_pending`` moves any recorded outcome to ``verification_pending``.
* ``append_evidence`` adds evidence and never changes the state.

None of them touches the execution's ``status``. Each reads the execution under a row lock, so
concurrent calls apply one after the other. Evidence is stored in the execution's ``evidence``
JSON (the keys of the outcome body, plus ``metadata`` from ``append_evidence`` and
``validation_state``); like CueAPI, no endpoint returns it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.jsonvalues import has_huge_int, strip_nul
from cueflow.outcomes import MAX_METADATA_BYTES
from cueflow.records import Execution
from cueflow.store import StoreTx

if TYPE_CHECKING:
    from cueflow.services import Services

VERIFIABLE = frozenset({"reported_success", "reported_failure", "verification_pending"})
"""Outcome states ``verify`` accepts."""
SUMMARY_CHARS = 500
TEXT_LIMITS = {"external_id": 500, "result_url": 2083, "result_ref": 500, "result_type": 100}
"""Evidence text fields and their longest accepted length (as for outcome reports)."""
_ANY_JSON = ("artifacts", "metadata")


def _not_found() -> NotFound:
    return NotFound("Execution not found", code="execution_not_found")


async def _locked(
    tx: StoreTx, user: Principal, execution_id: str, missing: CueflowError
) -> Execution:
    row = await tx.lock_execution(user.user_id, execution_id) if ids.is_uuid(execution_id) else None
    if row is None:
        raise missing
    return row


async def verify(
    services: Services,
    user: Principal,
    execution_id: str,
    valid: bool = True,
    reason: str | None = None,
) -> dict[str, Any]:
    """Confirm (``valid``) or reject a reported outcome."""
    now = services.clock.now()
    reason = strip_nul(reason) if reason is not None else None
    async with services.store.tx() as tx:
        row = await _locked(tx, user, execution_id, _not_found())
        state = row.outcome_state
        if state not in VERIFIABLE:
            raise Conflict(f"Cannot verify from state '{state}'", code="invalid_state")
        evidence = dict(row.evidence or {})
        evidence["validation_state"] = "valid" if valid else "invalid"
        if not valid and reason:
            rejected = reason[:SUMMARY_CHARS]
            summary = evidence.get("summary")
            note = f"{summary} | verification rejected: {rejected}" if summary else rejected
            evidence["summary"] = note[:SUMMARY_CHARS]
        new_state = "verified_success" if valid else "verification_failed"
        values = {"outcome_state": new_state, "evidence": evidence, "updated_at": now}
        await tx.update_execution(execution_id, values)
    return {
        "execution_id": execution_id,
        "outcome_state": new_state,
        "valid": valid,
        "reason": reason,
    }


async def mark_pending(services: Services, user: Principal, execution_id: str) -> dict[str, Any]:
    """Put a recorded outcome (in any state) back to ``verification_pending``. An unknown
    execution answers CueAPI's generic 404 body; no outcome yet, 409 ``no_outcome``."""
    now = services.clock.now()
    missing = CueflowError("Not Found", code="http_error", status=404)
    async with services.store.tx() as tx:
        row = await _locked(tx, user, execution_id, missing)
        if row.outcome_recorded_at is None:
            raise Conflict("No outcome recorded yet", code="no_outcome")
        values = {"outcome_state": "verification_pending", "updated_at": now}
        await tx.update_execution(execution_id, values)
    return {"execution_id": execution_id, "outcome_state": "verification_pending"}


def evidence_patch(body: dict[str, Any]) -> dict[str, Any]:
    """The evidence a ``PATCH .../evidence`` body adds: its known keys with a truthy value.
    Text fields must be scalars within :data:`TEXT_LIMITS` (422); ``summary`` is stringified and
    cut to 500 characters; ``metadata`` must stay under 10 KB of JSON (400)."""
    body = strip_nul(body)
    found: dict[str, Any] = {}
    for name, limit in TEXT_LIMITS.items():
        value = body.get(name)
        if not value:
            continue
        if isinstance(value, dict | list):
            raise CueflowError(
                f"body.{name}: Input should be a valid string", code="validation_error", status=422
            )
        if len(str(value)) > limit:
            raise CueflowError(
                f"body.{name}: String should have at most {limit} characters",
                code="validation_error",
                status=422,
            )
        found[name] = str(value)
    if body.get("summary"):
        found["summary"] = str(body["summary"])[:SUMMARY_CHARS]
    for name in _ANY_JSON:
        if body.get(name):
            found[name] = body[name]
    if has_huge_int(found):
        raise CueflowError(
            "Evidence contains an integer beyond 64 bits, which is not supported",
            code="invalid_metadata",
        )
    if "metadata" in found and len(json.dumps(found["metadata"])) > MAX_METADATA_BYTES:
        raise CueflowError("Evidence metadata must be under 10KB", code="metadata_too_large")
    return found


async def append_evidence(
    services: Services, user: Principal, execution_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Add evidence to a recorded outcome (``outcome_state`` is not recomputed); 404
    ``execution_not_found``, 409 ``no_outcome`` before an outcome is reported."""
    added = evidence_patch(body)
    now = services.clock.now()
    async with services.store.tx() as tx:
        row = await _locked(tx, user, execution_id, _not_found())
        if row.outcome_recorded_at is None:
            raise Conflict("Report outcome first before appending evidence", code="no_outcome")
        if added:
            evidence = {**(row.evidence or {}), **added}
            await tx.update_execution(execution_id, {"evidence": evidence, "updated_at": now})
    return {
        "execution_id": execution_id,
        "outcome_state": row.outcome_state,
        "evidence_updated": True,
    }
