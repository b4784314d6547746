"""The SQLite store: cueflow's zero-setup default.

One connection, driven inline on the event loop: SQLite serialises writers anyway, and each
statement is short, so this beats a thread pool or an async driver (see
``shared/notes/performance-facts.md``). WAL journal, ``synchronous=NORMAL``, and every
transaction starts with ``BEGIN IMMEDIATE`` so concurrent writers queue instead of deadlocking.

Waiting never blocks the event loop. Units of work take turns on the connection through an
``asyncio.Lock`` (FIFO). SQLite's own busy handler is off (``busy_timeout=0``): when another
process holds the write lock, ``BEGIN IMMEDIATE`` fails at once and is retried after an
``asyncio.sleep`` with backoff, so only the work that needs the database waits. In WAL mode
that ``BEGIN`` is the only statement that waits for another process (once it succeeds, this
connection holds the write lock and its snapshot; a checkpoint after commit never waits).
Opening the connection (``journal_mode=WAL`` on a new file) and the migrations at start-up
wait the same way. A wait longer than ``sqlite_lock_timeout_seconds`` (or
:data:`cueflow.store.lock_wait_limit`) raises :class:`cueflow.errors.DatabaseBusy`, which the
API answers with 503; so does a lock error on any other statement.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import StaticPool

from cueflow.config import Settings
from cueflow.errors import DatabaseBusy
from cueflow.markers import hookimpl
from cueflow.migrate import upgrade
from cueflow.pulse import Pulse
from cueflow.sql.base import Connection as StoreConnection
from cueflow.sql.secret_box import attach
from cueflow.sql.store import SqlStore
from cueflow.store import lock_wait_limit

LOCK_TIMEOUT_SECONDS = 10.0
"""Default for ``sqlite_lock_timeout_seconds``."""
_FIRST_RETRY_SECONDS = 0.001
_LONGEST_RETRY_SECONDS = 0.05
_LOCKED = "The database is locked by another process; try again shortly"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_loads(value: Any) -> Any:
    # A JSON column has NUMERIC affinity in SQLite: a bare number (a flow step's output may be
    # one) comes back as a number, not as its JSON text.
    return value if isinstance(value, int | float) else orjson.loads(value)


def _is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (sqlite3's or SQLAlchemy's wrapper) is ``SQLITE_BUSY`` or ``SQLITE_LOCKED``:
    a lock someone else holds, worth waiting for."""
    orig = exc.orig if isinstance(exc, OperationalError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _InlineConnection:
    """Presents a synchronous connection with the awaitable ``execute`` the SQL store uses."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self._conn.execute(statement, parameters)


class SqliteConnector:
    """The SQLite half of :class:`cueflow.sql.store.SqlStore`."""

    name = "sqlite"
    autocommits = False
    skip_locked = False

    def __init__(self, url: str, lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> None:
        url = url.replace("sqlite+pysqlite://", "sqlite://")
        self.engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False, "isolation_level": None},
            json_serializer=_json_dumps,
            json_deserializer=_json_loads,
        )
        event.listen(self.engine, "connect", self._configure)
        self.lock_timeout = lock_timeout
        self._turn = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None
        self._conn: Connection | None = None
        self._raw: sqlite3.Connection | None = None
        self._inline_conn: _InlineConnection | None = None

    @property
    def _inline(self) -> _InlineConnection:
        assert self._conn is not None
        if self._inline_conn is None or self._inline_conn._conn is not self._conn:
            self._inline_conn = _InlineConnection(self._conn)
        return self._inline_conn

    @staticmethod
    def _configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        # busy_timeout first: SQLite's busy handler sleeps on the event loop, so it is off for
        # every statement, journal_mode included (a new file needs an exclusive lock for it).
        for pragma in (
            "busy_timeout=0",
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    def _begin_immediate(self) -> None:
        """Connect if need be and start a write transaction; raises if the lock is taken."""
        if self._conn is None:
            conn = self.engine.connect()
            raw = conn.connection.dbapi_connection
            assert isinstance(raw, sqlite3.Connection)  # the pysqlite driver's
            self._raw = raw
            self._conn = conn
        assert self._raw is not None
        # On the DB-API connection: SQLAlchemy's own BEGIN is a no-op for SQLite, and its
        # COMMIT/ROLLBACK go through the same sqlite3 connection.
        self._raw.execute("BEGIN IMMEDIATE")

    def _deadline(self) -> float:
        limit = lock_wait_limit.get()
        return time.monotonic() + (self.lock_timeout if limit is None else limit)

    async def _take_turn(self) -> float | None:
        """Wait (without blocking the loop) for the connection; returns the deadline it waited
        under, or ``None`` when the connection was free."""
        if not self._turn.locked():
            await self._turn.acquire()  # free: returns without suspending
            return None
        deadline = self._deadline()
        try:
            await asyncio.wait_for(self._turn.acquire(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            raise DatabaseBusy(_LOCKED) from None
        return deadline

    async def _lock_database(self, deadline: float | None) -> None:
        """``BEGIN IMMEDIATE``, retried after growing pauses while another process holds the
        write lock, until ``deadline`` (counted from the first refusal if ``None``)."""
        pause = _FIRST_RETRY_SECONDS
        while True:
            try:
                self._begin_immediate()
                return
            except (sqlite3.OperationalError, OperationalError) as exc:
                if not _is_busy(exc):
                    raise
                deadline = deadline or self._deadline()
                if time.monotonic() + pause > deadline:
                    raise DatabaseBusy(_LOCKED) from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_RETRY_SECONDS)

    @asynccontextmanager
    async def begin(self, single_statement: bool = False) -> AsyncIterator[_InlineConnection]:
        """A write transaction on the single connection, once it is this unit of work's turn
        and the database's write lock is free (for a ``single_statement`` unit of work too:
        the turn and the lock are what keep writers apart).

        Raises :class:`DatabaseBusy` when the two together take longer than the lock timeout,
        and ``RuntimeError`` when a unit of work opens another inside itself (it would wait
        for itself).
        """
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("SQLite unit of work re-entered: a transaction opened another")
        deadline = await self._take_turn()
        self._holder = task
        try:
            await self._lock_database(deadline)
            try:
                # One connection held open: no pool checkout and reset per unit of work.
                assert self._conn is not None  # opened by _lock_database
                with self._conn.begin():
                    yield self._inline
            except OperationalError as exc:
                if _is_busy(exc):  # a COMMIT refused (only outside WAL mode)
                    raise DatabaseBusy(_LOCKED) from exc
                raise
        finally:
            self._holder = None
            self._turn.release()

    def insert(self, table: Any) -> Any:
        """SQLite's ``INSERT`` with ``ON CONFLICT``."""
        return sqlite_insert(table)

    async def open(self) -> None:
        """Apply migrations (waiting for the write lock like any unit of work)."""
        async with self.begin():
            assert self._conn is not None
            upgrade(self._conn)

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
            self._raw = None
        self.engine.dispose()

    async def notify(self, conn: StoreConnection) -> None:
        """One process owns a SQLite database: nobody else to tell."""

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Nothing to listen to."""


def open_store(url: str, settings: Settings) -> SqlStore:
    """Build a SQLite store for ``url`` (``sqlite:///file.db`` or ``sqlite://`` in memory)."""
    connector = SqliteConnector(url, settings.sqlite_lock_timeout_seconds)
    attach(connector.engine.dialect, settings.secret_key)
    return SqlStore(connector)


@hookimpl
def cueflow_register_stores(register: Callable[[str, Any], None]) -> None:
    """Serve ``sqlite://`` URLs."""
    register("sqlite", open_store)
