"""A hostile tenant: how late a healthy tenant's webhooks arrive while another account has
hundreds of webhook cues whose receivers misbehave.

Account A gets N one-time webhook cues (default 300), all due at one moment, spread evenly over
five local receivers that each misbehave in one way: one never answers, one trickles its answer
a byte a second, one answers with a 10 MB body, one redirects to the cloud metadata address
(``http://169.254.169.254/``; the redirect is never followed) and one answers after 25 s. A's
cues keep their default retry policy, so their retries come back a minute later. Account B gets
20 webhook cues to a healthy receiver, due one by one over the 30 s after A's burst. The figure
is B's lag from ``scheduled_for`` to arrival; a webhook of B that has not arrived when the run
ends (90 s after B's last one was due) counts with its lag at that moment.

Every receiver runs in the benchmark process on 127.0.0.1; a started server allows private
webhook targets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from benchmarks.seed import create_checked, first_due_after_creating, once_cues
from benchmarks.stats import percentiles
from benchmarks.target import Target
from benchmarks.webhook_latency import Receiver

HEALTHY_CUES = 20
HEALTHY_SPREAD_SECONDS = 30.0
GRACE_SECONDS = 90.0
"""How long after B's last webhook was due the run waits for B's webhooks."""

Behaviour = Callable[[asyncio.StreamWriter], Awaitable[None]]


async def _hang(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


async def _trickle(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
    while True:
        await writer.drain()
        await asyncio.sleep(1)
        writer.write(b".")


async def _huge(writer: asyncio.StreamWriter) -> None:
    size, chunk = 10 * 1024 * 1024, b"x" * 65536
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
    for _ in range(size // len(chunk)):
        writer.write(chunk)
        await writer.drain()


async def _redirect(writer: asyncio.StreamWriter) -> None:
    writer.write(
        b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    await writer.drain()


async def _late(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(25)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await writer.drain()


BEHAVIOURS: dict[str, Behaviour] = {
    "hang": _hang,
    "trickle": _trickle,
    "10mb": _huge,
    "redirect-to-metadata": _redirect,
    "answer-after-25s": _late,
}


class HostileReceiver:
    """A local receiver that reads each request and then misbehaves as ``behaviour`` says."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        self.server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def start(self, host: str = "127.0.0.1") -> int:
        """Listen on a free port; returns it."""
        self.server = await asyncio.start_server(self._serve, host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                self.requests += 1
                await self.behaviour(writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)

    async def close(self) -> None:
        """Stop listening and drop every connection still open."""
        if self.server is not None:
            self.server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)


async def run(
    target: Target, hostile_cues: int = 300, receiver_host: str = "127.0.0.1"
) -> dict[str, Any]:
    """One run; its figures."""
    healthy = Receiver()
    hook = f"http://{receiver_host}:{await healthy.start()}/hook"
    hostile = {name: HostileReceiver(behaviour) for name, behaviour in BEHAVIOURS.items()}
    urls = [f"http://{receiver_host}:{await r.start()}/hook" for r in hostile.values()]
    attacker, tenant = target.new_account(), target.new_account()
    total = hostile_cues + HEALTHY_CUES
    first = await first_due_after_creating(target.base_url, attacker, total, callback={"url": hook})
    bodies = [
        {**body, "callback": {"url": urls[n % len(urls)]}}
        for n, body in enumerate(once_cues(hostile_cues, lambda n: first, "hostile"))
    ]
    await create_checked(target.base_url, attacker, bodies)
    step = HEALTHY_SPREAD_SECONDS / HEALTHY_CUES
    await create_checked(
        target.base_url,
        tenant,
        once_cues(
            HEALTHY_CUES,
            lambda n: first + timedelta(seconds=1 + step * n),
            "healthy",
            callback={"url": hook},
        ),
    )
    await asyncio.sleep(max(0.0, first.timestamp() - time.time() - 0.2))
    meter = target.meter()
    cutoff = first.timestamp() + 1 + HEALTHY_SPREAD_SECONDS + GRACE_SECONDS
    while len(healthy.arrivals) < HEALTHY_CUES and time.time() < cutoff:
        await asyncio.sleep(0.05)
    ended = time.time()
    figures = meter.stop()
    for receiver in (healthy, *hostile.values()):
        await receiver.close()
    lags = [
        arrived - datetime.fromisoformat(scheduled.replace("Z", "+00:00")).timestamp()
        for arrived, scheduled in healthy.arrivals.values()
    ]
    missing = HEALTHY_CUES - len(healthy.arrivals)
    due = [first.timestamp() + 1 + step * n for n in range(HEALTHY_CUES)]
    # Not arrived: counted with the lag it had reached when the run ended (a lower bound).
    lags += sorted(ended - when for when in due)[:missing]
    return {
        "scenario": "hostile",
        "hostile_cues": hostile_cues,
        "healthy_cues": HEALTHY_CUES,
        "healthy_received": len(healthy.arrivals),
        "healthy_lag_ms": percentiles(lags, scale=1000),
        "hostile_requests": {name: r.requests for name, r in hostile.items()},
        **figures,
    }
