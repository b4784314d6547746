"""How a background loop reports its progress (see :mod:`cueflow.loops`).

A leaf module: stores receive a pulse for their listener loop without importing the loops.
"""

from __future__ import annotations

import time


class Pulse:
    """What one loop reports about itself; calls from code not run as a loop are harmless."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.busy_since: float | None = None
        """Monotonic time the current cycle started or last made progress (``None``: idle)."""
        self.progress_at = time.monotonic()
        """Monotonic time the loop last made progress (a beat or a finished cycle)."""
        self.stalled = False
        """Set when the loop was found stuck; cleared when it finishes a cycle."""

    def busy(self) -> None:
        """A cycle of work starts."""
        self.busy_since = time.monotonic()

    def beat(self) -> None:
        """The cycle made progress (one of several batches done)."""
        self.progress_at = time.monotonic()
        if self.busy_since is not None:
            self.busy_since = self.progress_at

    def idle(self) -> None:
        """The cycle ended; the loop now waits for the next one."""
        self.busy_since = None
        self.progress_at = time.monotonic()
        self.stalled = False

    def stuck_for(self, now: float) -> float:
        """Seconds the current cycle has gone without progress (0 while idle)."""
        return 0.0 if self.busy_since is None else now - self.busy_since
