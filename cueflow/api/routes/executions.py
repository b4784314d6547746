"""``/v1/executions``: history, and the worker pull protocol (claimable, claim, heartbeat,
outcome, and cueflow's release extension). The fixed paths are declared before the
``/{execution_id}`` ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from pydantic import Field

import cueflow.api.responses as responses
import cueflow.api.worker_answers as answers
import cueflow.api.worker_responses as worker_responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, execution_json, json_response
from cueflow.claims import CLAIMABLE_LIMIT, MAX_LIMIT, MAX_WAIT_SECONDS
from cueflow.executions import status_filter
from cueflow.schemas import BatchClaimRequest, BatchOutcomeRequest, ClaimRequest, OutcomeReport
from cueflow.store import ExecutionFilter

router = APIRouter(prefix="/v1/executions", tags=["executions"])

WorkerHeader = Annotated[str | None, Header(alias="X-Worker-Id")]
PollingWorker = Annotated[
    str | None,
    Header(
        alias="X-Worker-Id",
        min_length=1,
        max_length=255,
        description="The polling worker (cueflow extension): the poll counts as its heartbeat.",
    ),
]


@router.get("", response_model=responses.ExecutionList)
async def list_executions(
    user: CurrentUser,
    engine: EngineDep,
    cue_id: str | None = None,
    flow_run_id: str | None = None,
    step_id: str | None = None,
    status: str | None = None,
    status__in: str | None = None,
    worker_id: str | None = None,
    outcome_state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """The caller's executions, newest first, filtered."""
    where = ExecutionFilter(
        cue_id=cue_id,
        flow_run_id=flow_run_id,
        step_id=step_id,
        statuses=status_filter(status, status__in),
        worker_id=worker_id,
        outcome_state=outcome_state,
    )
    page = await engine.list_executions(user, where, limit=limit, offset=offset)
    return json_response(
        {
            "executions": [execution_json(r) for r in page.rows],
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "has_more": offset + limit < page.total,
            "oldest_claimed_at": page.oldest_claimed_at.isoformat()
            if page.oldest_claimed_at
            else None,
        }
    )


@router.get("/claimable", response_model=worker_responses.Claimable)
async def claimable(
    user: CurrentUser,
    engine: EngineDep,
    task: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = CLAIMABLE_LIMIT,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
    worker: PollingWorker = None,
) -> JSONResponse:
    """Executions due for the caller's workers, oldest first (50 unless ``limit`` says
    otherwise). ``wait=N`` (cueflow extension) holds an empty answer up to N seconds and
    returns as soon as something is claimable. A poll with ``X-Worker-Id`` counts as that
    worker's heartbeat (``GET /v1/workers`` lists it), as CueAPI's Workers document says."""
    return json_response(await answers.claimable(engine, user, task, limit, wait, worker))


@router.post("/claims", response_model=worker_responses.BatchClaimed)
async def claim_batch(
    body: BatchClaimRequest, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Claim several executions at once (cueflow extension): the listed ``execution_ids``, or
    up to ``limit`` of the oldest due. Claimed items carry their payload; listed ids that
    could not be claimed are reported per item with the single claim's 409."""
    return json_response(await answers.claim_batch(engine, user, body))


@router.post("/outcomes", response_model=worker_responses.BatchOutcomes)
async def outcome_batch(
    body: BatchOutcomeRequest, user: CurrentUser, engine: EngineDep, worker: WorkerHeader = None
) -> JSONResponse:
    """Report several outcomes at once (cueflow extension). Each item is handled exactly as
    ``POST /v1/executions/{id}/outcome`` would handle it; per item the answer, with its status."""
    return json_response(await answers.outcome_batch(engine, user, body, worker))


@router.post("/claim", response_model=worker_responses.Claimed)
async def claim_next(body: ClaimRequest, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Claim the oldest due execution."""
    return json_response(await answers.claim(engine, user, body))


@router.get("/{execution_id}", response_model=responses.Execution)
async def get_execution(execution_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """One execution, with the ``payload`` it carries (cueflow extension; not in the lists)."""
    row, payload = await engine.get_execution_with_payload(user, execution_id)
    return json_response({**execution_json(row), "payload": payload})


@router.post("/{execution_id}/claim", response_model=worker_responses.Claimed)
async def claim(
    execution_id: str, body: ClaimRequest, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Claim one execution."""
    return json_response(await answers.claim(engine, user, body, execution_id))


@router.post("/{execution_id}/heartbeat", response_model=worker_responses.LeaseExtended)
async def heartbeat(
    execution_id: str, user: CurrentUser, engine: EngineDep, worker: WorkerHeader = None
) -> JSONResponse:
    """Extend a claim's lease."""
    return json_response(await answers.heartbeat(engine, user, execution_id, worker))


@router.post("/{execution_id}/outcome", response_model=worker_responses.OutcomeRecorded)
async def outcome(
    execution_id: str,
    body: OutcomeReport,
    user: CurrentUser,
    engine: EngineDep,
    worker: WorkerHeader = None,
) -> JSONResponse:
    """Report how an execution went (once)."""
    return json_response(await answers.outcome(engine, user, execution_id, body, worker))


class ReleaseRequest(ClaimRequest):
    """``POST /v1/executions/{id}/release`` (cueflow extension): the holder and why."""

    reason: str | None = Field(None, max_length=500)
    retry_after_seconds: float | None = Field(None, ge=0, le=86400)
    """Claimable again after this long; by default after the cue's retry backoff."""


@router.post("/{execution_id}/release", response_model=worker_responses.Released)
async def release(
    execution_id: str, body: ReleaseRequest, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Give a claimed execution back unfinished (cueflow extension): it returns to the queue
    with the claim counted in ``attempts``, claimable again after ``retry_after_seconds`` or the
    cue's retry backoff (or it fails when its attempts are used up)."""
    return json_response(
        await engine.release_execution(
            user,
            execution_id,
            body.worker_id,
            body.reason,
            retry_after_seconds=body.retry_after_seconds,
        )
    )
