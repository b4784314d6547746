"""``/v1/auth/keys`` (cueflow extension): the account's scoped API keys, created, listed and
revoked. Creating and revoking need a ``full`` key (see :mod:`cueflow.scopes`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

import cueflow.api.key_responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.api_keys import ApiKeyCreate, key_list_json

router = APIRouter(prefix="/v1/auth/keys", tags=["auth"])


@router.post("", status_code=201, response_model=responses.ApiKeyCreated)
async def create_key(body: ApiKeyCreate, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Create a key with a scope (``full``, ``worker`` or ``read``) and an optional name; the
    secret (``api_key``) is shown only in this response."""
    created = await engine.create_api_key(user, body.scope, body.name)
    return json_response(created, 201)


@router.get("", response_model=responses.ApiKeys)
async def list_keys(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The account's live keys, oldest first, and its own key's prefix."""
    return json_response(key_list_json(await engine.list_api_keys(user)))


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: str, user: CurrentUser, engine: EngineDep) -> Response:
    """Revoke a key: it answers 401 ``key_revoked`` from now on."""
    await engine.revoke_api_key(user, key_id)
    return Response(status_code=204)
