"""Request dependencies: the engine and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cueflow.authentication import Principal
from cueflow.engine import Engine


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
    """The caller, from ``Authorization: Bearer cue_sk_...`` (401 otherwise)."""
    authorization = request.headers.get("authorization")
    known: tuple[str | None, Principal] | None = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    if known is not None and known[0] == authorization:
        return known[1]
    return await engine.authenticate(authorization)


CurrentUser = Annotated[Principal, Depends(get_principal)]
