"""Workers: ``POST /v1/worker/heartbeat`` (singular) and ``/v1/workers`` (plural)."""

from __future__ import annotations

from fastapi import APIRouter, Response

import cueflow.api.worker_responses as worker_responses
import cueflow.wire as wire
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.schemas import WorkerHeartbeat

router = APIRouter(tags=["workers"])


@router.post("/v1/worker/heartbeat", response_model=worker_responses.WorkerAcknowledged)
async def worker_heartbeat(
    body: WorkerHeartbeat, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Register or refresh a worker."""
    return json_response(await engine.worker_heartbeat(user, body.worker_id, body.handlers))


@router.get("/v1/workers", response_model=worker_responses.Workers)
async def list_workers(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The caller's workers, latest heartbeat first."""
    workers = await engine.list_workers(user)
    return json_response({"workers": [wire.worker_json(worker) for worker in workers]})


@router.delete("/v1/workers/{worker_id}", status_code=204)
async def delete_worker(worker_id: str, user: CurrentUser, engine: EngineDep) -> Response:
    """Forget a worker."""
    await engine.delete_worker(user, worker_id)
    return Response(status_code=204)
