"""``/v1/flows``: flow definitions (create, list, read, change, delete) and starting runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

import cueflow.api.flow_responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.flow_schemas import FlowCreate, FlowUpdate, RunCreate
from cueflow.flow_wire import flow_json, run_json

router = APIRouter(prefix="/v1/flows", tags=["flows"])


@router.post("", status_code=201, response_model=responses.Flow)
async def create_flow(body: FlowCreate, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Create a flow; 400 ``invalid_flow`` naming the step when its definition is wrong."""
    return json_response(flow_json(await engine.create_flow(user, body)), 201)


@router.get("", response_model=responses.FlowList)
async def list_flows(
    user: CurrentUser,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """The caller's flows, newest first."""
    found, total = await engine.list_flows(user, limit=limit, offset=offset)
    body = {"flows": [flow_json(f) for f in found], "total": total}
    return json_response({**body, "limit": limit, "offset": offset})


@router.get("/{flow_id}", response_model=responses.Flow)
async def get_flow(flow_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """One flow."""
    return json_response(flow_json(await engine.get_flow(user, flow_id)))


@router.patch("/{flow_id}", response_model=responses.Flow)
async def update_flow(
    flow_id: str, body: FlowUpdate, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Change a flow; runs already started keep the definition they started with."""
    return json_response(flow_json(await engine.update_flow(user, flow_id, body)))


@router.delete("/{flow_id}", status_code=204)
async def delete_flow(flow_id: str, user: CurrentUser, engine: EngineDep) -> Response:
    """Delete a flow and its finished runs (409 ``flow_has_open_runs`` while one is open)."""
    await engine.delete_flow(user, flow_id)
    return Response(status_code=204)


@router.post("/{flow_id}/runs", status_code=201, response_model=responses.FlowRun)
async def start_run(
    flow_id: str, body: RunCreate, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Start a run (201); the same ``idempotency_key`` again answers that run (200)."""
    run, steps, created = await engine.start_flow_run(user, flow_id, body)
    return json_response(run_json(run, steps), 201 if created else 200)
