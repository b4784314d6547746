"""Request dependencies: the engine and the authenticated caller, whose key's scope is checked
here, against :data:`cueflow.scopes.ROUTE_SCOPES`, for every route that takes a key."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cueflow.authentication import Principal
from cueflow.engine import Engine
from cueflow.scopes import Scope, require, route_key


async def get_engine(request: Request) -> Engine:
    """The engine the application was built with (a coroutine: FastAPI would run a plain
    function in its thread pool, a thread hop on every request)."""
    engine: Engine = request.app.state.cueflow_engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer cue_sk_...`")
"""Declares the bearer scheme in the OpenAPI document; the header itself is checked by the
engine, which wants it exactly as sent (``Bearer`` with a capital B, as CueAPI does)."""


PRINCIPAL_STATE = "cueflow_principal"
"""Request-state key under which the rate limiter leaves ``(authorization, principal)`` when it
authenticated the request already."""


async def get_principal(
    engine: EngineDep,
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, from ``Authorization: Bearer cue_sk_...`` (401 otherwise), if its key's
    scope allows the route the request matched (403 ``insufficient_scope`` otherwise)."""
    authorization = request.headers.get("authorization")
    known: tuple[str | None, Principal] | None = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if known is not None and known[0] == authorization:
        principal = known[1]
    else:
        principal = await engine.authenticate(authorization)
    if principal.scope is not Scope.FULL:
        route = request.scope.get("route")
        require(
            principal.scope, route_key(request.method, getattr(route, "path", request.url.path))
        )
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]
