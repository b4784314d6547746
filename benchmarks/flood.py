"""Connection flood: what keyless connections cost the server and a normal client.

Phases, each while a normal client (from 127.0.0.1, with a key) measures ``GET /health`` and
``GET /v1/executions/claimable`` latency:

* ``baseline``: nothing else;
* ``idle``: ``connections`` sockets that send nothing, spread over ``addresses`` loopback
  addresses (127.0.0.2 ...);
* ``slowloris``: as many sockets trickling one header line a second;
* ``bodies``: ``bodies`` anonymous ``POST /v1/auth/register`` with a 1 MB body of which all
  but the last byte is sent, from one address.

For each: the normal client's p50/p99/max and errors, the server's resident memory, how many
flood connections the server refused at once, and how many it still held open
``hold`` seconds after they were opened (the header deadline is 10 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx

from benchmarks.stats import percentiles
from benchmarks.target import Target, tree_rss_mb

HEAD = b"GET /health HTTP/1.1\r\nHost: flood\r\n"
BODY_HEAD = (
    b"POST /v1/auth/register HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000000\r\n\r\n"
)


async def probe(target: Target, token: str, seconds: float) -> dict[str, Any]:
    """A normal client for ``seconds``: latency of its requests (ms) and its errors."""
    latencies: list[float] = []
    errors = 0
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=target.base_url, transport=transport, timeout=10, headers=headers
    ) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path in ("/health", "/v1/executions/claimable"):
                started = time.monotonic()
                try:
                    ok = (await client.get(path)).status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.monotonic() - started)
                errors += not ok
            await asyncio.sleep(0.02)
    return {
        "requests": len(latencies),
        "errors": errors,
        "latency_ms": percentiles(latencies, 1000),
    }


class Flood:
    """Raw connections to the target from other loopback addresses."""

    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.refused = 0

    async def open(self, count: int, addresses: int, first: int = 2) -> None:
        """``count`` connections, spread over 127.0.0.{first} ... (``addresses`` of them)."""

        async def one(n: int) -> None:
            source = f"127.0.0.{first + n % addresses}"
            try:
                self.streams.append(
                    await asyncio.open_connection(self.host, self.port, local_addr=(source, 0))
                )
            except OSError:
                self.refused += 1

        for start in range(0, count, 100):
            await asyncio.gather(*(one(n) for n in range(start, min(count, start + 100))))

    async def send(self, data: bytes) -> None:
        """Send ``data`` on every connection still open."""
        for _, writer in self.streams:
            if not writer.is_closing():
                with contextlib.suppress(ConnectionError, RuntimeError):
                    writer.write(data)

    async def count(self) -> dict[str, int]:
        """How many are still open, were answered (and how), or were closed silently."""

        async def state(reader: asyncio.StreamReader) -> str:
            try:
                data = await asyncio.wait_for(reader.read(64), 0.2)
            except TimeoutError:
                return "open"
            except ConnectionError:
                return "closed"
            return f"answered_{data[9:12].decode()}" if data.startswith(b"HTTP/1.1 ") else "closed"

        states = await asyncio.gather(*(state(reader) for reader, _ in self.streams))
        return {name: states.count(name) for name in sorted({"open", "closed", *states})}

    def close(self) -> None:
        """Close every connection."""
        for _, writer in self.streams:
            writer.close()
        self.streams.clear()


async def _phase(
    target: Target,
    token: str,
    seconds: float,
    hold: float,
    start: Callable[[Flood], Awaitable[None]] | None,
    keep_up: Callable[[Flood], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    flood = Flood(target)
    rss0 = tree_rss_mb(target.pid)[0] if target.pid else None
    opened = time.monotonic()
    if start is not None:
        await start(flood)
    peak = rss0 or 0.0

    async def feed() -> None:
        nonlocal peak
        while True:
            if keep_up is not None:
                await keep_up(flood)
            if target.pid:
                peak = max(peak, tree_rss_mb(target.pid)[0])
            await asyncio.sleep(1.0)

    feeding = asyncio.create_task(feed())
    try:
        client = await probe(target, token, seconds)
        early = await flood.count() if start is not None else {}
        await asyncio.sleep(max(0.0, hold - (time.monotonic() - opened)))
        late = await flood.count() if start is not None else {}
    finally:
        feeding.cancel()
    rss_held = tree_rss_mb(target.pid)[0] if target.pid else None
    flood.close()
    await asyncio.sleep(1.0)
    return {
        "client": client,
        "flood_refused_at_connect": flood.refused,
        "flood_after_probe": early,
        "hold_seconds": hold,
        "flood_after_hold": late,
        "server_rss_mb_before": rss0,
        "server_rss_mb_peak": round(peak, 1) if target.pid else None,
        "server_rss_mb_held": rss_held,
        "server_rss_mb_after": tree_rss_mb(target.pid)[0] if target.pid else None,
    }


async def run(
    target: Target,
    connections: int = 1000,
    addresses: int = 8,
    bodies: int = 300,
    seconds: float = 5.0,
    hold: float = 15.0,
) -> dict[str, Any]:
    """One run; its figures by phase."""
    token = target.new_account()

    async def idle(flood: Flood) -> None:
        await flood.open(connections, addresses)

    async def slowloris(flood: Flood) -> None:
        await flood.open(connections, addresses)
        await flood.send(HEAD)

    async def trickle(flood: Flood) -> None:
        await flood.send(b"X-Trickle: 1\r\n")

    async def held_bodies(flood: Flood) -> None:
        await flood.open(bodies, 1, first=addresses + 2)
        await flood.send(BODY_HEAD + b" " * 999_999)

    meter = target.meter()
    phases = {
        "baseline": await _phase(target, token, seconds, 0, None),
        "idle": await _phase(target, token, seconds, hold, idle),
        "slowloris": await _phase(target, token, seconds, hold, slowloris, trickle),
        "bodies": await _phase(target, token, seconds, hold, held_bodies),
    }
    return {"connections": connections, "bodies": bodies, "phases": phases, **meter.stop()}
