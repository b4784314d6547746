"""API latency at a fixed concurrency: ``POST /v1/cues``, ``GET /v1/cues`` and
``GET /v1/executions``, each for a number of requests over C connections (p50/p95/p99 and
requests/s, measured by the lightweight client)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.lite import LiteClient
from benchmarks.seed import create_checked, once_cues, post_all
from benchmarks.stats import percentiles
from benchmarks.target import Target


async def _timed_gets(
    base_url: str, token: str, path: str, requests: int, concurrency: int
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    statuses: list[int] = []
    remaining = iter(range(requests))

    async def lane() -> None:
        client = LiteClient(base_url, token)
        try:
            for _ in remaining:
                started = time.perf_counter()
                status, _ = await client.request("GET", path)
                latencies.append(time.perf_counter() - started)
                statuses.append(status)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


def _figures(name: str, latencies: list[float], statuses: list[int], wall: float) -> dict:
    return {
        "endpoint": name,
        "requests": len(latencies),
        "errors": sum(1 for s in statuses if s >= 400),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": percentiles(latencies, scale=1000),
    }


async def run(target: Target, requests: int = 2000, concurrency: int = 8) -> dict[str, Any]:
    """One run over the three endpoints; their figures."""
    token = target.new_account()
    # Some history to list: fired executions of worker cues.
    soon = datetime.now(UTC) + timedelta(seconds=2)
    await create_checked(
        target.base_url, token, once_cues(200, lambda n: soon, "hist", transport="worker")
    )
    await asyncio.sleep(max(0.0, soon.timestamp() - time.time() + 1.0))
    meter = target.meter()
    far = datetime.now(UTC) + timedelta(days=30)
    bodies = once_cues(requests, lambda n: far, "api", transport="worker")
    started = time.perf_counter()
    created = await post_all(target.base_url, token, "/v1/cues", bodies, concurrency)
    wall = time.perf_counter() - started
    results = [
        _figures(
            "POST /v1/cues",
            [seconds for _, seconds, _ in created],
            [status for status, _, _ in created],
            wall,
        )
    ]
    for path in ("/v1/cues?limit=20", "/v1/executions?limit=20"):
        latencies, statuses, wall = await _timed_gets(
            target.base_url, token, path, requests, concurrency
        )
        results.append(_figures(f"GET {path.split('?')[0]}", latencies, statuses, wall))
    return {
        "scenario": "api",
        "concurrency": concurrency,
        "endpoints": results,
        **meter.stop(),
    }
