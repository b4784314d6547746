"""``/v1/echo/{token}``: the built-in test receiver (store without authentication, read with)."""

from __future__ import annotations

from fastapi import APIRouter, Request

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response

router = APIRouter(prefix="/v1/echo", tags=["echo"])


@router.post("/{token}", response_model=responses.EchoStored)
async def store(token: str, request: Request, engine: EngineDep) -> JSONResponse:
    """Keep a JSON body and the request's headers for five minutes."""
    body = await request.body()
    return json_response(await engine.store_echo(token, body, request.headers.items()))


@router.get("/{token}", response_model=responses.EchoRead)
async def read(token: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """What was stored under ``token``, or ``{"status": "waiting"}``."""
    return json_response(await engine.read_echo(token))
