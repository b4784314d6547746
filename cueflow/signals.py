"""In-process wake-up signals between the use cases and the background loops.

A use case that changes what the loops should do next (a cue created or resumed, executions
created, an execution back in the queue) raises a signal here instead of reaching for the loop
itself; the scheduler, the dispatcher and the long-polls wait on them. Signals only shorten a
wait: every loop also rechecks on its own, so other nodes' changes are never missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class WorkSignal:
    """Wakes long-polling workers when executions may have become claimable in this process
    (fired, returned to the queue, replayed)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Wake every current waiter."""
        self._event.set()
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """Take this before looking for work, and wait with it: a notification that arrives
        between the look and the wait is not lost."""
        return self._event


class Signals:
    """The wake-up signals of one engine."""

    def __init__(self) -> None:
        self.scheduler = asyncio.Event()
        """Set to make the scheduler re-read due times now."""
        self.dispatcher = asyncio.Event()
        """Set to make the push-delivery dispatcher look for due deliveries now."""
        self.work = WorkSignal()
        """Wakes long-polling workers."""
        self.draining = asyncio.Event()
        """Set while the engine drains (it is stopping): nothing new starts in this process,
        long-polls answer at once and ``/status`` answers 503 ``draining``."""
        self.flow_runs = WorkSignal()
        """Wakes callers waiting for a flow run to end (:meth:`cueflow.Engine.wait_for_flow_run`)
        when a run of this process ended."""

    def wake(self) -> None:
        """A cue changed: make the scheduler re-read due times now."""
        self.scheduler.set()

    def executions_created(self, rows: Sequence[object]) -> None:
        """Executions were inserted (fired, fired by hand, replayed): wake the dispatcher and
        the long-polling workers."""
        if rows:
            self.dispatcher.set()
            self.work.notify()
