"""``/v1/alerts``: what went wrong, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, alert_json, json_response

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=responses.Alerts)
async def list_alerts(
    user: CurrentUser,
    engine: EngineDep,
    alert_type: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> JSONResponse:
    """The caller's alerts, filtered by ``alert_type`` and ``since``."""
    rows, total = await engine.list_alerts(
        user, alert_type=alert_type, since=since, limit=limit, offset=offset
    )
    return json_response(
        {"alerts": [alert_json(r) for r in rows], "total": total, "limit": limit, "offset": offset}
    )
