"""``GET /v1/usage``: the caller's consumption this month."""

from __future__ import annotations

from fastapi import APIRouter, Request

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response

router = APIRouter(prefix="/v1", tags=["usage"])


def _rate_used(request: Request) -> int:
    """Requests the caller's key made in the current window, as the rate limiter counted them
    (0 when it is off or not installed)."""
    verdict = getattr(request.state, "rate_limit", None)
    return max(0, verdict.limit - verdict.remaining) if verdict is not None else 0


@router.get("/usage", response_model=responses.Usage)
async def usage(request: Request, user: CurrentUser, engine: EngineDep) -> JSONResponse:
    """Cues, executions and outcomes this calendar month, with the configured limits."""
    return json_response(await engine.usage(user, rate_used=_rate_used(request)))
