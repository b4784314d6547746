"""Fixtures: an engine over each store, a fake clock, and an HTTP client on the ASGI app.

Every test that takes ``engine`` (or ``client``) runs twice, on SQLite and on PostgreSQL.
PostgreSQL tests skip when the server is unreachable, unless ``CUEFLOW_REQUIRE_POSTGRES=1``
(set by ``.ci/run``), which turns that into a failure.

Each test gets a database of its own, already migrated: a copy of a template that each test
process migrates once (``CREATE DATABASE … TEMPLATE`` on PostgreSQL, a file copy on SQLite),
so a test pays neither the migrations nor their imports. On PostgreSQL, a database a test is
done with is emptied and given to the process's next test (:mod:`tests.pg_reuse`), which
costs a fraction of a copy and a drop. ``empty_database_url`` is the
unmigrated kind, for the tests of the migrations themselves.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.config import Settings
from cueflow.engine import Engine
from tests.pg_reuse import Reuse

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


_TEMPLATES: dict[str, str] = {}
"""This test process's migrated templates: ``"postgresql"`` → database name, ``"sqlite"`` →
file path (made on first use, removed at the end of the session)."""


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _migrated(url: str) -> None:
    """Open an engine on ``url`` once (it migrates) and close it, leaving no connection."""
    engine = Engine(make_settings(url), clock=FakeClock())
    await engine.open()
    await engine.close()


async def _pg_template() -> str:
    """This process's migrated PostgreSQL template database (made on first use)."""
    name = _TEMPLATES.get("postgresql")
    if name is None:
        name = f"cueflow_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        await _create_pg_database(name)
        await _migrated(_pg_url(name))
        _TEMPLATES["postgresql"] = name
    return name


async def _create_pg_database(name: str, template: str | None = None) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        like = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{like}')
    finally:
        await conn.close()


async def fresh_pg_database(migrated: bool = True) -> str:
    """Create a database for one test, migrated unless ``migrated`` is false; its URL."""
    name = f"cueflow_t_{uuid.uuid4().hex[:12]}"
    await _create_pg_database(name, await _pg_template() if migrated else None)
    return _pg_url(name)


async def drop_pg_database(url: str) -> None:
    """Drop a database made by :func:`fresh_pg_database`."""
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def fresh_sqlite_database(directory: Path) -> str:
    """A migrated SQLite database file in ``directory`` (a copy of this process's template)."""
    template = _TEMPLATES.get("sqlite")
    if template is None:
        template = str(Path(tempfile.mkdtemp(prefix="cueflow-tmpl-")) / "template.db")
        await _migrated(f"sqlite:///{template}")
        _TEMPLATES["sqlite"] = template
    target = directory / "cueflow.db"
    shutil.copyfile(template, target)
    return f"sqlite:///{target}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove this process's templates."""
    if "sqlite" in _TEMPLATES:
        shutil.rmtree(Path(_TEMPLATES.pop("sqlite")).parent, ignore_errors=True)
    asyncio.run(_REUSE.close())
    if "postgresql" in _TEMPLATES:
        asyncio.run(drop_pg_database(_pg_url(_TEMPLATES.pop("postgresql"))))


_REUSE = Reuse(PG_ADMIN_URL, _pg_url, fresh_pg_database, drop_pg_database)
"""This process's emptied PostgreSQL databases, reused by :func:`database_url`."""


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """An empty database of each kind, migrated to the newest schema."""
    if request.param == "sqlite":
        yield await fresh_sqlite_database(tmp_path)
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await _REUSE.take()
    try:
        yield url
    finally:
        await _REUSE.give_back(url)


@pytest.fixture(params=["sqlite", "postgresql"])
async def empty_database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A fresh, empty database of each kind (no migration has run)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cueflow.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database(migrated=False)
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
