"""Accounts: users, rotated keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

import cueflow.sql.rows as rows
from cueflow.records import Account
from cueflow.sql.base import TxBase, _duplicate
from cueflow.sql.tables import (
    rotated_keys,
    users,
)


class AccountQueries(TxBase):
    """Accounts: users, rotated keys."""

    async def insert_user(self, values: dict[str, Any]) -> None:
        """Insert a user."""
        try:
            await self.conn.execute(users.insert().values(**values))
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def user_by_key_hash(self, key_hash: str) -> Account | None:
        """The user owning a key hash."""
        stmt = select(users).where(users.c.api_key_hash == key_hash)
        return await self._record(rows.account, stmt)

    async def user_by_email(self, email: str) -> Account | None:
        """The user registered with ``email``."""
        return await self._record(rows.account, select(users).where(users.c.email == email))

    async def get_user(self, user_id: str) -> Account | None:
        """One user by id."""
        return await self._record(rows.account, select(users).where(users.c.id == user_id))

    async def update_user(
        self, user_id: str, values: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> Account | None:
        """Conditionally update one user."""
        conditions = [users.c.id == user_id]
        for column, value in (expect or {}).items():
            col = users.c[column]
            conditions.append(col.is_(None) if value is None else col == value)
        stmt = update(users).where(*conditions).values(**values).returning(*users.c)
        try:
            return await self._record(rows.account, stmt)
        except IntegrityError as exc:
            raise _duplicate(exc) from exc

    async def lock_user(self, user_id: str) -> Account | None:
        """One user, locked (``FOR UPDATE``; SQLite transactions are serial already)."""
        stmt = select(users).where(users.c.id == user_id).with_for_update()
        return await self._record(rows.account, stmt)

    async def remember_rotated_key(self, key_hash: str, user_id: str, now: datetime) -> None:
        """Record a replaced key's hash."""
        stmt = self.connector.insert(rotated_keys).values(
            key_hash=key_hash, user_id=user_id, rotated_at=now
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_hash"],
            set_={"user_id": stmt.excluded.user_id, "rotated_at": stmt.excluded.rotated_at},
        )
        await self.conn.execute(stmt)

    async def key_rotated_since(self, key_hash: str, since: datetime) -> bool:
        """Whether a key was replaced at or after ``since``."""
        stmt = select(rotated_keys.c.key_hash).where(
            rotated_keys.c.key_hash == key_hash, rotated_keys.c.rotated_at >= since
        )
        return await self._one(stmt) is not None

    async def forget_rotated_keys(self, before: datetime) -> None:
        """Drop old rotation records."""
        await self.conn.execute(rotated_keys.delete().where(rotated_keys.c.rotated_at < before))
