"""``/v1/flow-runs``: list and read runs, cancel one, send it an event."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

import cueflow.api.flow_responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.flow_schemas import EventIn
from cueflow.flow_wire import run_json

router = APIRouter(prefix="/v1/flow-runs", tags=["flows"])


@router.get("", response_model=responses.FlowRunList)
async def list_runs(
    user: CurrentUser,
    engine: EngineDep,
    flow_id: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """The caller's runs, newest first, of ``flow_id`` and in ``status`` when given."""
    runs, total = await engine.list_flow_runs(
        user, flow_id=flow_id, status=status, limit=limit, offset=offset
    )
    body = {"runs": [run_json(r) for r in runs], "total": total}
    return json_response({**body, "limit": limit, "offset": offset})


@router.get("/{run_id}", response_model=responses.FlowRun)
async def get_run(run_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """One run with the state of each of its steps."""
    return json_response(run_json(*await engine.get_flow_run(user, run_id)))


@router.post("/{run_id}/cancel", response_model=responses.FlowRun)
async def cancel_run(run_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Cancel an open run, for good (409 ``flow_run_finished`` once it ended)."""
    return json_response(run_json(*await engine.cancel_flow_run(user, run_id)))


@router.post("/{run_id}/events/{name}", response_model=responses.FlowEvent)
async def send_event(
    run_id: str, name: str, body: EventIn, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Resume the run's wait steps waiting for ``name``; ``data`` becomes their output."""
    run, resumed = await engine.send_flow_event(user, run_id, name, body.data)
    return json_response(
        {"run_id": run.id, "status": run.status, "event": name, "resumed": resumed}
    )
