"""Workers: heartbeats, listings and liveness."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    bindparam,
    func,
    select,
)

import cueflow.sql.rows as rows
from cueflow.records import Worker
from cueflow.sql.base import TxBase
from cueflow.sql.tables import (
    workers,
)


class WorkerQueries(TxBase):
    """Workers: heartbeats, listings and liveness."""

    async def upsert_worker(
        self, user_id: str, worker_id: str, handlers: list[str] | None, now: datetime
    ) -> None:
        """Create or refresh a worker row."""
        stmt = self.connector.insert(workers).values(
            id=str(uuid.uuid4()),
            user_id=user_id,
            worker_id=worker_id,
            handlers=handlers,
            last_heartbeat=now,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "worker_id"],
            set_={
                "handlers": stmt.excluded.handlers,
                "last_heartbeat": stmt.excluded.last_heartbeat,
            },
        )
        await self.conn.execute(stmt)

    async def touch_worker(self, user_id: str, worker_id: str, now: datetime) -> None:
        """Create a worker without handlers, or refresh its heartbeat only."""
        stmt = self.connector.insert(workers).values(
            id=str(uuid.uuid4()),
            user_id=user_id,
            worker_id=worker_id,
            handlers=None,
            last_heartbeat=now,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "worker_id"],
            set_={"last_heartbeat": stmt.excluded.last_heartbeat},
        )
        await self.conn.execute(stmt)

    async def list_workers(self, user_id: str) -> list[Worker]:
        """The user's workers."""
        return await self._records(
            rows.worker,
            select(workers)
            .where(workers.c.user_id == user_id)
            .order_by(workers.c.last_heartbeat.desc()),
        )

    async def delete_worker(self, user_id: str, worker_id: str) -> bool:
        """Forget a worker."""
        result = await self.conn.execute(
            workers.delete().where(workers.c.user_id == user_id, workers.c.worker_id == worker_id)
        )
        return bool(result.rowcount)

    async def count_live_workers(self, user_id: str, since: datetime) -> int:
        """Workers heard from since ``since``."""
        stmt = self._prepared(
            ("count_live_workers",),
            lambda: select(func.count()).where(
                workers.c.user_id == bindparam("p_user_id"),
                workers.c.last_heartbeat
                >= bindparam("p_since", type_=workers.c.last_heartbeat.type),
            ),
        )
        params = {"p_user_id": user_id, "p_since": since}
        return int((await self.conn.execute(stmt, params)).scalar_one())
