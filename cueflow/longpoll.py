"""Long-polls: waiting for claimable work, one shared look per account and task.

A worker's ``claimable?wait=N`` (or batch claim with ``wait``) that finds nothing joins the
**watch** of its (account, task). A watch is one task that looks in the database for its key
when the process's :class:`~cueflow.signals.WorkSignal` says work may have appeared (a fire, a
claim given back, a lease swept), and otherwise every :data:`RECHECK_SECONDS` (work another
node created, which no local signal announces), and hands what it found to every request
waiting on it. So a thousand waits of one key cost one query per wake-up, not a thousand, and
a quiet key costs two queries a second whatever the number of its waits.

Each account may hold at most ``CUEFLOW_MAX_WAITS_PER_KEY`` waits at once; a request beyond
that is answered at once, as if it had not asked to wait (an empty list). The rate limiter
charges a wait by its duration (:mod:`cueflow.api.ratelimit`), and a wait refused for the cap
by the duration it asked for: a key that re-asks at once in a loop pays as if it had waited.

While the engine drains (``stopping`` is set: the process is shutting down), every wait is
answered at once with an empty list, those waiting already included (:meth:`LongPolls.answer_all`),
so an open long-poll never holds a stopping server for the rest of its ``wait``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cueflow.clock import Clock
from cueflow.records import QueuedRun

log = logging.getLogger(__name__)

RECHECK_SECONDS = 0.5
"""How often a watch looks without a signal: work created by another node (or made due by the
passing of time) is seen within this."""

REFUSED_WAITS: ContextVar[list[float] | None] = ContextVar("cueflow_refused_waits", default=None)
"""Set by a caller that charges for waiting (the rate limiter) to a list: each wait refused for
the cap adds the seconds it asked for."""

Look = Callable[[str, str | None], Awaitable[list[QueuedRun]]]
"""``look(user_id, task)``: the claimable rows of an account (of one task, or any), oldest
first."""


@dataclass
class _Round:
    """What one look of a watch found, for the requests that waited for it."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    rows: list[QueuedRun] = field(default_factory=list)
    error: BaseException | None = None


@dataclass
class _Watch:
    round: _Round = field(default_factory=_Round)
    waiters: int = 0
    sleeping: bool = False
    task: asyncio.Task[None] | None = None


class LongPolls:
    """The watches of one engine and the count of waits per account."""

    def __init__(
        self,
        clock: Clock,
        work: Callable[[], asyncio.Event],
        look: Look,
        max_waits_per_key: int,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self._clock = clock
        self._stopping = stopping or asyncio.Event()
        self._ticket = work
        self._look = look
        self.max_waits_per_key = max_waits_per_key
        self._watches: dict[tuple[str, str | None], _Watch] = {}
        self._waits: dict[str, int] = {}

    def waiting(self, user_id: str) -> int:
        """How many requests of ``user_id`` are waiting now."""
        return self._waits.get(user_id, 0)

    def watched(self, user_id: str, task: str | None) -> bool:
        """Whether ``(user_id, task)`` has a watch: then its last look found nothing, and it
        looks again on every signal since, so a new wait may join it without a look of its own
        (work that no local signal announces is seen within :data:`RECHECK_SECONDS`)."""
        return (user_id, task) in self._watches

    async def wait(
        self,
        user_id: str,
        task: str | None,
        until: datetime,
        ticket: asyncio.Event | None = None,
    ) -> list[QueuedRun]:
        """Wait until the watch of ``(user_id, task)`` finds claimable work (its rows, oldest
        first) or until ``until`` (``[]``). ``ticket`` is the work signal's ticket the caller
        took before its own look came back empty (a signal since then is not lost); without one
        (the caller did not look) a new watch looks at once. ``[]`` at once when the account
        already holds its maximum of waits, or while the engine drains."""
        if self._stopping.is_set():
            return []
        if self._waits.get(user_id, 0) >= self.max_waits_per_key:
            refused = REFUSED_WAITS.get()
            if refused is not None:
                refused.append(max(0.0, (until - self._clock.now()).total_seconds()))
            return []
        key = (user_id, task)
        watch = self._watches.get(key)
        if watch is None:
            if ticket is None:
                ticket = asyncio.Event()
                ticket.set()
            watch = self._watches[key] = _Watch()
            watch.task = asyncio.create_task(self._watch(key, watch, ticket), name="cueflow-watch")
        current = watch.round
        watch.waiters += 1
        self._waits[user_id] = self._waits.get(user_id, 0) + 1
        try:
            await self._clock.sleep_until(until, current.done)
        finally:
            watch.waiters -= 1
            self._waits[user_id] -= 1
            if not self._waits[user_id]:
                del self._waits[user_id]
            if not watch.waiters:
                self._retire(key, watch)
        if current.error is not None:
            raise current.error
        return current.rows if current.done.is_set() else []

    def _retire(self, key: tuple[str, str | None], watch: _Watch) -> None:
        """Forget a watch nobody waits on; stop it now if it sleeps (a look in progress ends
        on its own: cancelling a query would cost its connection)."""
        if self._watches.get(key) is watch:
            del self._watches[key]
        if watch.sleeping and watch.task is not None:
            watch.task.cancel()

    async def _watch(
        self, key: tuple[str, str | None], watch: _Watch, ticket: asyncio.Event
    ) -> None:
        user_id, task = key
        try:
            while watch.waiters:
                watch.sleeping = True
                recheck = self._clock.now() + timedelta(seconds=RECHECK_SECONDS)
                await self._clock.sleep_until(recheck, ticket)
                watch.sleeping = False
                if not watch.waiters:
                    return
                ticket = self._ticket()
                found = watch.round
                try:
                    found.rows = await self._look(user_id, task)
                except Exception as exc:  # the waiters answer it (503 when the store is down)
                    found.error = exc
                if found.rows or found.error is not None:
                    watch.round = _Round()
                    found.done.set()
        finally:
            if self._watches.get(key) is watch:
                del self._watches[key]

    def answer_all(self) -> None:
        """Answer every request waiting now with an empty list (the engine drains; later waits
        are answered at once while ``stopping`` is set)."""
        for watch in self._watches.values():
            watch.round.done.set()

    async def close(self) -> None:
        """Stop every watch (the engine is stopping)."""
        watches = list(self._watches.values())
        self._watches.clear()
        for watch in watches:
            if watch.task is not None:
                watch.task.cancel()
        await asyncio.gather(*(w.task for w in watches if w.task), return_exceptions=True)
