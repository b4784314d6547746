"""The answer's shape of ``GET /v1/stats/overview``, for the OpenAPI document (as
:mod:`cueflow.api.responses` for the rest): descriptions only, never used to validate or
re-serialise an answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cueflow.schema_examples import with_example


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=with_example)


class Delays(_Wire):
    """Percentiles of a delay: ``series`` (``p50``, ``p95``, ``p99``: one value or ``null`` per
    bucket), ``overall`` (the window's) and ``count`` (how many were measured)."""

    series: dict[str, list[float | None]]
    overall: dict[str, float | None]
    count: int


class Queue(_Wire):
    """The queue now (``by_status``, ``total``, ``oldest_scheduled_for``) and ``waiting``: the
    window's executions waiting to start at each bucket's end."""

    by_status: dict[str, int]
    total: int
    oldest_scheduled_for: datetime | None
    waiting: list[int]


class StatsOverview(_Wire):
    """``GET /v1/stats/overview``: one value per bucket (``buckets``: their starts)."""

    window: str
    since: datetime
    until: datetime
    now: datetime
    bucket_seconds: int
    buckets: list[datetime]
    executions: dict[str, Any]
    lag: Delays
    latency: Delays
    queue: Queue
