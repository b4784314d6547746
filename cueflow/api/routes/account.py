"""The caller's account: ``/v1/auth/me`` (read, change) and the API key (regenerate, reveal).
Regeneration is destructive and needs ``X-Confirm-Destructive: true``."""

from __future__ import annotations

from fastapi import APIRouter

import cueflow.api.responses as responses
import cueflow.wire as wire
from cueflow.accounts import AccountUpdate
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.api.routes.secrets import Confirmed

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.get("/me", response_model=responses.Account)
async def me(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The caller's account, counts and limits."""
    return json_response(wire.account_json(await engine.me(user)))


@router.patch("/me", response_model=responses.AccountUpdated)
async def update_me(body: AccountUpdate, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Change the caller's email and/or alert webhook URL."""
    return json_response(await engine.update_me(user, body))


@router.post("/key/regenerate", response_model=responses.KeyRegenerated)
async def regenerate_key(user: CurrentUser, engine: EngineDep, _: Confirmed) -> JSONResponse:
    """Replace the API key; the old one stops working at once."""
    key = await engine.regenerate_api_key(user)
    return json_response({"api_key": key, "previous_key_revoked": True})


@router.get("/key", response_model=responses.KeyReveal)
async def reveal_key(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The key's prefix (cueflow cannot show a key again: it stores only a hash)."""
    return json_response(await engine.reveal_api_key(user))
