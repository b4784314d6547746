"""``/v1/alerts``: what went wrong, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

import cueflow.api.responses as responses
from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.store import Row

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


def alert_json(row: Row) -> dict[str, Any]:
    """The contract's alert object."""
    return {
        "id": row["id"],
        "cue_id": row["cue_id"],
        "execution_id": row["execution_id"],
        "alert_type": row["alert_type"],
        "severity": row["severity"],
        "message": row["message"],
        "metadata": row["alert_metadata"] or {},
        "acknowledged": row["acknowledged"],
        "created_at": row["created_at"],
    }


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
