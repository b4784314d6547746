"""``/v1/executions``: history, and the worker pull protocol (claimable, claim, heartbeat,
outcome, and cueflow's release extension). The fixed paths are declared before the
``/{execution_id}`` ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from pydantic import Field

from cueflow.api import responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import claimable_json, execution_json, json_response
from cueflow.executions import status_filter
from cueflow.schemas import ClaimRequest, OutcomeReport
from cueflow.store import ExecutionFilter

router = APIRouter(prefix="/v1/executions", tags=["executions"])

WorkerHeader = Annotated[str | None, Header(alias="X-Worker-Id")]


@router.get("", response_model=responses.ExecutionList)
async def list_executions(  # type: ignore[no-untyped-def]
    user: CurrentUser,
    engine: EngineDep,
    cue_id: str | None = None,
    status: str | None = None,
    status__in: str | None = None,
    worker_id: str | None = None,
    outcome_state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
):
    """The caller's executions, newest first, filtered."""
    where = ExecutionFilter(
        cue_id=cue_id,
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


@router.get("/claimable", response_model=responses.Claimable)
async def claimable(user: CurrentUser, engine: EngineDep, task: str | None = None):  # type: ignore[no-untyped-def]
    """Executions due for the caller's workers, oldest first (at most 50)."""
    rows = await engine.claimable(user, task)
    return json_response({"executions": [claimable_json(r) for r in rows]})


@router.post("/claim", response_model=responses.Claimed)
async def claim_next(body: ClaimRequest, user: CurrentUser, engine: EngineDep):  # type: ignore[no-untyped-def]
    """Claim the oldest due execution."""
    return json_response(await engine.claim(user, body.worker_id))


@router.get("/{execution_id}", response_model=responses.Execution)
async def get_execution(execution_id: str, user: CurrentUser, engine: EngineDep):  # type: ignore[no-untyped-def]
    """One execution."""
    return json_response(execution_json(await engine.get_execution(user, execution_id)))


@router.post("/{execution_id}/claim", response_model=responses.Claimed)
async def claim(execution_id: str, body: ClaimRequest, user: CurrentUser, engine: EngineDep):  # type: ignore[no-untyped-def]
    """Claim one execution."""
    return json_response(await engine.claim(user, body.worker_id, execution_id))


@router.post("/{execution_id}/heartbeat", response_model=responses.LeaseExtended)
async def heartbeat(  # type: ignore[no-untyped-def]
    execution_id: str, user: CurrentUser, engine: EngineDep, worker: WorkerHeader = None
):
    """Extend a claim's lease."""
    return json_response(await engine.heartbeat_execution(user, execution_id, worker))


@router.post("/{execution_id}/outcome", response_model=responses.OutcomeRecorded)
async def outcome(  # type: ignore[no-untyped-def]
    execution_id: str,
    body: OutcomeReport,
    user: CurrentUser,
    engine: EngineDep,
    worker: WorkerHeader = None,
):
    """Report how an execution went (once)."""
    return json_response(await engine.report_outcome(user, execution_id, body, worker))


class ReleaseRequest(ClaimRequest):
    """``POST /v1/executions/{id}/release`` (cueflow extension): the holder and why."""

    reason: str | None = Field(None, max_length=500)


@router.post("/{execution_id}/release")
async def release(  # type: ignore[no-untyped-def]
    execution_id: str, body: ReleaseRequest, user: CurrentUser, engine: EngineDep
):
    """Give a claimed execution back unfinished (cueflow extension): it returns to the queue
    with the claim counted in ``attempts`` (or fails when its attempts are used up)."""
    return json_response(
        await engine.release_execution(user, execution_id, body.worker_id, body.reason)
    )
