"""Long-poll flood: one key keeps ``waits`` long-polls (``claimable?wait=60``) outstanding,
re-asking as soon as one is answered, while another tenant polls ``claimable`` (no wait) and
``GET /v1/cues`` and a third client times ``/health``.

The flooding key's requests come from 12 loopback addresses (127.0.0.20 ...) so that the
per-address connection cap does not hide the long-poll cost. Figures: the other tenant's
latency, ``/health``'s worst, how many waits the server held at once (at most
``CUEFLOW_MAX_WAITS_PER_KEY``) and how many it answered at once, and the server's CPU.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from benchmarks.flood import probe
from benchmarks.stats import percentiles
from benchmarks.target import Target

ADDRESSES = 12


async def run(target: Target, waits: int = 3000, seconds: float = 10.0) -> dict[str, Any]:
    """One run; its figures."""
    flooder, tenant = target.new_account(), target.new_account()
    stop = asyncio.Event()
    answered_at_once = held = 0
    outstanding = 0
    clients = [
        httpx.AsyncClient(
            base_url=target.base_url,
            transport=httpx.AsyncHTTPTransport(
                local_address=f"127.0.0.{20 + n}",
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            ),
            headers={"Authorization": f"Bearer {flooder}"},
            timeout=90,
        )
        for n in range(ADDRESSES)
    ]

    async def wait_loop(client: httpx.AsyncClient) -> None:
        nonlocal answered_at_once, held, outstanding
        while not stop.is_set():
            started = time.monotonic()
            outstanding += 1
            try:
                response = await client.get("/v1/executions/claimable?wait=60")
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
                continue
            finally:
                outstanding -= 1
            if time.monotonic() - started < 1.0:
                answered_at_once += 1
                if response.status_code == 429:
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
            else:
                held += 1

    async def health() -> float:
        worst = 0.0
        async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                await client.get("/health")
                worst = max(worst, time.monotonic() - started)
                await asyncio.sleep(0.1)
        return worst

    async def other_tenant() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        headers = {"Authorization": f"Bearer {tenant}"}
        async with httpx.AsyncClient(base_url=target.base_url, headers=headers, timeout=30) as c:
            while not stop.is_set():
                for path in ("/v1/executions/claimable", "/v1/cues"):
                    started = time.monotonic()
                    try:
                        errors += (await c.get(path)).status_code != 200
                    except httpx.HTTPError:
                        errors += 1
                    latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.02)
        return {
            "requests": len(latencies),
            "errors": errors,
            "latency_ms": percentiles(latencies, 1000),
        }

    baseline = await probe(target, tenant, 3.0)
    loops = [asyncio.create_task(wait_loop(clients[n % ADDRESSES])) for n in range(waits)]
    await asyncio.sleep(3.0)  # let the waits pile up
    meter = target.meter()
    watchers = [asyncio.create_task(health()), asyncio.create_task(other_tenant())]
    peak_outstanding = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        peak_outstanding = max(peak_outstanding, outstanding)
        await asyncio.sleep(0.5)
    stop.set()
    worst_health, tenant_figures = await asyncio.gather(*watchers)
    figures = meter.stop()
    for task in loops:
        task.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    for client in clients:
        await client.aclose()
    cpu = figures.get("server_cpu_seconds")
    return {
        "waits": waits,
        "baseline": baseline,
        "other_tenant": tenant_figures,
        "health_max_ms": round(worst_health * 1000, 1),
        "waits_outstanding_peak": peak_outstanding,
        "waits_held": held,
        "waits_answered_at_once": answered_at_once,
        "server_cpu_percent": None
        if cpu is None
        else round(100 * cpu / figures["wall_seconds"], 1),
        **figures,
    }
