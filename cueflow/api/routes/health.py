"""``GET /health``, ``GET /status`` and ``GET /v1/info``: no authentication, no rate limit.

The probes (``/health``, ``/status``) live outside ``/v1``, so they are served by the standalone
server only (:data:`probes`); an application that mounts cueflow keeps its own."""

from __future__ import annotations

from fastapi import APIRouter

import cueflow.api.responses as responses
from cueflow.api.deps import EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.errors import DatabaseUnavailable

router = APIRouter(tags=["health"])
probes = APIRouter(tags=["health"])


@probes.get("/health", response_model=responses.Health)
async def health(engine: EngineDep) -> JSONResponse:
    """Database and scheduler state and queue depth; always 200."""
    return json_response(await engine.health())


@probes.get(
    "/status", response_model=responses.Status, responses={503: {"model": responses.Status}}
)
async def status(engine: EngineDep) -> JSONResponse:
    """``healthy`` / ``degraded`` (200), ``draining`` (503: this process is shutting down, a
    balancer should route elsewhere) or ``down`` (503, with ``Retry-After``) when the database
    is unreachable."""
    body = await engine.status()
    if body["status"] == "draining":
        return json_response(body, 503)
    if body["status"] != "down":
        return json_response(body)
    response = json_response(body, 503)
    response.headers["Retry-After"] = str(DatabaseUnavailable.retry_after)
    return response


@router.get("/v1/info", response_model=responses.Info)
async def info(engine: EngineDep) -> JSONResponse:
    """The server's version and authentication model."""
    return json_response(engine.info())
