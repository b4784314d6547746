"""Fixtures: an engine over each store, a fake clock, and an HTTP client on the ASGI app.

Every test that takes ``engine`` (or ``client``) runs twice, on SQLite and on PostgreSQL.
PostgreSQL tests skip when the server is unreachable, unless ``CUEFLOW_REQUIRE_POSTGRES=1``
(set by ``.ci/run``), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.config import Settings
from cueflow.engine import Engine

PG_ADMIN_URL = os.environ.get("CUEFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    from sqlalchemy.engine import make_url

    url = make_url(PG_ADMIN_URL)
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=3):
            return True
    except OSError:
        return False


_PG = None


def pg_available() -> bool:
    """Whether PostgreSQL answers (cached); fails the run when it is required but down."""
    global _PG
    if _PG is None:
        _PG = _pg_available()
    if not _PG and os.environ.get("CUEFLOW_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required but unreachable at {PG_ADMIN_URL}")
    return _PG


async def fresh_pg_database() -> str:
    """Create an empty database for one test and return its URL."""
    import asyncpg

    name = f"cueflow_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def drop_pg_database(url: str) -> None:
    """Drop a database made by :func:`fresh_pg_database`."""
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cueflow.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
def clock() -> FakeClock:
    """A clock tests move by hand."""
    return FakeClock()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test engine (no .env file, fast sweeps)."""
    return Settings(_env_file=None, database_url=database_url, **overrides)  # type: ignore[call-arg]


@pytest.fixture
async def engine(database_url: str, clock: FakeClock) -> AsyncIterator[Engine]:
    """An opened engine with no background tasks: tests call ``fire_due``/``sweep``."""
    eng = Engine(make_settings(database_url), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app (in process, no background loops)."""
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
        yield c


async def register(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    """Register a user; returns auth headers."""
    email = email or f"user-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post("/v1/auth/register", json={"email": email})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['api_key']}"}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    """Auth headers of a fresh user."""
    return await register(client)


@pytest.fixture
async def other_auth(client: httpx.AsyncClient) -> dict[str, str]:
    """Auth headers of a second user."""
    return await register(client)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """Await ``check()`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def official_server(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Any:
    """A real ``cueflow serve`` (one per store and test module) for the official clients."""
    from tests.official_clients import CLIENT_SERVER_ENV
    from tests.server import cueflow_server

    workdir = tmp_path_factory.mktemp("official")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'cueflow.db'}"
    else:
        if not pg_available():
            pytest.skip("PostgreSQL is not reachable")
        url = asyncio.run(fresh_pg_database())
    try:
        with cueflow_server(url, workdir, **CLIENT_SERVER_ENV) as base:
            yield base
    finally:
        if request.param != "sqlite":
            asyncio.run(drop_pg_database(url))
