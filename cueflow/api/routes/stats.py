"""``GET /v1/stats/overview``: the dashboard overview's figures (cueflow extension)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from cueflow.api.deps import CurrentUser, EngineDep
from cueflow.api.render import JSONResponse, json_response
from cueflow.api.stats_responses import StatsOverview

router = APIRouter(prefix="/v1/stats", tags=["stats"])


@router.get("/overview", response_model=StatsOverview)
async def overview(
    user: CurrentUser, engine: EngineDep, window: Literal["1h", "24h"] = "1h"
) -> JSONResponse:
    """The caller's executions per minute by status, schedule-to-start lag and delivery
    latency percentiles, and the queue now, over the last hour (by minute) or the last day
    (by 15 minutes)."""
    return json_response(await engine.stats_overview(user, window))
