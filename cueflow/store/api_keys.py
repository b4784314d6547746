"""An account's scoped API keys (its own key lives on the user, see
:class:`~cueflow.store.accounts.AccountStore`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from cueflow.records import ApiKey


class ApiKeyStore(Protocol):
    """Scoped API keys (see the module)."""

    async def insert_api_key(self, values: dict[str, Any]) -> None:
        """Insert a key (``id``, ``user_id``, ``name``, ``scope``, ``key_hash``, ``prefix``,
        ``created_at``)."""

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key (revoked or not) whose secret hashes to ``key_hash``."""

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        """The account's keys that are not revoked, oldest first."""

    async def count_api_keys(self, user_id: str) -> int:
        """How many keys of the account are not revoked."""

    async def revoke_api_key(self, user_id: str, key_id: str, now: datetime) -> ApiKey | None:
        """Mark the account's key ``key_id`` revoked at ``now`` unless it is already; the
        revoked key, or ``None`` if there was no such live key."""

    async def touch_api_key(self, key_id: str, now: datetime) -> None:
        """Set the key's ``last_used_at`` to ``now``."""
