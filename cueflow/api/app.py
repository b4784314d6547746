"""Building the ASGI application, standalone or mounted into an existing FastAPI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id

import cueflow.api.errors as errors
from cueflow.api.fastpath import WorkerFastPath
from cueflow.api.middleware import BodyGuard, RequestGuard, VerifyEcho
from cueflow.api.observability import RequestContext
from cueflow.api.ratelimit import Budgets, RateLimit
from cueflow.api.routes import (
    account,
    alerts,
    auth,
    backfill,
    cues,
    echo,
    executions,
    flow_runs,
    flows,
    health,
    keys,
    metrics,
    runs,
    secrets,
    stats,
    streams,
    ui,
    usage,
    verification,
    workers,
)
from cueflow.engine import Engine
from cueflow.operation_ids import operation_id, resource_of
from cueflow.schema_examples import fill_examples
from cueflow.version import __version__

EXPOSED_HEADERS = [
    "X-Request-Id",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Retry-After",
    "X-CueAPI-Usage-Warning",
]


def unique_id(route: APIRoute) -> str:
    """The OpenAPI operation id of ``route`` from :data:`cueflow.operation_ids.OPERATION_IDS`
    (``cues.create``), which also tags the route by its resource. A route missing from the
    table keeps FastAPI's default id (and the OpenAPI document's tests fail)."""
    method = min(route.methods or {"GET"})
    found = operation_id(method, route.path_format)
    if found is None:
        return generate_unique_id(route)
    route.tags = [resource_of(found)]
    return found


router = APIRouter(generate_unique_id_function=unique_id)
"""Every cueflow route; include it with :func:`mount` so the engine and error handlers come too.

Routes are matched in order, one by one: the worker protocol (polled and claimed thousands of
times a second by busy fleets) comes first, so its requests skip the rest."""
for _module in (
    executions,
    workers,
    cues,
    runs,
    backfill,
    verification,
    auth,
    account,
    keys,
    secrets,
    alerts,
    usage,
    stats,
    streams,
    health,
    echo,
    flows,
    flow_runs,
):
    router.include_router(_module.router, responses=errors.ERROR_RESPONSES)


def mount(app: FastAPI, engine: Engine) -> None:
    """Serve cueflow's API (``/v1/...``) and its error envelope from an existing ``app``.

    The host app owns the engine's life: start it in the app's lifespan and close it there::

        @asynccontextmanager
        async def lifespan(app: FastAPI):
            async with engine:
                yield

        app = FastAPI(lifespan=lifespan)
        mount(app, engine)

    Only the routes and the error handlers are added; the standalone server's middleware (CORS,
    rate limits, request guard) is :func:`create_app`'s.
    """
    app.state.cueflow_engine = engine
    app.include_router(router)
    errors.install(app)


class CueflowApp(FastAPI):
    """The standalone server's application: a FastAPI app whose OpenAPI document keeps its
    examples whole (:func:`cueflow.schema_examples.fill_examples`)."""

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document (built once, as FastAPI does), examples filled in."""
        return fill_examples(super().openapi())


def create_app(
    engine: Engine | None = None, *, manage_engine: bool = True, fast_path: bool | None = None
) -> FastAPI:
    """The standalone server. With ``manage_engine`` the app starts the engine on start-up and
    closes it on shutdown. With ``fast_path`` (by default the ``worker_fast_path`` setting, on)
    the worker protocol's hot routes are served by :class:`~cueflow.api.fastpath.WorkerFastPath`
    in front of FastAPI (same answers, same headers); without it FastAPI serves every request."""
    engine = engine or Engine()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
        try:
            yield
        finally:
            if manage_engine:
                await engine.close()

    app = CueflowApp(
        title="cueflow",
        version=__version__,
        lifespan=lifespan,
        generate_unique_id_function=unique_id,
    )
    # Added innermost first: the request context (request id, latency) and the request guard
    # see every request, then rate limiting (before any body is read), then the body guard and
    # the verify-echo; CORS answers preflights inside them (as CueAPI orders it).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(VerifyEcho)
    app.add_middleware(BodyGuard)
    budgets = Budgets(engine.settings)
    app.add_middleware(RateLimit, engine=engine, budgets=budgets)
    app.add_middleware(RequestGuard)
    app.add_middleware(RequestContext, metrics=engine.metrics)
    # outermost: what it hands over goes through all of the above
    if engine.settings.worker_fast_path if fast_path is None else fast_path:
        app.add_middleware(WorkerFastPath, engine=engine, budgets=budgets)
    mount(app, engine)
    if engine.settings.metrics_enabled:
        app.include_router(metrics.router)
    app.include_router(health.probes, responses=errors.ERROR_RESPONSES)
    app.include_router(ui.router)
    return app
