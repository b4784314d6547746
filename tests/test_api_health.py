"""``GET /health``, ``GET /status`` and ``GET /v1/info`` (contract §2.6), on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cueflow import __version__
from cueflow.api import mount
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import register
from tests.factories import claimed_execution, due_execution, manual_run
from tests.helpers import OFFSET_DATETIME
from tests.webhook_support import Receiver, api, open_engine
from tests.webhook_support import create_cue as create_webhook_cue

QUEUE_KEYS = {"pending_outbox", "stale_executions", "pending_retries", "pending_worker_claims"}


@pytest.fixture
def broken_database(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every store transaction fails, as when the database is down."""

    @asynccontextmanager
    async def unreachable() -> Any:
        raise ConnectionRefusedError("database is down")
        yield

    monkeypatch.setattr(engine.store, "tx", unreachable)
    yield


@asynccontextmanager
async def running(engine: Engine) -> Any:
    """The engine with its background loops started."""
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()


async def test_health_answers_without_credentials(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    async with running(engine):
        response = await client.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "version", "timestamp", "services", "queue"}
    assert body["status"] == "healthy"
    assert body["version"] == "1.0.0"
    assert OFFSET_DATETIME.match(body["timestamp"])
    loops = {"scheduler", "sweeper", "dispatcher"} | (
        {"listener"} if engine.store.name == "postgresql" else set()
    )
    assert body["services"] == dict.fromkeys({"database", *loops}, "ok")
    assert body["queue"] == dict.fromkeys(QUEUE_KEYS, 0)


async def test_health_counts_the_queue(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await due_execution(client, engine, clock, auth)
    await claimed_execution(client, engine, clock, auth, "w")
    clock.advance(301)
    queue = (await client.get("/health")).json()["queue"]
    assert queue["stale_executions"] == 1
    assert queue["pending_worker_claims"] >= 1
    assert queue["pending_outbox"] == 0
    assert queue["pending_retries"] == 0


async def test_health_counts_pending_push_deliveries(database_url: str, clock: FakeClock) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await register(client)
        cue = await create_webhook_cue(client, auth, clock, receiver.url())
        await manual_run(client, auth, cue["id"])
        queue = (await client.get("/health")).json()["queue"]
    assert queue["pending_outbox"] == 1
    assert queue["pending_worker_claims"] == 0


async def test_health_is_degraded_when_the_scheduler_is_not_running(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/health")).json()
    assert body["status"] == "degraded"
    assert body["services"] == {"database": "ok", "scheduler": "stale"}


@pytest.mark.usefixtures("broken_database")
async def test_health_still_answers_200_when_the_database_is_down(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["services"]["database"] == "error"
    assert body["queue"] == {}


async def test_status_is_healthy_when_everything_runs(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    async with running(engine):
        response = await client.get("/status")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


async def test_status_is_degraded_without_a_scheduler(client: httpx.AsyncClient) -> None:
    response = await client.get("/status")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "reason": "scheduler stale"}


@pytest.mark.usefixtures("broken_database")
async def test_status_is_503_down_when_the_database_is_unreachable(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/status")
    assert response.status_code == 503
    assert response.json() == {"status": "down", "reason": "database unreachable"}


async def test_info_has_exactly_four_keys(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/info")
    assert response.status_code == 200
    assert response.json() == {
        "version": __version__,
        "authorization_backend": "SameTenantAuthorizationBackend",
        "authentication_paths": {
            "per_user_api_key": True,
            "internal_token_with_on_behalf_of": False,
        },
        "disabled_primitives": [],
    }


async def test_probes_are_not_rate_limited(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/status", "/v1/info"):
        assert "x-ratelimit-limit" not in (await client.get(path)).headers


async def test_a_host_app_mounting_cueflow_keeps_its_own_probes(engine: Engine) -> None:
    app = FastAPI()

    @app.get("/health")
    async def own_health() -> dict[str, str]:
        return {"mine": "yes"}

    mount(app, engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://host.test") as client:
        assert (await client.get("/health")).json() == {"mine": "yes"}
        assert (await client.get("/status")).status_code == 404
        assert (await client.get("/v1/info")).json()["version"] == __version__
