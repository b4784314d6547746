"""PostgreSQL connection settings an operator writes: libpq's TLS parameters in the URL
(``sslmode=``, ``ssl=``) reach asyncpg instead of failing with ``unexpected keyword argument
'sslmode'``, and the pool's size comes from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from cueflow_postgres import tls_parameters
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cueflow.engine import Engine
from cueflow.errors import PluginError
from tests.conftest import drop_pg_database, fresh_pg_database, make_settings, pg_available


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.mark.parametrize(
    ("query", "tls"),
    [
        ("sslmode=disable", {"sslmode": "disable"}),
        ("sslmode=require", {"sslmode": "require"}),
        ("sslmode=verify-full&sslrootcert=/etc/ca.pem", {"sslmode": "verify-full",
                                                         "sslrootcert": "/etc/ca.pem"}),
        ("ssl=require", {"sslmode": "require"}),
        ("ssl=disable", {"sslmode": "disable"}),
        ("ssl=true", {"sslmode": "verify-full"}),  # as asyncpg's ssl=True
        ("ssl=false", {"sslmode": "disable"}),
        ("ssl=require&sslmode=require", {"sslmode": "require"}),
        ("", {}),
    ],
)  # fmt: skip
def test_tls_parameters_leave_the_url_in_libpq_names(query: str, tls: dict[str, str]) -> None:
    url = make_url(f"postgresql+asyncpg://app:secret@db.example:5433/app?{query}")
    stripped, found = tls_parameters(url)
    assert found == tls
    assert dict(stripped.query) == {}
    assert (stripped.host, stripped.port, stripped.database) == ("db.example", 5433, "app")


def test_other_query_parameters_stay_in_the_url() -> None:
    url = make_url("postgresql://h/db?sslmode=require&application_name=api")
    stripped, found = tls_parameters(url)
    assert found == {"sslmode": "require"}
    assert dict(stripped.query) == {"application_name": "api"}


@pytest.mark.parametrize("query", ["sslmode=sometimes", "ssl=maybe", "ssl=require&sslmode=disable"])
def test_a_tls_mode_cueflow_cannot_use_stops_start_up_with_its_reason(query: str) -> None:
    with pytest.raises(PluginError, match=r"postgresql store: .*ssl"):
        Engine(make_settings(f"postgresql://app@127.0.0.1/app?{query}"))


@pytest.mark.parametrize("query", ["sslmode=disable", "sslmode=prefer", "ssl=false"])
async def test_a_url_with_sslmode_connects_and_migrates(pg_url: str, query: str) -> None:
    engine = Engine(make_settings(f"{pg_url}?{query}"))
    try:
        await engine.open()  # migrations: a connection of their own
        await engine.account("tls@example.com")  # the pool
        async with engine.store.tx() as tx:
            ssl = await tx.conn.execute(  # type: ignore[attr-defined]
                text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            )
            assert ssl.scalar() is False  # the test server has no TLS: prefer falls back
    finally:
        await engine.close()


@pytest.mark.parametrize("query", ["sslmode=require", "ssl=require"])
async def test_sslmode_require_reaches_the_driver(pg_url: str, query: str) -> None:
    engine = Engine(make_settings(f"{pg_url}?{query}"))
    try:
        with pytest.raises(Exception, match="SSL") as refused:  # the server offers no TLS
            await engine.open()
        assert not isinstance(refused.value, TypeError)
    finally:
        await engine.close()


async def test_the_pool_size_and_overflow_come_from_the_settings(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUEFLOW_DATABASE_POOL_SIZE", "3")
    monkeypatch.setenv("CUEFLOW_DATABASE_MAX_OVERFLOW", "7")
    engine = Engine(make_settings(pg_url))
    assert engine.settings.database_pool_size == 3
    assert engine.settings.database_max_overflow == 7
    pool = engine.store.connector.engine.sync_engine.pool  # type: ignore[attr-defined]
    assert pool.size() == 3
    assert pool._max_overflow == 7
    await engine.close()


def test_the_pool_defaults_to_ten_and_ten() -> None:
    engine = Engine(make_settings("postgresql://app@127.0.0.1/app"))
    pool = engine.store.connector.engine.sync_engine.pool  # type: ignore[attr-defined]
    assert (pool.size(), pool._max_overflow) == (10, 10)
