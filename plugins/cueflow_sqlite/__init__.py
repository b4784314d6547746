"""The SQLite store: cueflow's zero-setup default.

One connection, driven inline on the event loop: SQLite serialises writers anyway, and each
statement is short, so this beats a thread pool or an async driver (see
``shared/notes/performance-facts.md``). WAL journal, ``synchronous=NORMAL``, and every
transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from cueflow import hookimpl
from cueflow.config import Settings
from cueflow.migrate import upgrade
from cueflow.sql.store import SqlStore


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class _InlineConnection:
    """Presents a synchronous connection with the awaitable ``execute`` the SQL store uses."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)


class SqliteConnector:
    """The SQLite half of :class:`cueflow.sql.store.SqlStore`."""

    name = "sqlite"
    skip_locked = False

    def __init__(self, url: str) -> None:
        url = url.replace("sqlite+pysqlite://", "sqlite://")
        self.engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )
        event.listen(self.engine, "connect", self._configure)
        event.listen(self.engine, "begin", self._begin_immediate)
        self._busy = False
        self._conn: Connection | None = None
        self._inline_conn: _InlineConnection | None = None

    @property
    def _inline(self) -> _InlineConnection:
        assert self._conn is not None
        if self._inline_conn is None or self._inline_conn._conn is not self._conn:
            self._inline_conn = _InlineConnection(self._conn)
        return self._inline_conn

    @staticmethod
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=10000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @staticmethod
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_InlineConnection]:
        """A transaction on the single connection.

        Units of work never await real I/O, so two of them cannot interleave on the loop; the
        guard makes a violation of that rule fail loudly instead of corrupting a transaction.
        """
        if self._busy:
            raise RuntimeError("SQLite unit of work re-entered: a store transaction awaited I/O")
        self._busy = True
        try:
            if self._conn is None:
                self._conn = self.engine.connect()
            # One connection held open: no pool checkout and reset per unit of work.
            with self._conn.begin():
                yield self._inline
        finally:
            self._busy = False

    def insert(self, table: Any) -> Any:
        """SQLite's ``INSERT`` with ``ON CONFLICT``."""
        return sqlite_insert(table)

    async def open(self) -> None:
        """Apply migrations."""
        with self.engine.begin() as conn:
            upgrade(conn)

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    async def notify(self, conn: Any) -> None:
        """One process owns a SQLite database: nobody else to tell."""

    async def listen(self, callback: Callable[[], None], pulse: Any) -> None:
        """Nothing to listen to."""


def open_store(url: str, settings: Settings) -> SqlStore:
    """Build a SQLite store for ``url`` (``sqlite:///file.db`` or ``sqlite://`` in memory)."""
    return SqlStore(SqliteConnector(url))


@hookimpl
def cueflow_register_stores(register: Callable[[str, Any], None]) -> None:
    """Serve ``sqlite://`` URLs."""
    register("sqlite", open_store)
