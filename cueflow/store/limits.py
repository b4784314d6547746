"""Limit keys: what a concurrency or rate limit counts, read and written under a lock held until
the transaction ends, so that claims on several nodes admit runs one key at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from cueflow.records import KeyLoad

KeyOf = tuple[str, str]
"""``(user_id, key)``: a limit key of one account."""


class LimitStore(Protocol):
    """Limit keys (see the module)."""

    async def lock_limit_keys(self, concurrency: Sequence[KeyOf], rate: Sequence[KeyOf]) -> None:
        """Hold the ``concurrency`` and ``rate`` keys until the transaction ends (another
        transaction locking one of them waits), rate keys first, each kind in sorted order, so
        that two transactions cannot deadlock. A concurrency key's lock must be the one every
        move of its executions into ``delivering`` takes, if the store admits such moves by
        itself (see :meth:`~cueflow.store.claims.ClaimStore.claim_due`). A store whose
        transactions never run side by side (one writer at a time) may do nothing."""

    async def key_loads(
        self, concurrency: Sequence[KeyOf], rate: Sequence[KeyOf], now: datetime
    ) -> dict[tuple[str, str, str], KeyLoad]:
        """What holds each key now, keyed ``(kind, user_id, key)`` with kind ``"concurrency"``
        (executions in status ``delivering`` stamped with the key) or ``"rate"`` (starts
        recorded under the key that expire after ``now``, and the first of their expiries)."""

    async def record_starts(
        self, starts: Sequence[tuple[str, str, datetime, str]], now: datetime
    ) -> None:
        """Record rate-limit starts ``(user_id, rate_key, expires_at, execution_id)`` and drop
        the expired starts of their keys."""
