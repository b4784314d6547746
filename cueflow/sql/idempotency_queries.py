"""Fire idempotency keys: the ``fire_idempotency`` table, whose primary key
``(user_id, cue_id, idempotency_key)`` makes one fire per key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from cueflow.sql.base import TxBase
from cueflow.sql.tables import fire_idempotency

_KEY = ["user_id", "cue_id", "idempotency_key"]


class IdempotencyQueries(TxBase):
    """Fire idempotency keys."""

    async def fire_key_holder(
        self, user_id: str, cue_id: str, key: str, since: datetime
    ) -> str | None:
        """The execution holding a live key."""
        stmt = select(fire_idempotency.c.execution_id).where(
            fire_idempotency.c.user_id == user_id,
            fire_idempotency.c.cue_id == cue_id,
            fire_idempotency.c.idempotency_key == key,
            fire_idempotency.c.created_at >= since,
        )
        row = await self._one(stmt)
        return None if row is None else str(row["execution_id"])

    async def hold_fire_key(
        self,
        user_id: str,
        cue_id: str,
        key: str,
        execution_id: str,
        now: datetime,
        expired_before: datetime,
    ) -> str | None:
        """Prune the cue's expired keys, then insert the key unless taken (the primary key
        decides between concurrent fires); the holder's execution id."""
        await self.conn.execute(
            fire_idempotency.delete().where(
                fire_idempotency.c.user_id == user_id,
                fire_idempotency.c.cue_id == cue_id,
                fire_idempotency.c.created_at < expired_before,
            )
        )
        values = {
            "user_id": user_id,
            "cue_id": cue_id,
            "idempotency_key": key,
            "execution_id": execution_id,
            "created_at": now,
        }
        stmt = (
            self.connector.insert(fire_idempotency)
            .values(**values)
            .on_conflict_do_nothing(index_elements=_KEY)
            .returning(fire_idempotency.c.execution_id)
        )
        if await self._one(stmt) is not None:
            return execution_id
        return await self.fire_key_holder(user_id, cue_id, key, expired_before)
