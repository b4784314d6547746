"""The engine's background loops (scheduler, sweeper, dispatcher, listener) and the watch that
keeps them going.

Each loop reports through its :class:`Pulse`: :meth:`Pulse.busy` when a cycle of work starts,
:meth:`Pulse.beat` when a long cycle makes progress (a batch done) and :meth:`Pulse.idle` when
the cycle ends and the loop waits for its next one. Every database call has a deadline, so a
cycle that makes no progress for ``loop_stall_seconds`` is stuck on something that will not
end by itself (a bug, a call without a deadline): :class:`Loops` then marks the loop
``stalled``, cancels it and starts it again, logs it and counts it in
``cueflow_loop_restarts``. A loop that dies of an unexpected exception is restarted too.
``/health`` and ``/status`` name a stalled loop until it completes a cycle again.

Stalls are judged on the real monotonic clock, not the engine's clock: a test's fake clock
stops time for the loops' sleeps, not for their work. Waiting between cycles is never a stall.
``cueflow_loop_lag_seconds`` is the time since each loop last made progress: about its sleep
interval when healthy, growing while it is stuck.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cueflow.metrics import Metrics
from cueflow.pulse import Pulse

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, None]]

__all__ = ["LoopFactory", "Loops", "Pulse"]


class Loops:
    """Runs an engine's background loops as asyncio tasks and restarts those that stall or
    die (see the module docstring)."""

    def __init__(self, stall_seconds: float) -> None:
        self.metrics: Metrics | None = None
        self.stall_seconds = stall_seconds
        self._pulses: dict[str, Pulse] = {}
        self._factories: dict[str, LoopFactory] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[asyncio.Task[None]] = set()
        self._watch: asyncio.Task[None] | None = None

    def pulse(self, name: str) -> Pulse:
        """The pulse the loop called ``name`` reports through."""
        found = self._pulses.get(name)
        if found is None:
            found = self._pulses[name] = Pulse(name)
        return found

    def start(self, loops: dict[str, LoopFactory], metrics: Metrics) -> None:
        """Run each ``factory()`` as the loop of its name, and the watch over them (which
        records lags and restarts in ``metrics``)."""
        self.metrics = metrics
        for name, factory in loops.items():
            self._factories[name] = factory
            self._spawn(name)
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_forever(), name="cueflow-loop-watch")

    def running(self) -> list[str]:
        """Names of the loops that run now."""
        return [name for name, task in self._tasks.items() if not task.done()]

    def states(self) -> dict[str, str]:
        """``ok`` or ``stalled`` for each loop that runs."""
        return {name: "stalled" if self.pulse(name).stalled else "ok" for name in self.running()}

    async def stop(self) -> None:
        """Cancel every loop and the watch, and wait for them to end."""
        tasks = [*self._tasks.values(), *self._cancelled]
        if self._watch is not None:
            tasks.append(self._watch)
        self._tasks, self._factories, self._cancelled, self._watch = {}, {}, set(), None
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself is being cancelled: do not swallow that
            except Exception:
                log.exception("background loop %s failed while stopping", task.get_name())

    def check(self) -> None:
        """Restart each loop that died or has been stuck past ``stall_seconds``, and update
        the lag metric (the watch calls this every second or so)."""
        now = time.monotonic()
        assert self.metrics is not None, "check() before start()"
        for name, task in list(self._tasks.items()):
            pulse = self.pulse(name)
            self.metrics.loop_lag.labels(name).set(now - pulse.progress_at)
            if task.done():
                if task.cancelled() or task.exception() is None:
                    del self._tasks[name]  # ended by design (a store with nothing to hear)
                    continue
                log.error("background loop %s died; restarting it", name, exc_info=task.exception())
            elif pulse.stuck_for(now) > self.stall_seconds:
                log.error(
                    "background loop %s made no progress for %.1f s; restarting it",
                    name,
                    pulse.stuck_for(now),
                )
                pulse.stalled = True
                task.cancel()
                self._cancelled.add(task)
                task.add_done_callback(self._cancelled.discard)
            else:
                continue
            self.metrics.loop_restarts.labels(name).inc()
            self._spawn(name)

    def _spawn(self, name: str) -> None:
        pulse = self.pulse(name)
        pulse.busy_since = None
        pulse.progress_at = time.monotonic()
        self._tasks[name] = asyncio.create_task(self._factories[name](), name=f"cueflow-{name}")

    async def _watch_forever(self) -> None:
        interval = min(1.0, self.stall_seconds / 4)
        while True:
            await asyncio.sleep(interval)
            self.check()
