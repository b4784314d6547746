"""One SQL implementation of :class:`cueflow.store.StoreTx`, shared by the SQL store plugins.

Statements are SQLAlchemy Core (the hot paths never build ORM objects). What differs between
databases — how a connection is driven, ``INSERT ... ON CONFLICT``, row locking with
``SKIP LOCKED``, cross-node notifications — comes from the plugin's :class:`Connector`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from cueflow.sql.accounts import AccountQueries
from cueflow.sql.base import Connection, Connector
from cueflow.sql.cue_queries import CueQueries
from cueflow.sql.delivery_queries import DeliveryQueries
from cueflow.sql.execution_queries import ExecutionQueries
from cueflow.sql.registry_queries import RegistryQueries

__all__ = ["Connection", "Connector", "SqlStore", "SqlTx"]


class SqlStore:
    """A :class:`cueflow.store.Store` over a :class:`Connector`."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        self.name = connector.name

    async def open(self) -> None:
        """Connect and migrate."""
        await self.connector.open()

    async def close(self) -> None:
        """Disconnect."""
        await self.connector.close()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[SqlTx]:
        """A unit of work in one database transaction."""
        async with self.connector.begin() as conn:
            yield SqlTx(conn, self.connector)

    async def listen(self, callback: Callable[[], None]) -> None:
        """Forward other nodes' schedule changes to ``callback``."""
        await self.connector.listen(callback)


class SqlTx(AccountQueries, CueQueries, ExecutionQueries, DeliveryQueries, RegistryQueries):
    """The statements of one unit of work, grouped by concept in the ``cueflow.sql`` modules."""
