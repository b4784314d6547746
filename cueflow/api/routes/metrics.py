"""``GET /metrics``: the engine's metrics in the Prometheus text format.

No authentication (as for the health probes), so put it behind your network's access rules or
turn it off with ``CUEFLOW_METRICS_ENABLED=false``; no rate limit either, so frequent scrapes
never eat into API quotas. It lists counts and latencies, never ids, keys or payloads. Served by
the standalone server only; an application that mounts cueflow exposes ``engine.metrics``
itself (see ``docs/operations.md``)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from cueflow import metrics
from cueflow.api.deps import EngineDep
from cueflow.scrape import exposition

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
async def scrape(engine: EngineDep) -> Response:
    """Every ``cueflow_`` metric of this process, with the queue figures read now."""
    return Response(await exposition(engine.services), media_type=metrics.CONTENT_TYPE)
