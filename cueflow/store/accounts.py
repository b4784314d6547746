"""Accounts and their API keys: users, and the keys a regeneration replaced (so that an old
key answers ``key_rotated`` on every node)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cueflow.records import Account


class AccountStore(Protocol):
    """Accounts and their API keys (see the module)."""

    async def insert_user(self, values: dict[str, Any]) -> None:
        """Insert a user; raise :class:`Duplicate` ``email`` or ``slug``."""

    async def user_by_key_hash(self, key_hash: str) -> Account | None:
        """The user whose API key hashes to ``key_hash``."""

    async def user_by_email(self, email: str) -> Account | None:
        """The user registered with ``email`` (exact match)."""

    async def get_user(self, user_id: str) -> Account | None:
        """One user by id."""

    async def update_user(
        self, user_id: str, values: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> Account | None:
        """Set ``values`` on a user if every column in ``expect`` has the given value (``None``
        means SQL NULL); return the updated row or ``None``."""

    async def lock_user(self, user_id: str) -> Account | None:
        """One user by id, locked until the transaction ends (serialises an account's
        limit-checked writes across nodes)."""

    async def remember_rotated_key(self, key_hash: str, user_id: str, now: datetime) -> None:
        """Record that the API key hashing to ``key_hash`` was replaced at ``now``."""

    async def key_rotated_since(self, key_hash: str, since: datetime) -> bool:
        """Whether the key hashing to ``key_hash`` was replaced at or after ``since``."""

    async def forget_rotated_keys(self, before: datetime) -> None:
        """Drop the records of keys replaced before ``before``."""
