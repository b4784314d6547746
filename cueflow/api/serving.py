"""Serving the ASGI app over HTTP with uvicorn, configured from the settings.

On SIGTERM (or Ctrl-C) the server drains before it stops listening: ``drain`` (the engine's
:meth:`~cueflow.engine.Engine.drain`) runs first, while requests are still answered, so
``/status`` says ``draining`` (503) to the balancer at once, open long-polls are answered, and
deliveries in flight finish or go back to the queue within ``graceful_timeout_seconds``. The
server goes on accepting connections until ``drain_accept_seconds`` after the signal (for a
balancer's readiness check to notice), then
uvicorn closes the listening socket and waits for the requests still open, for what is left of
that timeout, before the app's shutdown closes the engine. A second Ctrl-C stops at once
(deliveries then still running are retried when their leases end, as after a crash).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.types import ASGIApp

from cueflow.api.connections import guarded_protocol
from cueflow.config import Settings

log = logging.getLogger(__name__)

Drain = Callable[[], Awaitable[None]]
"""Stops the engine taking new work and ends the work in flight (``Engine.drain``)."""


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which first drains the engine when it is told to stop."""

    def __init__(
        self, config: uvicorn.Config, drain: Drain | None, grace: float, accept: float = 0.0
    ) -> None:
        super().__init__(config)
        self._drain = drain
        self._grace = grace
        self._accept = accept

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does (the app's start-up included), then settle the heap: what
        start-up made (modules, routes, prepared statements) lives as long as the process, so
        it leaves the garbage collector's sight and the full collections during serving walk
        only what requests make (a few percent of each request's CPU)."""
        await super().startup(sockets)
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain (still answering requests), then stop as uvicorn does, its wait for open
        requests bounded by what is left of the graceful timeout."""
        started = time.monotonic()
        if self._drain is not None:
            log.info("draining: no new work; up to %.1f s for work in flight", self._grace)
            draining = asyncio.ensure_future(self._drain())
            while not draining.done() and not self.force_exit:
                await asyncio.wait({draining}, timeout=0.1)
            if not draining.done():  # a second Ctrl-C: stop now, as uvicorn does
                log.warning("forced to stop: work in flight is retried when its leases end")
                draining.cancel()
            [outcome] = await asyncio.gather(draining, return_exceptions=True)
            if isinstance(outcome, Exception):
                log.error("draining failed", exc_info=outcome)
            log.info("drained in %.2f s", time.monotonic() - started)
        while not self.force_exit and time.monotonic() - started < self._accept:
            await asyncio.sleep(min(0.1, self._accept - (time.monotonic() - started)))
        left = self._grace - (time.monotonic() - started)
        self.config.timeout_graceful_shutdown = max(1, math.ceil(left))
        await super().shutdown(sockets)


def serve_forever(
    app: ASGIApp,
    settings: Settings,
    log_level: str,
    drain: Drain | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve ``app`` on ``settings.host:port`` (or on ``sockets`` already listening, shared
    with other processes: :mod:`cueflow.api.supervisor`) until a signal stops the process; on
    the signal run ``drain`` first (see the module docstring)."""
    proxies = settings.forwarded_allow_ips.strip()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # uvicorn's records go through the handler logs.configure installed
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: only from
        # the configured proxies, and from nobody by default
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        http=guarded_protocol(settings),  # timeouts and caps: cueflow.api.connections
        ws="none",  # no WebSocket routes: an upgrade stays a plain HTTP request
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    grace, accept = settings.graceful_timeout_seconds, settings.drain_accept_seconds
    DrainingServer(config, drain, grace, accept).run(sockets)
