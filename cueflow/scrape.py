"""What ``GET /metrics`` serves: the engine's metrics with the queue figures read at scrape
time (see :mod:`cueflow.metrics` for the metrics themselves)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client.exposition import generate_latest

from cueflow.metrics import DATABASE_TIMEOUT_SECONDS, QUEUE_FIGURES, STALE_EXECUTION_SECONDS

if TYPE_CHECKING:
    from cueflow.services import Services


async def exposition(services: Services) -> bytes:
    """The engine's metrics in the Prometheus text format, with the queue figures read now (two
    small count queries; a database that does not answer sets ``cueflow_database_up`` to 0)."""
    metrics = services.metrics
    now = services.clock.now()
    try:
        counts, earliest = await asyncio.wait_for(_queue(services, now), DATABASE_TIMEOUT_SECONDS)
    except Exception:
        metrics.up.set(0)
    else:
        metrics.up.set(1)
        for name in QUEUE_FIGURES:
            metrics.queue_depth.labels(name).set(counts.get(name, 0))
        overdue = (now - earliest).total_seconds() if earliest is not None else 0.0
        metrics.overdue.set(max(overdue, 0.0))
    return generate_latest(metrics.registry)


async def _queue(services: Services, now: datetime) -> tuple[dict[str, int], datetime | None]:
    async with services.store.tx() as tx:
        counts = await tx.queue_counts(
            list(services.transports.push()),
            services.transports.pull(),
            now - timedelta(seconds=STALE_EXECUTION_SECONDS),
        )
        return counts, await tx.earliest_next_run()
