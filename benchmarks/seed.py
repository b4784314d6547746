"""Creating many cues quickly through the public API, with the latency of each request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.lite import LiteClient


async def post_all(
    base_url: str,
    token: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    concurrency: int = 8,
) -> list[tuple[int, float, Any]]:
    """POST each body to ``path`` over ``concurrency`` connections; per request
    ``(status, seconds, parsed body)`` in the order of ``bodies``."""
    results: list[Any] = [None] * len(bodies)
    next_index = iter(range(len(bodies)))

    async def lane() -> None:
        client = LiteClient(base_url, token)
        try:
            for i in next_index:
                started = time.perf_counter()
                status, body = await client.json("POST", path, bodies[i])
                results[i] = (status, time.perf_counter() - started, body)
        finally:
            await client.close()

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


def once_cues(
    count: int, at: Callable[[int], datetime], prefix: str, **extra: Any
) -> list[dict[str, Any]]:
    """Bodies of ``count`` one-time cues, the ``n``-th due at ``at(n)``."""
    return [
        {
            "name": f"{prefix}-{n}",
            "schedule": {"type": "once", "at": at(n).isoformat()},
            "payload": {"n": n},
            **extra,
        }
        for n in range(count)
    ]


async def create_checked(
    base_url: str, token: str, bodies: Sequence[dict[str, Any]], concurrency: int = 8
) -> list[str]:
    """Create the cues; raises on any non-201. Their ids."""
    results = await post_all(base_url, token, "/v1/cues", bodies, concurrency)
    bad = [(status, body) for status, _, body in results if status != 201]
    if bad:
        raise RuntimeError(f"{len(bad)} cue creations failed, first: {bad[0]}")
    return [body["id"] for _, _, body in results]


async def first_due_after_creating(
    base_url: str, token: str, count: int, probe: int = 20, **extra: Any
) -> datetime:
    """A moment far enough ahead to create ``count`` more cues before it: creates ``probe``
    cues (due tomorrow, with ``extra`` fields) to measure the creation rate, then allows half
    as long again as creating ``count`` at that rate would take, plus two seconds."""
    started = time.monotonic()
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    await create_checked(base_url, token, once_cues(probe, lambda n: tomorrow, "probe", **extra))
    rate = probe / max(time.monotonic() - started, 1e-3)
    return datetime.now(UTC) + timedelta(seconds=2 + 1.5 * count / rate)
