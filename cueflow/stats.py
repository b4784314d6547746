"""The overview's statistics (``GET /v1/stats/overview``): executions per minute by status,
schedule-to-start lag and delivery latency percentiles, and the queue, over the last hour or
the last day, for the caller's account.

The store aggregates (:class:`cueflow.store.StatsStore`); this module picks the window and
its buckets and turns delay histograms into percentiles. A percentile is the upper bound of
the histogram bucket it falls in (:data:`DELAY_BOUNDS`): exact enough to see a trend and a
regression, and cheap whatever the number of executions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cueflow.authentication import Principal
from cueflow.errors import CueflowError
from cueflow.states import TERMINAL, Status
from cueflow.store import StatsQuery

if TYPE_CHECKING:
    from cueflow.services import Services


@dataclass(frozen=True, slots=True)
class Window:
    """A stats window: its length and the width of its buckets."""

    seconds: int
    bucket_seconds: int


WINDOWS = {"1h": Window(3600, 60), "24h": Window(86400, 900)}
"""The windows the overview offers: the last hour by minute, the last day by 15 minutes."""

DELAY_BOUNDS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip
"""Histogram bounds of the delays, in seconds."""

PERCENTILES = (50, 95, 99)
QUEUED = (Status.PENDING, Status.RETRY_READY, Status.RETRYING, Status.DELIVERING)
"""The statuses of executions not finished yet: the queue."""


def window_named(name: str) -> Window:
    """The window ``1h`` or ``24h``; 400 ``invalid_window`` otherwise."""
    found = WINDOWS.get(name)
    if found is None:
        raise CueflowError(
            f"window must be one of {', '.join(WINDOWS)}", code="invalid_window", status=400
        )
    return found


def percentile(histogram: tuple[int, ...], p: float) -> float | None:
    """The ``p``-th percentile of a histogram ``(n <= bound_0, ..., n <= bound_k, n)``: the
    first bound under which at least ``p`` % of the values fall; ``None`` when there are no
    values or the percentile lies beyond the last bound."""
    total = histogram[-1]
    if total == 0:
        return None
    needed = total * p / 100
    for bound, under in zip(DELAY_BOUNDS, histogram[:-1], strict=True):
        if under >= needed:
            return bound
    return None


def _delays(per_bucket: dict[int, tuple[int, ...]], buckets: int) -> dict[str, Any]:
    """Percentile series (one value per bucket) and the window's percentiles overall."""
    empty = (0,) * (len(DELAY_BOUNDS) + 1)
    series = [per_bucket.get(i, empty) for i in range(buckets)]
    whole = tuple(sum(column) for column in zip(*series, strict=True)) if series else empty
    return {
        "series": {f"p{p}": [percentile(h, p) for h in series] for p in PERCENTILES},
        "overall": {f"p{p}": percentile(whole, p) for p in PERCENTILES},
        "count": whole[-1],
    }


async def overview(services: Services, user: Principal, window_name: str) -> dict[str, Any]:
    """The overview of the caller's executions over the window ``window_name`` (see the
    module), as the wire dict."""
    window = window_named(window_name)
    now = services.clock.now()
    buckets = window.seconds // window.bucket_seconds
    # Buckets end on a bucket boundary, so a refresh shifts whole buckets, not a moving edge.
    edge = datetime.fromtimestamp(
        (int(now.timestamp()) // window.bucket_seconds + 1) * window.bucket_seconds, tz=now.tzinfo
    )
    since = edge - timedelta(seconds=window.seconds)
    query = StatsQuery(since, window.bucket_seconds, DELAY_BOUNDS, tuple(QUEUED), tuple(TERMINAL))
    async with services.store.tx() as tx:
        stats = await tx.execution_stats(user.user_id, query)
    minutes = window.bucket_seconds / 60
    per_minute = {
        status.value: [
            round(stats.counts.get((i, status.value), 0) / minutes, 3) for i in range(buckets)
        ]
        for status in Status
    }
    # Waiting to start at each bucket's end: those carried in from before the window and the
    # window's executions created by then, less those that had started (or ended unstarted).
    waiting, running = [], stats.carried
    for i in range(buckets):
        running += sum(stats.counts.get((i, s.value), 0) for s in Status) - stats.left.get(i, 0)
        waiting.append(running)
    totals = {status.value: 0 for status in Status}
    for (_, status), n in stats.counts.items():
        totals[status] = totals.get(status, 0) + n
    return {
        "window": window_name,
        "since": since,
        "until": edge,
        "now": now,
        "bucket_seconds": window.bucket_seconds,
        "buckets": [since + timedelta(seconds=i * window.bucket_seconds) for i in range(buckets)],
        "executions": {"per_minute": per_minute, "totals": totals},
        "lag": _delays(stats.lag, buckets),
        "latency": _delays(stats.latency, buckets),
        "queue": {
            "by_status": {status.value: stats.queue.get(status.value, 0) for status in QUEUED},
            "total": sum(stats.queue.values()),
            "oldest_scheduled_for": stats.oldest_queued,
            "waiting": waiting,
        },
    }
