"""The one clock everything that depends on time reads.

Production code uses :class:`SystemClock`; tests inject :class:`FakeClock` and move time with
:meth:`FakeClock.advance` instead of sleeping. Both offer :meth:`Clock.sleep_until`, which the
scheduler loop uses so that a fake clock can wake it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Clock(Protocol):
    """What the engine needs from a clock."""

    def now(self) -> datetime:
        """The current time, an aware UTC datetime."""
        ...

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> None:
        """Return when ``when`` is reached (never if ``None``) or as soon as ``wake`` is set."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """The current UTC time."""
        return utcnow()

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> None:
        """Sleep until ``when`` or until ``wake`` is set, whichever comes first."""
        timeout = None if when is None else max(0.0, (when - utcnow()).total_seconds())
        # asyncio.wait, not wait_for: on Python 3.11 wait_for drops a cancellation that arrives
        # in the same loop turn as the wake-up, and a stopping engine would then never stop.
        waiter = asyncio.ensure_future(wake.wait())
        try:
            await asyncio.wait({waiter}, timeout=timeout)
        finally:
            waiter.cancel()


class FakeClock:
    """A clock that only moves when a test tells it to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self._sleepers: set[asyncio.Event] = set()

    def now(self) -> datetime:
        """The fake current time."""
        return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when``; sleepers whose deadline passed wake up."""
        self._now = when
        for sleeper in self._sleepers:
            sleeper.set()

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        """Move time forward by ``seconds`` (or any ``timedelta`` keywords); returns the new now."""
        self.set(self._now + timedelta(seconds=seconds, **kwargs))
        return self._now

    async def sleep_until(self, when: datetime | None, wake: asyncio.Event) -> None:
        """Wait until the fake time reaches ``when`` or ``wake`` is set."""
        while not wake.is_set() and (when is None or self._now < when):
            moved = asyncio.Event()
            self._sleepers.add(moved)
            waiters = {asyncio.ensure_future(moved.wait()), asyncio.ensure_future(wake.wait())}
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._sleepers.discard(moved)
                for waiter in waiters:
                    waiter.cancel()
