"""One SQL implementation of :class:`cueflow.store.StoreTx`, shared by the SQL store plugins.

Statements are SQLAlchemy Core (the hot paths never build ORM objects). What differs between
databases — how a connection is driven, ``INSERT ... ON CONFLICT``, row locking with
``SKIP LOCKED``, cross-node notifications — comes from the plugin's :class:`Connector`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, select, type_coerce

from cueflow.errors import DatabaseBusy, DatabaseUnavailable
from cueflow.faults import database_fault
from cueflow.sql.accounts import AccountQueries
from cueflow.sql.alert_queries import AlertQueries
from cueflow.sql.api_key_queries import ApiKeyQueries
from cueflow.sql.base import Connection, Connector
from cueflow.sql.claim_queries import ClaimQueries
from cueflow.sql.cue_queries import CueQueries
from cueflow.sql.delivery_queries import DeliveryQueries
from cueflow.sql.echo_queries import EchoQueries
from cueflow.sql.execution_queries import ExecutionQueries
from cueflow.sql.flow_queries import FlowQueries
from cueflow.sql.idempotency_queries import IdempotencyQueries
from cueflow.sql.lease_queries import LeaseQueries
from cueflow.sql.limit_queries import LimitQueries
from cueflow.sql.retention_queries import RetentionQueries
from cueflow.sql.secret_box import SEALED_PREFIX, warn_without_key
from cueflow.sql.stats_queries import StatsQueries
from cueflow.sql.tables import users
from cueflow.sql.usage_queries import UsageQueries
from cueflow.sql.worker_queries import WorkerQueries

if TYPE_CHECKING:
    from cueflow.pulse import Pulse

__all__ = ["Connection", "Connector", "SqlStore", "SqlTx"]

FAILURE_MEMORY_SECONDS = 60.0
"""How long a database failure is reported (:meth:`SqlStore.failure`) when no write succeeds
after it: an idle node forgets a passing fault after this long."""


class _WatchedConnection:
    """A transaction's connection that notes whether a statement wrote (insert, update,
    delete), so that a committed write can clear a reported failure."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.wrote = False

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if not self.wrote and getattr(statement, "is_dml", False):
            self.wrote = True
        return await self._conn.execute(statement, parameters)


class SqlStore:
    """A :class:`cueflow.store.Store` over a :class:`Connector`."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.name = connector.name
        self._failed: tuple[float, str] | None = None

    async def open(self) -> None:
        """Connect, migrate, and read one encrypted secret back: a missing or wrong
        ``CUEFLOW_SECRET_KEY`` stops start-up here with a
        :class:`cueflow.sql.secret_box.SecretKeyError`, not at the first delivery. Without a
        key, log that secrets are stored in plaintext (once per process)."""
        await self.connector.open()
        sealed = type_coerce(users.c.webhook_secret, Text).startswith(SEALED_PREFIX)
        async with self.tx() as tx:
            result = await tx.conn.execute(select(users.c.webhook_secret).where(sealed).limit(1))
            result.all()
        warn_without_key(result.context.dialect)

    async def close(self) -> None:
        """Disconnect."""
        await self.connector.close()

    @asynccontextmanager
    async def tx(self, *, single_statement: bool = False) -> AsyncIterator[SqlTx]:
        """A unit of work in one database transaction (for a ``single_statement`` unit, none
        where the connector :attr:`~Connector.autocommits`). A failure of the database itself
        (unreachable, too slow, restarting, full: :func:`cueflow.faults.database_fault`) is
        raised as :class:`cueflow.errors.DatabaseUnavailable` and remembered for
        :meth:`failure`."""
        connector = self.connector
        try:
            async with connector.begin(single_statement) as conn:
                watched = _WatchedConnection(conn)
                atomic = not (single_statement and connector.autocommits)
                yield SqlTx(watched, connector, atomic)
        except DatabaseBusy:
            raise  # another process holds the lock: busy, not failing
        except Exception as exc:
            reason = database_fault(exc)
            if reason is None:
                raise
            self._failed = (time.monotonic(), reason)
            raise DatabaseUnavailable(f"Database unavailable: {reason}") from exc
        if watched.wrote:
            self._failed = None

    def failure(self) -> str | None:
        """Why the database failed a unit of work in the last
        :data:`FAILURE_MEMORY_SECONDS`, if no write has been committed since (a database that
        still answers reads but refuses writes, e.g. a full disk, shows here)."""
        if self._failed is None:
            return None
        at, reason = self._failed
        if time.monotonic() - at > FAILURE_MEMORY_SECONDS:
            return None
        return reason

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Forward other nodes' schedule changes to ``callback``, until cancelled (see
        :meth:`cueflow.store.Store.listen`)."""
        await self.connector.listen(callback, pulse)


class SqlTx(
    AccountQueries,
    ApiKeyQueries,
    CueQueries,
    ExecutionQueries,
    ClaimQueries,
    LeaseQueries,
    DeliveryQueries,
    WorkerQueries,
    AlertQueries,
    UsageQueries,
    EchoQueries,
    FlowQueries,
    IdempotencyQueries,
    LimitQueries,
    RetentionQueries,
    StatsQueries,
):
    """The statements of one unit of work, grouped by concept in the ``cueflow.sql`` modules
    (each mixin implements the protocol of the same concept in :mod:`cueflow.store`)."""
