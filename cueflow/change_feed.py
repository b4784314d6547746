"""The dashboard's live stream (``GET /v1/events/stream``): the caller's execution and cue
changes as server-sent events.

Each stream looks at the database every :data:`LOOK_SECONDS` for executions changed since its
last look (among those created in the last :data:`RECENT_SECONDS`, through the owner's
creation index, at most :data:`BATCH` a look) and for a change of the cue list, so it sees
the changes other nodes make as well as this one's. The creation bound keeps a look's cost
that of the last hour's executions; an index on ``(user_id, updated_at)`` would lift it, but
would be one more index written by every status change on the claim and outcome paths.
Between changes it sends a comment every :data:`HEARTBEAT_SECONDS` (a proxy keeps the
connection and a client sees a dead one). It ends after :data:`MAX_STREAM_SECONDS` (the
client reconnects), when the client goes away, and at once when the engine drains, so an open
stream never holds a stopping server. An account holds at most :data:`STREAMS_PER_ACCOUNT`
streams per process (:class:`StreamSlots`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson

from cueflow.authentication import Principal

if TYPE_CHECKING:
    from cueflow.services import Services

LOOK_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 600.0
RECENT_SECONDS = 3600
BATCH = 200
STREAMS_PER_ACCOUNT = 10


class StreamSlots:
    """The streams open in this process per account: past :data:`STREAMS_PER_ACCOUNT`, a new
    one gets ``busy`` and ends (its dashboard polls instead), so one account's tabs cannot
    multiply the database looks without bound."""

    def __init__(self, limit: int = STREAMS_PER_ACCOUNT) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}

    def take(self, user_id: str) -> bool:
        """Take a slot for ``user_id``; ``False`` when all of theirs are taken."""
        if self._open.get(user_id, 0) >= self.limit:
            return False
        self._open[user_id] = self._open.get(user_id, 0) + 1
        return True

    def give_back(self, user_id: str) -> None:
        """Free a slot :meth:`take` gave."""
        left = self._open.get(user_id, 0) - 1
        if left > 0:
            self._open[user_id] = left
        else:
            self._open.pop(user_id, None)


def event(name: str, data: Any) -> bytes:
    """One server-sent event."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def stream(
    services: Services,
    user: Principal,
    gone: Callable[[], Awaitable[bool]],
    *,
    look_seconds: float = LOOK_SECONDS,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    max_seconds: float = MAX_STREAM_SECONDS,
    slots: StreamSlots | None = None,
) -> AsyncGenerator[bytes, None]:
    """The events of one stream (see the module); ``gone()`` says the client disconnected.
    With ``slots``, the stream holds one of its account's while it runs (taken here, at its
    first event, so a stream never started holds none)."""
    if slots is not None and not slots.take(user.user_id):
        yield event("busy", {"limit": slots.limit})
        return
    events = _events(services, user, gone, look_seconds, heartbeat_seconds, max_seconds)
    try:
        async for chunk in events:
            yield chunk
    finally:
        await events.aclose()
        if slots is not None:
            slots.give_back(user.user_id)


async def _events(
    services: Services,
    user: Principal,
    gone: Callable[[], Awaitable[bool]],
    look_seconds: float,
    heartbeat_seconds: float,
    max_seconds: float,
) -> AsyncGenerator[bytes, None]:
    """The events of one stream, slots aside."""
    draining = services.signals.draining
    loop = asyncio.get_running_loop()
    started = last_sent = loop.time()
    since = services.clock.now()
    async with services.store.tx() as tx:
        mark = await tx.cues_mark(user.user_id)
    yield b"retry: 2000\n" + event("hello", {"at": since.isoformat()})
    while not draining.is_set() and loop.time() - started < max_seconds:
        try:
            await asyncio.wait_for(draining.wait(), timeout=look_seconds)
            break
        except TimeoutError:
            pass
        if await gone():
            return
        changed, since, mark, cues_changed = await _look(services, user, since, mark)
        if changed:
            yield event("executions", {"executions": changed})
            last_sent = loop.time()
        if cues_changed:
            yield event("cues", {"count": mark[0]})
            last_sent = loop.time()
        if loop.time() - last_sent >= heartbeat_seconds:
            yield b": heartbeat\n\n"
            last_sent = loop.time()
    yield event("drain" if draining.is_set() else "bye", {})


async def _look(
    services: Services, user: Principal, since: datetime, mark: tuple[int, datetime | None]
) -> tuple[list[dict[str, Any]], datetime, tuple[int, datetime | None], bool]:
    """The executions changed after ``since`` and the cue list's mark now."""
    created_after = services.clock.now() - timedelta(seconds=RECENT_SECONDS)
    async with services.store.tx() as tx:
        rows = await tx.changed_executions(user.user_id, created_after, since, BATCH)
        now_mark = await tx.cues_mark(user.user_id)
    if rows:
        since = max(row.updated_at for row in rows)
    changed = [
        {
            "id": row.id,
            "cue_id": row.cue_id,
            "status": row.status,
            "updated_at": row.updated_at.isoformat(),
        }
        for row in rows
    ]
    return changed, since, now_mark, now_mark != mark
