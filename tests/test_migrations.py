"""The Alembic chain builds exactly the schema ``cueflow/sql/tables.py`` declares, on both
stores (a new column needs a migration, and the migration must match the table)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cueflow.migrate import upgrade
from cueflow.sql.tables import metadata


def _differences(connection: Connection) -> list[Any]:
    upgrade(connection)
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_migrated_schema_matches_the_table_declarations(empty_database_url: str) -> None:
    database_url = empty_database_url
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url)
        try:
            with engine.begin() as connection:
                assert _differences(connection) == []
        finally:
            engine.dispose()
        return
    url = make_url(database_url).set(drivername="postgresql+asyncpg")
    async_engine = create_async_engine(url)
    try:
        async with async_engine.begin() as connection:
            assert await connection.run_sync(_differences) == []
    finally:
        await async_engine.dispose()
