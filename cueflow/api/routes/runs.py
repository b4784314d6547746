"""Runs started by hand: ``POST /v1/cues/{id}/fire`` and ``POST /v1/executions/{id}/replay``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response, run_json
from cueflow.manual_runs import MAX_IDEMPOTENCY_KEY, MergeStrategy
from cueflow.schema_examples import with_example

router = APIRouter(tags=["executions"])


class FireRequest(BaseModel):
    """The optional fire body: ``send_at`` delays the run; ``payload_override`` (a JSON object)
    is merged over the cue's payload (``merge_strategy`` ``merge``, the default) or replaces it
    (``replace``) for this one run; ``idempotency_key`` makes a repeat within 24 h answer with
    the first fire's execution. Other fields are ignored."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=with_example)

    send_at: datetime | None = None
    payload_override: dict[str, Any] | None = None
    merge_strategy: MergeStrategy | None = None
    """``merge`` when left out (or ``null``)."""
    idempotency_key: str | None = Field(None, min_length=1, max_length=MAX_IDEMPOTENCY_KEY)


@router.post(
    "/v1/cues/{cue_id}/fire",
    response_model=responses.Run,
    responses={201: {"model": responses.Run, "description": "The first fire with a key"}},
)
async def fire(
    cue_id: str, user: CurrentUser, engine: EngineDep, body: FireRequest | None = None
) -> JSONResponse:
    """Fire a cue now, or at ``send_at`` when that is in the future. 201 for the first fire
    with an ``idempotency_key``, 200 for its repeats (the same execution) and keyless fires."""
    body = body or FireRequest()
    send_at = body.send_at
    if send_at is not None and send_at.tzinfo is None:
        send_at = send_at.replace(tzinfo=UTC)
    row = await engine.fire_cue(
        user,
        cue_id,
        send_at=send_at,
        payload_override=body.payload_override,
        merge_strategy=body.merge_strategy or MergeStrategy.MERGE,
        idempotency_key=body.idempotency_key,
    )
    created = body.idempotency_key is not None and not row.repeated
    return json_response(run_json(row, payload=row.fire_payload), 201 if created else 200)


@router.post("/v1/executions/{execution_id}/replay", response_model=responses.Run)
async def replay(execution_id: str, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Run a finished execution's cue again, now."""
    row = await engine.replay_execution(user, execution_id)
    return json_response(run_json(row, replayed_from=execution_id))
