"""The worker registry (contract §2.4): ``POST /v1/worker/heartbeat`` records a worker and its
handlers, ``GET /v1/workers`` lists them with their heartbeat status, ``DELETE
/v1/workers/{id}`` forgets one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import claimed_execution
from tests.helpers import (
    START,
    Z_DATETIME,
    assert_error,
    assert_validation_error,
    get_execution,
    worker_heartbeat,
)


async def list_workers(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """``GET /v1/workers`` that must succeed; returns the items."""
    response = await client.get("/v1/workers", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"workers"}
    return body["workers"]


# POST /v1/worker/heartbeat ---------------------------------------------------------------------
async def test_worker_heartbeat_acknowledges_with_server_time(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await worker_heartbeat(client, auth, "w1", handlers=["report"])

    assert response.status_code == 200, response.text
    assert response.json() == {"acknowledged": True, "server_time": START}


async def test_worker_heartbeat_upserts_one_row_and_replaces_handlers(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1", handlers=["a", "b"])
    clock.advance(10)
    await worker_heartbeat(client, auth, "w1", handlers=["c"])

    [worker] = await list_workers(client, auth)

    assert worker["handlers"] == ["c"]
    assert worker["last_heartbeat"] == "2026-01-05T12:00:10Z"
    assert worker["registered_since"] == START

    clock.advance(10)
    await worker_heartbeat(client, auth, "w1")
    [worker] = await list_workers(client, auth)
    assert worker["handlers"] is None


async def test_worker_heartbeat_ignores_unknown_fields(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await worker_heartbeat(client, auth, "w1", version="1.2.3")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.worker_id"),
        ({"handlers": ["a"]}, "body.worker_id"),
        ({"worker_id": "w" * 256}, "body.worker_id"),
        ({"worker_id": "w1", "handlers": "a"}, "body.handlers"),
    ],
)
async def test_worker_heartbeat_with_bad_body_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str
):
    response = await client.post("/v1/worker/heartbeat", json=body, headers=auth)

    assert_validation_error(response, field)


# GET /v1/workers -------------------------------------------------------------------------------
async def test_list_workers_shape(client: httpx.AsyncClient, auth: dict[str, str]):
    await worker_heartbeat(client, auth, "w1", handlers=["report"])

    [worker] = await list_workers(client, auth)

    assert worker == {
        "worker_id": "w1",
        "last_heartbeat": START,
        "seconds_since_heartbeat": 0,
        "heartbeat_status": "active",
        "handlers": ["report"],
        "registered_since": START,
    }


async def test_list_workers_is_empty_without_total(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.get("/v1/workers", headers=auth)

    assert response.json() == {"workers": []}


@pytest.mark.parametrize(
    ("silent", "status"),
    [
        (0, "active"),
        (179, "active"),
        (180, "stale"),
        (899, "stale"),
        (900, "dead"),
        (86_400, "dead"),
    ],
)
async def test_heartbeat_status_follows_the_clock(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock, silent: int, status: str
):
    await worker_heartbeat(client, auth, "w1")
    clock.advance(silent)

    [worker] = await list_workers(client, auth)

    assert worker["heartbeat_status"] == status
    assert worker["seconds_since_heartbeat"] == silent
    assert Z_DATETIME.match(worker["last_heartbeat"])


async def test_list_workers_is_newest_heartbeat_first(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1")
    clock.advance(5)
    await worker_heartbeat(client, auth, "w2")
    clock.advance(5)
    await worker_heartbeat(client, auth, "w3")

    before = [w["worker_id"] for w in await list_workers(client, auth)]
    clock.advance(5)
    await worker_heartbeat(client, auth, "w1")
    after = [w["worker_id"] for w in await list_workers(client, auth)]

    assert before == ["w3", "w2", "w1"]
    assert after == ["w1", "w3", "w2"]


# DELETE /v1/workers/{id} -----------------------------------------------------------------------
async def test_delete_worker_returns_204_then_404(client: httpx.AsyncClient, auth: dict[str, str]):
    await worker_heartbeat(client, auth, "w1")

    deleted = await client.delete("/v1/workers/w1", headers=auth)
    again = await client.delete("/v1/workers/w1", headers=auth)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(again, 404, "worker_not_found", "Worker not found")
    assert await list_workers(client, auth) == []


async def test_delete_unknown_worker_is_404(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.delete("/v1/workers/never-seen", headers=auth)

    assert_error(response, 404, "worker_not_found", "Worker not found")


async def test_another_users_worker_is_invisible_and_404(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    await worker_heartbeat(client, auth, "shared-name")

    listed = await list_workers(client, other_auth)
    deleted = await client.delete("/v1/workers/shared-name", headers=other_auth)

    assert listed == []
    assert_error(deleted, 404, "worker_not_found", "Worker not found")
    assert [w["worker_id"] for w in await list_workers(client, auth)] == ["shared-name"]


async def test_same_worker_id_is_separate_per_user(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1", handlers=["mine"])
    clock.advance(1000)
    await worker_heartbeat(client, other_auth, "w1", handlers=["theirs"])

    [mine] = await list_workers(client, auth)
    [theirs] = await list_workers(client, other_auth)

    assert (mine["handlers"], mine["heartbeat_status"]) == (["mine"], "dead")
    assert (theirs["handlers"], theirs["heartbeat_status"]) == (["theirs"], "active")


async def test_deleting_a_worker_leaves_its_claims_alone(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await worker_heartbeat(client, auth, "w1")
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    assert (await client.delete("/v1/workers/w1", headers=auth)).status_code == 204

    after = await get_execution(client, auth, execution["id"])
    assert (after["status"], after["claimed_by_worker"]) == ("delivering", "w1")
