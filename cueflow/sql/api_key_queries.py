"""Scoped API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

import cueflow.sql.rows as rows
from cueflow.records import ApiKey
from cueflow.sql.base import TxBase
from cueflow.sql.tables import api_keys


class ApiKeyQueries(TxBase):
    """Scoped API keys."""

    async def insert_api_key(self, values: dict[str, Any]) -> None:
        """Insert a key."""
        await self.conn.execute(api_keys.insert().values(**values))

    async def api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        """A key by the hash of its secret."""
        stmt = select(api_keys).where(api_keys.c.key_hash == key_hash)
        return await self._record(rows.api_key, stmt)

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        """An account's live keys, oldest first."""
        stmt = (
            select(api_keys)
            .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        return await self._records(rows.api_key, stmt)

    async def count_api_keys(self, user_id: str) -> int:
        """How many live keys an account has."""
        stmt = select(func.count()).where(
            api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None)
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def revoke_api_key(self, user_id: str, key_id: str, now: datetime) -> ApiKey | None:
        """Revoke a live key."""
        stmt = (
            update(api_keys)
            .where(
                api_keys.c.id == key_id,
                api_keys.c.user_id == user_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .returning(*api_keys.c)
        )
        return await self._record(rows.api_key, stmt)

    async def touch_api_key(self, key_id: str, now: datetime) -> None:
        """Note that a key was used."""
        await self.conn.execute(
            update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)
        )
