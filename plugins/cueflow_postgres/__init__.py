"""The PostgreSQL store: several cueflow processes on one database, no leader, no Redis.

asyncpg through SQLAlchemy's async engine. Due-cue selection, claim-next and the lease sweep use
``FOR UPDATE SKIP LOCKED`` so nodes never take the same row; schedule changes are broadcast with
``NOTIFY`` so every node's scheduler wakes at once. Migrations run under an advisory lock, so
nodes starting together migrate once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from cueflow import hookimpl
from cueflow.config import Settings
from cueflow.migrate import upgrade
from cueflow.sql.store import SqlStore

log = logging.getLogger(__name__)

CHANNEL = "cueflow_schedule"
_MIGRATION_LOCK = 7_260_812_001


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresConnector:
    """The PostgreSQL half of :class:`cueflow.sql.store.SqlStore`."""

    name = "postgresql"
    skip_locked = True

    def __init__(self, url: str, pool_size: int = 10) -> None:
        parsed = make_url(url).set(drivername="postgresql+asyncpg")
        self.url = parsed
        self.engine = create_async_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
        self._listener: asyncpg.Connection | None = None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on a pooled connection."""
        async with self.engine.begin() as conn:
            yield conn

    def insert(self, table: Any) -> Any:
        """PostgreSQL's ``INSERT`` with ``ON CONFLICT``."""
        return pg_insert(table)

    async def open(self) -> None:
        """Apply migrations, once across nodes."""
        async with self.engine.connect() as conn:
            await conn.execute(text(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})"))
            try:
                await conn.run_sync(upgrade)
                await conn.commit()
            finally:
                await conn.execute(text(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})"))
                await conn.commit()

    async def close(self) -> None:
        """Close the listener and the pool."""
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        await self.engine.dispose()

    async def notify(self, conn: Any) -> None:
        """Queue a notification; PostgreSQL delivers it when the transaction commits."""
        await conn.execute(text(f"NOTIFY {CHANNEL}"))

    async def listen(self, callback: Callable[[], None]) -> None:
        """Hold one connection that LISTENs and calls ``callback`` on each notification."""
        dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._listener = await asyncpg.connect(dsn)
        await self._listener.add_listener(CHANNEL, lambda *_: callback())


def open_store(url: str, settings: Settings) -> SqlStore:
    """Build a PostgreSQL store for ``postgresql://user@host/db``."""
    return SqlStore(PostgresConnector(url))


@hookimpl
def cueflow_register_stores(register: Callable[[str, Any], None]) -> None:
    """Serve ``postgresql://`` (and ``postgres://``) URLs."""
    register("postgresql", open_store)
    register("postgres", open_store)


__all__ = ["PostgresConnector", "open_store"]
