"""A database that cannot do the work answers 503 ``database_unavailable`` with ``Retry-After``
(never 500), and ``/health`` says so: PostgreSQL unreachable, SQLite out of disk space (SQLite's
own ``max_page_count`` limit gives the very error a full disk gives)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import drop_pg_database, fresh_pg_database, make_settings, pg_available
from tests.conftest import register as register_user
from tests.helpers import assert_error, cue_body
from tests.tcp_proxy import TcpProxy


@asynccontextmanager
async def api(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on ``engine``'s app (the engine opened, no background loops)."""
    await engine.open()
    transport = httpx.ASGITransport(app=create_app(engine, manage_engine=False))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
            yield c
    finally:
        await engine.close()


def assert_unavailable(response: httpx.Response) -> None:
    """503 ``database_unavailable`` in the contract's envelope, with a ``Retry-After``."""
    assert_error(response, 503, "database_unavailable")
    assert int(response.headers["retry-after"]) > 0


async def test_a_full_sqlite_disk_answers_503_and_health_reports_the_failed_writes(
    tmp_path: Path, clock: FakeClock
) -> None:
    engine = Engine(make_settings(f"sqlite:///{tmp_path / 'full.db'}"), clock=clock)
    async with api(engine) as client:
        auth = await register_user(client)
        await _limit_pages(engine, 1)  # no room for one more page, as on a full disk

        response = await client.post("/v1/cues", json=_big_cue(), headers=auth)

        assert_unavailable(response)
        assert (await client.get("/v1/cues", headers=auth)).status_code == 200  # reads work
        health = (await client.get("/health")).json()
        assert health["status"] == "degraded"
        assert health["services"]["database"] == "error"
        status = await client.get("/status")
        assert status.json() == {
            "status": "degraded",
            "reason": "database failing: database or disk is full",
        }

        await _limit_pages(engine, 1_000_000)  # space freed
        assert (await client.post("/v1/cues", json=_big_cue(), headers=auth)).status_code == 201
        assert (await client.get("/health")).json()["services"]["database"] == "ok"


async def _limit_pages(engine: Engine, pages: int) -> None:
    async with engine.store.tx() as tx:
        await tx.conn.execute(text(f"PRAGMA max_page_count = {pages}"))


def _big_cue() -> dict[str, object]:
    return cue_body(payload={"task": "report", "blob": "x" * 20_000})


@pytest.mark.postgres
async def test_an_unreachable_postgresql_answers_503_and_the_api_comes_back_with_it(
    clock: FakeClock,
) -> None:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    database = await fresh_pg_database()
    url = make_url(database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    settings = make_settings(proxied, database_connect_timeout_seconds=2)
    try:
        async with api(Engine(settings, clock=clock)) as client:
            auth = await register_user(client)
            await proxy.down()  # the database is gone: connections reset, new ones refused

            assert_unavailable(await client.get("/v1/cues", headers=auth))
            assert_unavailable(await client.post("/v1/cues", json=cue_body(), headers=auth))
            health = await client.get("/health")
            assert health.status_code == 200
            assert health.json()["services"]["database"] == "error"
            status = await client.get("/status")
            assert status.status_code == 503
            assert int(status.headers["retry-after"]) > 0

            await proxy.start(port)  # back: the pool replaces its dead connections
            assert (await client.get("/v1/cues", headers=auth)).status_code == 200
            assert (await client.post("/v1/cues", json=cue_body(), headers=auth)).status_code == 201
            assert (await client.get("/health")).json()["services"]["database"] == "ok"
    finally:
        await proxy.close()
        await drop_pg_database(database)
