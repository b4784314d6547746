"""A network cut between a node and PostgreSQL, the way a NAT or load-balancer failover cuts it:
for a while nothing passes, then new connections work and the old ones never answer again
(:class:`tests.tcp_proxy.TcpProxy`). Requests made during the cut answer 503 within their
deadlines instead of hanging; once the network is back, the API answers, cues fire and
``/health`` is healthy again, with no restart; a webhook due after the cut is delivered.

The figures of the same scenario with the default deadlines come from
``benchmarks/partition.py``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy.engine import make_url

from cueflow.api import create_app
from cueflow.engine import Engine
from tests.conftest import (
    drop_pg_database,
    eventually,
    fresh_pg_database,
    make_settings,
    pg_available,
    register,
)
from tests.helpers import assert_error, cue_body
from tests.tcp_proxy import TcpProxy
from tests.webhook_support import Receiver

pytestmark = pytest.mark.postgres

DEADLINES = {
    "database_statement_timeout_seconds": 1,
    "database_connect_timeout_seconds": 1,
    "scheduler_recheck_seconds": 1,
    "allow_private_webhooks": True,
}
"""Short deadlines, so the test takes seconds (the defaults are 10, 5 and 2 s)."""


async def test_after_a_network_cut_the_api_answers_and_cues_fire_again() -> None:
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    database = await fresh_pg_database()
    url = make_url(database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    proxied = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    engine = Engine(make_settings(proxied, **DEADLINES))
    await engine.start()
    transport = httpx.ASGITransport(app=create_app(engine, manage_engine=False))
    try:
        async with (
            Receiver() as receiver,
            httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as api,
        ):
            auth = await register(api)
            before = await _once_cue(api, auth, in_seconds=1)
            await eventually(lambda: _fired(api, auth, before["id"]), timeout=10)

            proxy.cut()
            during = await asyncio.wait_for(api.get("/v1/cues", headers=auth), timeout=15)
            assert_error(during, 503, "database_unavailable")
            assert during.headers["retry-after"]
            health = (await api.get("/health")).json()
            assert (health["status"], health["services"]["database"]) == ("degraded", "error")
            await asyncio.sleep(2)  # the cut lasts a little longer
            proxy.heal()

            async def answers() -> httpx.Response | None:
                response = await api.post("/v1/cues", json=_once_body(in_seconds=1), headers=auth)
                return response if response.status_code == 201 else None

            after = (await eventually(answers, timeout=20)).json()
            hook = _once_body(in_seconds=1, transport="webhook", callback={"url": receiver.url()})
            assert (await api.post("/v1/cues", json=hook, headers=auth)).status_code == 201
            await eventually(lambda: _fired(api, auth, after["id"]), timeout=20)
            await eventually(lambda: _async(receiver.to("/hook")), timeout=20)  # delivered

            async def healthy() -> bool:
                return (await api.get("/health")).json()["status"] == "healthy"

            await eventually(healthy, timeout=20)
    finally:
        try:
            await asyncio.wait_for(engine.close(), timeout=30)  # closing must not hang either
        finally:
            await proxy.close()
        await drop_pg_database(database)


def _once_body(in_seconds: float, **fields: object) -> dict[str, object]:
    at = datetime.now(UTC) + timedelta(seconds=in_seconds)
    return cue_body(schedule={"type": "once", "at": at.isoformat()}, **fields)


async def _async(value: object) -> object:
    return value


async def _once_cue(
    api: httpx.AsyncClient, auth: dict[str, str], in_seconds: float
) -> dict[str, object]:
    response = await api.post("/v1/cues", json=_once_body(in_seconds), headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _fired(api: httpx.AsyncClient, auth: dict[str, str], cue_id: object) -> bool:
    response = await api.get("/v1/executions", params={"cue_id": cue_id}, headers=auth)
    return response.status_code == 200 and bool(response.json()["executions"])
