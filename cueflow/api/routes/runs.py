"""Runs started by hand: ``POST /v1/cues/{id}/fire`` and ``POST /v1/executions/{id}/replay``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response, run_json

router = APIRouter(tags=["executions"])


class FireRequest(BaseModel):
    """The optional fire body: ``send_at`` delays the run, ``payload_override`` (a JSON object,
    checked like a cue payload) replaces the cue's payload for this one run; other fields (the
    hosted service's ``merge_strategy`` ...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    send_at: datetime | None = None
    payload_override: dict[str, Any] | None = None


@router.post("/v1/cues/{cue_id}/fire", response_model=responses.Run)
async def fire(
    cue_id: str, user: CurrentUser, engine: EngineDep, body: FireRequest | None = None
) -> JSONResponse:
    """Fire a cue now, or at ``send_at`` when that is in the future."""
    send_at = body.send_at if body is not None else None
    if send_at is not None and send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=UTC)
    override = body.payload_override if body is not None else None
    row = await engine.fire_cue(user, cue_id, send_at=send_at, payload_override=override)
    return json_response(run_json(row))


@router.post("/v1/executions/{execution_id}/replay", response_model=responses.Run)
async def replay(execution_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Run a finished execution's cue again, now."""
    row = await engine.replay_execution(user, execution_id)
    return json_response(run_json(row, replayed_from=execution_id))
