"""Verification of reported outcomes: ``POST .../verify``, ``POST .../verification-pending``
and ``PATCH .../evidence`` under ``/v1/executions/{execution_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.schema_examples import EXAMPLES, with_example

router = APIRouter(prefix="/v1/executions", tags=["executions"])


class VerifyRequest(BaseModel):
    """The optional verify body; no body means ``valid: true``."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=with_example)

    valid: bool = True
    reason: str | None = None


@router.post("/{execution_id}/verify", response_model=responses.VerificationState)
async def verify(
    execution_id: str, user: CurrentUser, engine: EngineDep, body: VerifyRequest | None = None
) -> JSONResponse:
    """Confirm or reject a reported outcome."""
    body = body or VerifyRequest()
    result = await engine.verify_outcome(user, execution_id, valid=body.valid, reason=body.reason)
    return json_response(result)


@router.post("/{execution_id}/verification-pending", response_model=responses.VerificationState)
async def verification_pending(
    execution_id: str, user: CurrentUser, engine: EngineDep
) -> JSONResponse:
    """Mark a reported outcome as waiting for verification."""
    return json_response(await engine.mark_verification_pending(user, execution_id))


@router.patch("/{execution_id}/evidence", response_model=responses.VerificationState)
async def evidence(
    execution_id: str,
    body: Annotated[dict[str, Any], Body(examples=[EXAMPLES["Evidence"]])],
    user: CurrentUser,
    engine: EngineDep,
) -> JSONResponse:
    """Add evidence to a reported outcome."""
    return json_response(await engine.append_evidence(user, execution_id, body))
