"""Request dependencies: the engine and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from cueflow.accounts import Principal
from cueflow.engine import Engine


def get_engine(request: Request) -> Engine:
    """The engine the application was built with."""
    engine: Engine = request.app.state.cueflow_engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_principal(
    engine: EngineDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    """The caller, from ``Authorization: Bearer cue_sk_...`` (401 otherwise)."""
    return await engine.authenticate(authorization)


CurrentUser = Annotated[Principal, Depends(get_principal)]
