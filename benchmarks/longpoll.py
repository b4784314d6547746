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
import multiprocessing
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.flood import probe
from benchmarks.stats import percentiles
from benchmarks.target import Target

ADDRESSES = 12


def _flood(
    base_url: str, token: str, waits: int, held: Synchronized, at_once: Synchronized
) -> None:
    """The flooding key, in a process of its own so that the probes' latency is the server's,
    not this loop's: ``waits`` connections, each asking ``claimable?wait=60`` again as soon as
    it is answered, with raw HTTP/1.1 to stay light. ``held``: its requests unanswered now;
    ``at_once``: how many were answered within a second."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"GET /v1/executions/claimable?wait=60 HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()

    async def one(n: int) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(f"127.0.0.{20 + n % ADDRESSES}", 0)
                )
                while True:
                    started = time.monotonic()
                    with held.get_lock():
                        held.value += 1
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    await reader.readexactly(length)
                    with held.get_lock():
                        held.value -= 1
                    if time.monotonic() - started < 1.0:
                        with at_once.get_lock():
                            at_once.value += 1
                    if head.startswith(b"HTTP/1.1 429"):
                        await asyncio.sleep(1.0)
            except (OSError, asyncio.IncompleteReadError):
                with held.get_lock():
                    held.value -= 1
                await asyncio.sleep(0.1)

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(waits)))

    asyncio.run(main())


async def run(target: Target, waits: int = 3000, seconds: float = 10.0) -> dict[str, Any]:
    """One run; its figures."""
    flooder, tenant = target.new_account(), target.new_account()
    stop = asyncio.Event()
    held: Synchronized = multiprocessing.Value("l", 0)  # type: ignore[assignment]
    at_once: Synchronized = multiprocessing.Value("l", 0)  # type: ignore[assignment]

    async def health() -> tuple[float, int]:
        worst, errors = 0.0, 0
        async with httpx.AsyncClient(base_url=target.base_url, timeout=30) as client:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    errors += (await client.get("/health")).status_code != 200
                except httpx.HTTPError:
                    errors += 1
                worst = max(worst, time.monotonic() - started)
                await asyncio.sleep(0.1)
        return worst, errors

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
    process = multiprocessing.Process(
        target=_flood, args=(target.base_url, flooder, waits, held, at_once), daemon=True
    )
    process.start()
    await asyncio.sleep(5.0)  # let the waits pile up
    meter = target.meter()
    at_once0 = at_once.value
    watchers: list[asyncio.Task[Any]] = [
        asyncio.create_task(health()),
        asyncio.create_task(other_tenant()),
    ]
    outstanding = []
    for _ in range(int(seconds * 2)):
        await asyncio.sleep(0.5)
        outstanding.append(held.value)
    stop.set()
    (worst_health, health_errors), tenant_figures = await asyncio.gather(*watchers)
    figures = meter.stop()
    process.terminate()
    process.join()
    cpu = figures.get("server_cpu_seconds")
    return {
        "waits": waits,
        "baseline": baseline,
        "other_tenant": tenant_figures,
        "health_max_ms": round(worst_health * 1000, 1),
        "health_errors": health_errors,
        "waits_held": round(sum(outstanding) / len(outstanding)),
        "waits_answered_at_once": at_once.value - at_once0,
        "server_cpu_percent": None
        if cpu is None
        else round(100 * cpu / figures["wall_seconds"], 1),
        **figures,
    }
