"""Migrated PostgreSQL databases reused from test to test within one test process.

``CREATE DATABASE … TEMPLATE`` and ``DROP DATABASE`` cost 0.3 to 1 s each on the CI machine
(PostgreSQL copies and then removes every block of the template, system catalogs included), which
made them most of a PostgreSQL test's time. A database a test is done with is emptied instead
and kept for the next test of the same process:

1. every other connection to it is ended (as ``DROP DATABASE … WITH (FORCE)`` would), so nothing
   of the test (a pool, a server it started, an advisory lock, a ``LISTEN``) lives on;
2. its schema is compared with the template's (tables, columns, indexes, constraints,
   triggers, functions, sequences, the migration version): a test that changed the schema
   gets its database dropped, not reused;
3. every table but ``alembic_version`` is emptied in one transaction (``DELETE``, with
   foreign-key triggers off, which is far cheaper than ``TRUNCATE`` on tables this small) and
   sequences start again.

A database whose reset fails for any reason is dropped, and the next test gets a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

SCHEMA_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
  SELECT 'rel:' || c.relname || ':' || c.relkind::text || ':' || c.relnatts AS item
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public'
  UNION ALL
  SELECT 'col:' || c.relname || '.' || a.attname || ':' || format_type(a.atttypid, a.atttypmod)
         || ':' || a.attnotnull
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'con:' || conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
   WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'idx:' || indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL
  SELECT 'trg:' || tgname || ':' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'fn:' || p.proname || ':' || md5(p.prosrc) FROM pg_proc p
   WHERE p.pronamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'ver:' || version_num FROM alembic_version
) AS schema_items
"""
"""One hash of everything a test could change in the schema, compared with the template's."""

TABLES = """
SELECT quote_ident(tablename) FROM pg_tables
 WHERE schemaname = 'public' AND tablename <> 'alembic_version' ORDER BY tablename
"""
SEQUENCES = """
SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'
"""


class Reuse:
    """This process's idle migrated databases, each emptied and ready for a test."""

    def __init__(
        self,
        admin_url: str,
        url_of: Callable[[str], str],
        create: Callable[[], Awaitable[str]],
        drop: Callable[[str], Awaitable[None]],
    ) -> None:
        self.admin_url = admin_url
        self.url_of = url_of
        self._create = create
        self._drop = drop
        self._idle: list[str] = []
        self._fingerprint: str | None = None
        self._emptying: str | None = None

    async def take(self) -> str:
        """The URL of an empty migrated database: an idle one, or a new copy of the template."""
        if self._idle:
            return self.url_of(self._idle.pop())
        url = await self._create()
        if self._fingerprint is None:
            await self._learn(url)
        return url

    async def give_back(self, url: str) -> None:
        """Empty ``url``'s database and keep it for the next test, or drop it if that fails or
        the test changed its schema."""
        name = url.rsplit("/", 1)[1]
        try:
            reusable = await asyncio.wait_for(self._reset(name), timeout=30)
        except Exception:
            reusable = False
        if reusable:
            self._idle.append(name)
        else:
            await self._drop(url)

    async def close(self) -> None:
        """Drop every idle database (the end of the session)."""
        while self._idle:
            await self._drop(self.url_of(self._idle.pop()))

    async def _learn(self, url: str) -> None:
        """Read the template's schema fingerprint and the statement that empties its tables
        from a fresh copy."""
        import asyncpg

        conn = await asyncpg.connect(url)
        try:
            self._fingerprint = await conn.fetchval(SCHEMA_FINGERPRINT)
            tables = [row[0] for row in await conn.fetch(TABLES)]
            sequences = [row[0] for row in await conn.fetch(SEQUENCES)]
        finally:
            await conn.close()
        statements = ["SET LOCAL session_replication_role = replica"]
        statements += [f"DELETE FROM {table}" for table in tables]
        statements += [f"ALTER SEQUENCE {sequence} RESTART" for sequence in sequences]
        self._emptying = ";\n".join(statements)

    async def _reset(self, name: str) -> bool:
        import asyncpg

        if self._fingerprint is None or self._emptying is None:
            return False
        admin = await asyncpg.connect(self.admin_url)
        try:
            for _ in range(200):
                alive = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    name,
                )
                if not alive:
                    break
                await asyncio.sleep(0.01)
            else:
                return False
        finally:
            await admin.close()
        conn = await asyncpg.connect(self.url_of(name))
        try:
            if await conn.fetchval(SCHEMA_FINGERPRINT) != self._fingerprint:
                return False
            async with conn.transaction():
                await conn.execute(self._emptying)
        finally:
            await conn.close()
        return True
