"""The PostgreSQL store: several cueflow processes on one database, no leader, no Redis.

asyncpg through SQLAlchemy's async engine. Due-cue selection, claim-next and the lease sweep use
``FOR UPDATE SKIP LOCKED`` so nodes never take the same row; schedule changes are broadcast with
``NOTIFY`` so every node's scheduler wakes at once. Migrations run under an advisory lock, so
nodes starting together migrate once.

TLS: the URL takes libpq's TLS parameters (``sslmode``, ``sslrootcert``, ``sslcert``,
``sslkey``, ``sslnegotiation``) and the ``ssl=`` form SQLAlchemy documents for asyncpg
(``ssl=require``, or ``ssl=true``, which like asyncpg's ``ssl=True`` means ``verify-full``);
:func:`tls_parameters` takes them out of the URL SQLAlchemy sees, and asyncpg reads them with
libpq's meaning on every connection (pool, migrations, ``LISTEN``). Without any, asyncpg tries
TLS and falls back to plain (``prefer``), as libpq does.

Faults: every statement has a deadline (asyncpg's ``command_timeout``), so does opening a
connection and waiting for one from the pool. A pooled connection the server closed is never
handed out, and one idle for a second or more is checked with a quick ``SELECT 1`` first; when
either fails every older pooled connection is discarded (after a network cut or a restart they
are all dead) and fresh ones are opened. A statement that fails
on a dead or silent connection discards it too. The server is asked to end a session left idle
inside a transaction (its client is gone: our units of work never wait on anything else) so the
rows it locked are freed, and to probe idle connections with TCP keepalives. The ``LISTEN``
connection is checked every :data:`LISTEN_CHECK_SECONDS` and reopened with backoff when lost.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import event, exc, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util import await_

from cueflow.config import Settings
from cueflow.errors import PluginError
from cueflow.faults import database_fault
from cueflow.markers import hookimpl
from cueflow.migrate import upgrade
from cueflow.pulse import Pulse
from cueflow.sql.base import Connection as StoreConnection
from cueflow.sql.secret_box import attach
from cueflow.sql.store import SqlStore

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "cueflow_schedule"
LISTENER_NAME = "cueflow-listener"
"""The ``application_name`` of each node's ``LISTEN`` connection (see ``pg_stat_activity``)."""
LISTEN_CHECK_SECONDS = 5.0
"""How often the ``LISTEN`` connection is checked with a ``SELECT 1``."""
LISTEN_BACKOFF_SECONDS = (0.1, 5.0)
"""First and longest wait before reopening a lost ``LISTEN`` connection (doubling, jittered)."""
PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled connection idle longer than this is checked before use (one that was just in use
is not: a statement on it that fails discards it and every older one anyway)."""
POOL_RECYCLE_SECONDS = 1800
"""Pooled connections older than this are replaced (network equipment drops old flows)."""
MIGRATION_TIMEOUT_SECONDS = 600.0
"""Deadline of each migration statement (waiting for another node's migration included)."""
_MIGRATION_LOCK = 7_260_812_001
_KEEPALIVES = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10",
               "tcp_keepalives_count": "3"}  # fmt: skip


TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "sslnegotiation")
"""libpq's TLS parameters that asyncpg understands in a connection string."""
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SSL_BOOLEANS = {"true": "verify-full", "1": "verify-full", "on": "verify-full",
                 "false": "disable", "0": "disable", "off": "disable"}  # fmt: skip


def tls_parameters(url: URL) -> tuple[URL, dict[str, str]]:
    """Split ``url`` into the URL without its TLS query parameters and those parameters in
    libpq's names (``ssl=`` becomes ``sslmode``). SQLAlchemy would hand them to
    ``asyncpg.connect`` as keyword arguments, which it refuses (``unexpected keyword argument
    'sslmode'``); asyncpg reads them from a connection string instead (:func:`_tls_dsn`).
    Raises ``ValueError`` for an unknown mode or two that disagree."""
    query = dict(url.query)
    tls: dict[str, str] = {}
    for name in (*TLS_PARAMETERS, "ssl"):
        value = query.pop(name, None)
        if isinstance(value, tuple):
            raise ValueError(f"the database URL gives {name} more than once")
        if value is not None:
            tls[name] = value
    if "ssl" in tls:
        given = tls.pop("ssl")
        mode = _SSL_BOOLEANS.get(given.lower(), given.lower())
        if tls.setdefault("sslmode", mode) != mode:
            raise ValueError(f"the database URL has ssl={given} and sslmode={tls['sslmode']}")
    if "sslmode" in tls and tls["sslmode"] not in SSL_MODES:
        raise ValueError(
            f"sslmode={tls['sslmode']} in the database URL is not one of {', '.join(SSL_MODES)}"
        )
    return url.set(query=query), tls


