"""``/v1/cues``: create, list, read, change, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, cue_json, execution_json, json_response
from cueflow.schemas import CueCreate, CueUpdate

router = APIRouter(prefix="/v1/cues", tags=["cues"])


@router.post("", status_code=201, response_model=responses.Cue)
async def create_cue(body: CueCreate, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Create a cue."""
    row, warning = await engine.create_cue(user, body)
    return json_response(cue_json(row, warning), 201)


@router.get("", response_model=responses.CueList)
async def list_cues(
    user: CurrentUser,
    engine: EngineDep,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    name: Annotated[str | None, Query(max_length=200)] = None,
) -> JSONResponse:
    """The caller's cues, newest first; ``name`` (cueflow extension) keeps those whose name
    contains it, ignoring case."""
    rows, total = await engine.list_cues(user, status=status, limit=limit, offset=offset, name=name)
    return json_response(
        {"cues": [cue_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}
    )


@router.get("/{cue_id}", response_model=responses.CueDetail)
async def get_cue(
    cue_id: str,
    user: CurrentUser,
    engine: EngineDep,
    execution_limit: Annotated[int, Query(ge=1, le=100)] = 10,
    execution_offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """One cue with a page of its executions."""
    row = await engine.get_cue(user, cue_id)
    rows, total = await engine.cue_executions(
        user, cue_id, limit=execution_limit, offset=execution_offset
    )
    body = cue_json(row)
    body.update(
        executions=[execution_json(r) for r in rows],
        execution_total=total,
        execution_limit=execution_limit,
        execution_offset=execution_offset,
    )
    return json_response(body)


@router.patch("/{cue_id}", response_model=responses.Cue)
async def update_cue(
    cue_id: str, body: CueUpdate, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Change, pause (``{"status": "paused"}``) or resume (``{"status": "active"}``) a cue."""
    return json_response(cue_json(await engine.update_cue(user, cue_id, body)))


@router.delete("/{cue_id}", status_code=204)
async def delete_cue(cue_id: str, user: CurrentUser, engine: EngineDep) -> Response:
    """Delete a cue and its executions."""
    await engine.delete_cue(user, cue_id)
    return Response(status_code=204)
