"""The worker protocol's answers, as JSON-ready documents: what the FastAPI routes of
:mod:`cueflow.api.routes.executions` and the worker fast path (:mod:`cueflow.api.fastpath`)
both send. Each function is one route's work after its inputs are parsed; the callers only
parse and serialise, so a change to an answer here reaches both ways in."""

from __future__ import annotations

from typing import Any

from cueflow.api.errors import envelope
from cueflow.authentication import Principal
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from cueflow.schemas import BatchClaimRequest, BatchOutcomeRequest, ClaimRequest, OutcomeReport
from cueflow.wire import claimable_json, claimed_json


async def claimable(
    engine: Engine,
    user: Principal,
    task: str | None,
    limit: int,
    wait: float,
    worker: str | None,
) -> dict[str, Any]:
    """``GET /v1/executions/claimable``: the executions due for the caller's workers (a poll
    naming its ``worker``, ``X-Worker-Id``, is that worker's heartbeat)."""
    rows = await engine.claimable(user, task, limit=limit, wait=wait, worker_id=worker)
    return {"executions": [claimable_json(r) for r in rows]}


async def claim_batch(engine: Engine, user: Principal, body: BatchClaimRequest) -> dict[str, Any]:
    """``POST /v1/executions/claims``: the claimed items, and the listed ids that were refused
    (each with the single claim's 409)."""
    batch = await engine.claim_batch(
        user,
        body.worker_id,
        limit=body.limit,
        execution_ids=body.execution_ids,
        task=body.task,
        wait=body.wait,
    )
    refused = envelope("claim_failed", "Execution not available for claiming", 409)["error"]
    return {
        "claimed": [
            claimed_json(r, batch.lease_expires_at, batch.claimed_at) for r in batch.claimed
        ],
        "lease_seconds": batch.lease_seconds,
        "failed": [{"execution_id": i, "error": refused} for i in batch.refused],
    }


async def outcome_batch(
    engine: Engine, user: Principal, body: BatchOutcomeRequest, worker: str | None
) -> dict[str, Any]:
    """``POST /v1/executions/outcomes``: per item the single outcome's answer, with its status."""
    answers = await engine.report_outcomes(
        user, [(item.execution_id, item) for item in body.outcomes], body.worker_id or worker
    )
    results = []
    for item, answer in zip(body.outcomes, answers, strict=True):
        if isinstance(answer, CueflowError):
            error = envelope(answer.code, answer.message, answer.status)["error"]
            results.append(
                {"execution_id": item.execution_id, "status": answer.status, "error": error}
            )
        else:
            results.append({**answer, "status": 200})
    return {"results": results}


async def claim(
    engine: Engine, user: Principal, body: ClaimRequest, execution_id: str | None = None
) -> dict[str, Any]:
    """``POST /v1/executions/{id}/claim``, or with no ``execution_id`` the claim of the oldest
    due execution (``POST /v1/executions/claim``)."""
    return await engine.claim(user, body.worker_id, execution_id)


async def heartbeat(
    engine: Engine, user: Principal, execution_id: str, worker: str | None
) -> dict[str, Any]:
    """``POST /v1/executions/{id}/heartbeat``: the lease extended."""
    return await engine.heartbeat_execution(user, execution_id, worker)


async def outcome(
    engine: Engine, user: Principal, execution_id: str, body: OutcomeReport, worker: str | None
) -> dict[str, Any]:
    """``POST /v1/executions/{id}/outcome``: the outcome recorded."""
    return await engine.report_outcome(user, execution_id, body, worker)
