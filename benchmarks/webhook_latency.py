"""Webhook latency: M webhook cues due over a few seconds; the lag from each execution's
``scheduled_for`` to its arrival at a local receiver (p50/p95/max).

The receiver is a minimal asyncio HTTP server in the benchmark process (it answers 200 at
once), so its own cost is small. A started server allows private webhook targets; against a
remote server, start it with ``--allow-private-webhooks`` and pass ``--receiver-host``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import orjson

from benchmarks.seed import create_checked, first_due_after_creating, once_cues
from benchmarks.stats import percentiles
from benchmarks.target import Target


class Receiver:
    """Records the first arrival of each execution and counts repeats."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, str]] = {}
        self.repeats = 0
        self.server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1") -> int:
        """Listen on a free port; returns it."""
        self.server = await asyncio.start_server(self._serve, host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                arrived = time.time()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if body:
                    doc = orjson.loads(body)
                    eid = doc.get("execution_id")
                    if eid in self.arrivals:
                        self.repeats += 1
                    elif eid:
                        self.arrivals[eid] = (arrived, doc["scheduled_for"])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        """Stop listening."""
        if self.server is not None:
            self.server.close()


async def run(
    target: Target, cues: int = 200, spread: float = 3.0, receiver_host: str = "127.0.0.1"
) -> dict[str, Any]:
    """One run; its figures."""
    receiver = Receiver()
    port = await receiver.start()
    hook = f"http://{receiver_host}:{port}/hook"
    token = target.new_account()
    first = await first_due_after_creating(target.base_url, token, cues, callback={"url": hook})
    bodies = once_cues(
        cues,
        lambda n: first + timedelta(seconds=spread * n / cues),
        "hook",
        callback={"url": hook},
    )
    await create_checked(target.base_url, token, bodies)
    await asyncio.sleep(max(0.0, first.timestamp() - time.time() - 0.2))
    meter = target.meter()
    deadline = time.time() + spread + 60
    while len(receiver.arrivals) < cues and time.time() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # late duplicates, if any
    figures = meter.stop()
    await receiver.close()
    lags = [
        arrived - datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
        for arrived, scheduled in receiver.arrivals.values()
    ]
    return {
        "scenario": "webhook",
        "cues": cues,
        "spread_seconds": spread,
        "received": len(receiver.arrivals),
        "repeated_deliveries": receiver.repeats,
        "lag_ms": percentiles(lags, scale=1000),
        **figures,
    }
