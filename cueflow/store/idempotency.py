"""Fire idempotency keys: which execution a manual fire with an ``idempotency_key`` created."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class IdempotencyStore(Protocol):
    """Fire idempotency keys: a manual fire's key held by the execution it created."""

    async def fire_key_holder(
        self, user_id: str, cue_id: str, key: str, since: datetime
    ) -> str | None:
        """The id of the execution a fire of the cue with ``key`` created at or after
        ``since``, or ``None``."""

    async def hold_fire_key(
        self,
        user_id: str,
        cue_id: str,
        key: str,
        execution_id: str,
        now: datetime,
        expired_before: datetime,
    ) -> str | None:
        """Record that ``key`` is held by ``execution_id`` (created at ``now``) unless a fire
        holds it already, after forgetting the cue's keys created before ``expired_before``.
        Returns the holder's execution id: ``execution_id`` when recorded, the other fire's
        otherwise. Two units of work holding one key at once end with one holder: the second
        waits for the first to finish and then answers with its execution (or records its own
        if the first rolled back)."""
