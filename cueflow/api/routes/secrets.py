"""``/v1/auth/webhook-secret`` and ``/v1/auth/alert-webhook-secret``: read and rotate the
signing secrets. Rotation is destructive and needs ``X-Confirm-Destructive: true``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.errors import CueflowError
from cueflow.schemas import WebhookSecretRotation

router = APIRouter(prefix="/v1/auth", tags=["auth"])

CONFIRM_MESSAGE = "This action is destructive. Set X-Confirm-Destructive: true header to confirm."


def confirm_destructive(
    x_confirm_destructive: Annotated[str | None, Header()] = None,
) -> None:
    """400 ``confirmation_required`` unless the request carries ``X-Confirm-Destructive: true``."""
    if x_confirm_destructive != "true":
        raise CueflowError(CONFIRM_MESSAGE, code="confirmation_required")


Confirmed = Annotated[None, Depends(confirm_destructive)]


@router.get("/webhook-secret", response_model=responses.WebhookSecret)
async def webhook_secret(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The secret that signs the caller's webhook deliveries."""
    return json_response({"webhook_secret": await engine.webhook_secret(user)})


@router.post("/webhook-secret/regenerate", response_model=responses.WebhookSecret)
async def regenerate_webhook_secret(
    user: CurrentUser,
    engine: EngineDep,
    _: Confirmed,
    body: Annotated[WebhookSecretRotation | None, Body()] = None,
) -> JSONResponse:
    """Replace the webhook secret; the next delivery is signed with the new one (and, for an
    overlap window, with the previous one too: ``previous_secret_valid_until``)."""
    overlap = body.overlap_seconds if body is not None else None
    rotation = await engine.rotate_webhook_secret(user, overlap)
    answer: dict[str, Any] = {
        "webhook_secret": rotation.webhook_secret,
        "previous_secret_revoked": rotation.previous_valid_until is None,
    }
    if rotation.previous_valid_until is not None:
        answer["previous_secret_valid_until"] = rotation.previous_valid_until
    return json_response(answer)


@router.get("/alert-webhook-secret", response_model=responses.AlertWebhookSecret)
async def alert_webhook_secret(user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """The secret that signs the caller's alert notices (created on first call)."""
    return json_response({"alert_webhook_secret": await engine.alert_webhook_secret(user)})


@router.post("/alert-webhook-secret/regenerate", response_model=responses.AlertWebhookSecret)
async def regenerate_alert_webhook_secret(
    user: CurrentUser, engine: EngineDep, _: Confirmed
) -> JSONResponse:
    """Replace the alert webhook secret."""
    secret = await engine.rotate_alert_webhook_secret(user)
    return json_response({"alert_webhook_secret": secret, "previous_secret_revoked": True})