def _tls_dsn(tls: dict[str, str]) -> dict[str, str]:
    """``connect_args`` that give asyncpg the TLS parameters as a connection string with no
    address (the keyword arguments SQLAlchemy adds name the server)."""
    return {"dsn": f"postgresql://?{urlencode(tls)}"} if tls else {}


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class PostgresConnector:
    """The PostgreSQL half of :class:`cueflow.sql.store.SqlStore`."""

    name = "postgresql"
    skip_locked = True
    autocommits = True

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        *,
        max_overflow: int | None = None,
        statement_timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        parsed, self.tls = tls_parameters(make_url(url).set(drivername="postgresql+asyncpg"))
        self.url = parsed
        self.statement_timeout = statement_timeout
        self.connect_timeout = connect_timeout
        idle_ms = str(int(max(2 * statement_timeout, 5.0) * 1000))
        self.server_settings = {**_KEEPALIVES, "idle_in_transaction_session_timeout": idle_ms}
        self.engine = create_async_engine(
            parsed,
            pool_size=pool_size,
            max_overflow=pool_size if max_overflow is None else max_overflow,
            pool_timeout=statement_timeout,
            pool_recycle=POOL_RECYCLE_SECONDS,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args={
                **_tls_dsn(self.tls),
                "timeout": connect_timeout,
                "command_timeout": statement_timeout,
                "server_settings": self.server_settings,
            },
        )
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        """The engine on the same pool, its connections without transactions."""
        pool = self.engine.sync_engine.pool
        event.listen(pool, "connect", _mark_idle)
        event.listen(pool, "checkin", _mark_idle)
        event.listen(pool, "checkout", self._ping)
        event.listen(self.engine.sync_engine, "handle_error", _discard_broken)

    def _ping(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        """Check a pooled connection idle for a while before use (SQLAlchemy's
        ``pool_pre_ping``, with its own short deadline): a dead one makes the pool discard every
        connection as old as it."""
        driver = dbapi_connection.driver_connection
        if driver.is_closed():  # the server closed it (a restart): known without asking
            raise exc.InvalidatePoolError("connection closed by the server")
        if time.monotonic() - record.info.get(_IDLE_SINCE, 0.0) < PING_AFTER_IDLE_SECONDS:
            return
        try:
            await_(driver.execute("SELECT 1", timeout=self.connect_timeout))
        except Exception as error:
            raise exc.InvalidatePoolError(f"connection check failed: {error!r}") from error

    @asynccontextmanager
    async def begin(self, single_statement: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction on a pooled connection; for a ``single_statement`` unit of work none
        (autocommit: PostgreSQL makes each statement atomic by itself), which saves the
        ``BEGIN`` and ``COMMIT`` round trips."""
        if not single_statement:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self.autocommit.connect() as conn:
            yield conn

    def insert(self, table: Any) -> Any:
        """PostgreSQL's ``INSERT`` with ``ON CONFLICT``."""
        return pg_insert(table)

    async def open(self) -> None:
        """Apply migrations, once across nodes (on a connection of its own whose statements
        may wait for another node's migration)."""
        migrator = create_async_engine(
            self.url,
            poolclass=NullPool,
            connect_args={**_tls_dsn(self.tls), "timeout": self.connect_timeout,
                          "command_timeout": MIGRATION_TIMEOUT_SECONDS},
        )  # fmt: skip
        try:
            async with migrator.connect() as conn:
                await conn.execute(text(f"SELECT pg_advisory_lock({_MIGRATION_LOCK})"))
                try:
                    await conn.run_sync(upgrade)
                    await conn.commit()
                finally:
                    await conn.execute(text(f"SELECT pg_advisory_unlock({_MIGRATION_LOCK})"))
                    await conn.commit()
        finally:
            await migrator.dispose()

    async def close(self) -> None:
        """Close the pool."""
        await self.engine.dispose()

    async def notify(self, conn: StoreConnection) -> None:
        """Queue a notification; PostgreSQL delivers it when the transaction commits."""
        await conn.execute(text(f"NOTIFY {CHANNEL}"))

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Until cancelled, hold one connection that LISTENs and calls ``callback`` on each
        notification; reopen it with backoff when it is lost, then call ``callback`` (notices
        sent meanwhile were missed)."""
        import asyncpg  # the postgres extra; open_store checked it is installed

        first, longest = LISTEN_BACKOFF_SECONDS
        delay = first
        while True:
            pulse.busy()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.url.set(drivername="postgresql")
                    .update_query_dict(self.tls)
                    .render_as_string(hide_password=False),
                    timeout=self.connect_timeout,
                    command_timeout=self.statement_timeout,
                    server_settings={**self.server_settings, "application_name": LISTENER_NAME},
                )
                delay = first
                await _hold(conn, callback, pulse)
            except Exception as error:
                log.warning("LISTEN connection lost (%r); reopening in up to %.1f s", error, delay)
            finally:
                if conn is not None:
                    conn.terminate()
            pulse.idle()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, longest)


async def _hold(conn: asyncpg.Connection, callback: Callable[[], None], pulse: Pulse) -> None:
    """LISTEN on ``conn`` and check it every :data:`LISTEN_CHECK_SECONDS` until it is lost
    (then raise)."""
    lost = asyncio.Event()
    conn.add_termination_listener(lambda _conn: lost.set())
    await conn.add_listener(CHANNEL, lambda *_: callback())
    callback()  # changes made while nobody here listened
    pulse.idle()
    while True:
        await _wait(lost, LISTEN_CHECK_SECONDS)
        if lost.is_set():
            raise ConnectionError("the LISTEN connection was closed")
        pulse.busy()
        await conn.execute("SELECT 1")
        pulse.idle()


_IDLE_SINCE = "cueflow_idle_since"


def _mark_idle(_dbapi_connection: Any, record: Any) -> None:
    """Note when a pooled connection was opened or given back."""
    record.info[_IDLE_SINCE] = time.monotonic()


def _discard_broken(context: Any) -> None:
    """A statement that failed because the database is gone, silent or restarting leaves its
    connection unusable (a timed-out query may still be running on it): have SQLAlchemy
    discard it, and the pool every connection opened before it."""
    if database_fault(context.original_exception) is not None:
        context.is_disconnect = True


async def _wait(event_: asyncio.Event, seconds: float) -> None:
    """Wait until ``event_`` is set or ``seconds`` passed (``asyncio.wait``, which, unlike
    ``wait_for`` on Python 3.11, never drops a cancellation)."""
    waiter = asyncio.ensure_future(event_.wait())
    try:
        await asyncio.wait({waiter}, timeout=seconds)
    finally:
        waiter.cancel()


def open_store(url: str, settings: Settings) -> SqlStore:
    """Build a PostgreSQL store for ``postgresql://user@host/db``; a URL it cannot use (a bad
    ``sslmode``) is a :class:`~cueflow.errors.PluginError` naming the reason, and so is a
    missing driver (asyncpg comes with the ``postgres`` extra: the plugin itself loads without
    it, so an app on SQLite never needs it)."""
    if importlib.util.find_spec("asyncpg") is None:
        raise PluginError(
            "postgresql:// needs the postgres extra (asyncpg): pip install 'cueflow[postgres]'"
        )
    try:
        connector = PostgresConnector(
            url,
            settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            statement_timeout=settings.database_statement_timeout_seconds,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
    except ValueError as exc:
        raise PluginError(f"postgresql store: {exc}") from exc
    attach(connector.engine.sync_engine.dialect, settings.secret_key)
    return SqlStore(connector)


@hookimpl
def cueflow_register_stores(register: Callable[[str, Any], None]) -> None:
    """Serve ``postgresql://`` (and ``postgres://``) URLs."""
    register("postgresql", open_store)
    register("postgres", open_store)


__all__ = ["PostgresConnector", "open_store", "tls_parameters"]
