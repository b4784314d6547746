"""``/v1/auth``: registration."""

from __future__ import annotations

from fastapi import APIRouter

import cueflow.api.responses as responses
from cueflow import accounts
from cueflow.api.deps import EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.schemas import RegisterRequest

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=responses.Registered)
async def register(body: RegisterRequest, engine: EngineDep) -> JSONResponse:
    """Create an account; the API key is shown only in this response."""
    return json_response(await accounts.register(engine.services, body), 201)
