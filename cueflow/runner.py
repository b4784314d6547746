"""Running an engine as a whole program: until Ctrl-C or SIGTERM, then closing cleanly."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager


async def run_until_signalled(
    engine: AbstractAsyncContextManager[object],
    startup: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Start ``engine`` (anything used as ``async with engine``), await ``startup()`` if given,
    then wait for SIGINT or SIGTERM and close the engine (deliveries in flight get the
    engine's graceful timeout to finish)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stopping.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # no signal handlers here (Windows, not the main thread)
        handled.append(signum)
    try:
        async with engine:
            if startup is not None:
                await startup()
            await stopping.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
