"""Leases on claimed executions (contract §2.3.8, §4.3): ``POST /v1/executions/{id}/heartbeat``
extends one; a worker's own heartbeat keeps its claims too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import claimed_execution, due_execution
from tests.helpers import (
    LEASE,
    UNKNOWN_ID,
    assert_error,
    claimable,
    get_execution,
    report,
    worker_heartbeat,
)


async def heartbeat(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, **kwargs: Any
) -> httpx.Response:
    """``POST /v1/executions/{id}/heartbeat``; ``kwargs`` go to ``client.post``."""
    headers = {**auth, **kwargs.pop("headers", {})}
    return await client.post(f"/v1/executions/{execution_id}/heartbeat", headers=headers, **kwargs)


async def test_heartbeat_extends_the_lease(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    clock.advance(100)

    response = await heartbeat(client, auth, execution["id"], json={})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution["id"],
        "lease_extended_until": (clock.now() + timedelta(seconds=LEASE)).isoformat(),
        "acknowledged": True,
    }
    assert response.json()["lease_extended_until"] == "2026-01-05T12:21:40+00:00"


async def test_heartbeat_keeps_a_long_job_claimed(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    for _ in range(3):
        clock.advance(LEASE - 100)
        assert (await heartbeat(client, auth, execution["id"])).status_code == 200
        await engine.sweep()

    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "delivering"
    assert after["claimed_by_worker"] == "w1"


async def test_worker_heartbeats_keep_a_long_claim_alive(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    """The official cueapi-worker never sends execution heartbeats; its worker heartbeat (every
    30 s) is what keeps a long handler's claim (official-clients §4.3). CueAPI releases a claim
    only when the lease is over *and* the worker heartbeat is stale (contract §4.3)."""
    await worker_heartbeat(client, auth, "w1")
    execution = await claimed_execution(client, engine, clock, auth, "w1")
    for _ in range(40):  # a 20-minute handler
        clock.advance(30)
        assert (await worker_heartbeat(client, auth, "w1")).status_code == 200
        await engine.sweep()

    after = await get_execution(client, auth, execution["id"])
    assert (after["status"], after["claimed_by_worker"]) == ("delivering", "w1")
    assert await claimable(client, auth) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b""},
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        {"json": {}},
        {"json": {"anything": "ignored"}},
    ],
)
async def test_heartbeat_accepts_an_empty_or_any_body(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    kwargs: dict[str, Any],
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await heartbeat(client, auth, execution["id"], **kwargs)

    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] is True


async def test_heartbeat_of_a_pending_execution_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await heartbeat(client, auth, execution["id"])

    assert_error(
        response, 409, "execution_not_claiming", "Execution is not currently being claimed"
    )


async def test_heartbeat_after_the_outcome_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    await report(client, auth, execution["id"], success=True)

    response = await heartbeat(client, auth, execution["id"])

    assert_error(
        response, 409, "execution_not_claiming", "Execution is not currently being claimed"
    )


async def test_heartbeat_from_another_worker_is_403(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    other = await heartbeat(client, auth, execution["id"], headers={"X-Worker-Id": "w2"})
    same = await heartbeat(client, auth, execution["id"], headers={"X-Worker-Id": "w1"})

    assert_error(other, 403, "not_execution_owner", "Only the claiming worker can heartbeat")
    assert same.status_code == 200, same.text


@pytest.mark.parametrize("execution_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_heartbeat_of_an_unknown_execution_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await heartbeat(client, auth, execution_id)

    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_heartbeat_of_another_users_execution_is_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await heartbeat(client, other_auth, execution["id"])

    assert_error(response, 404, "execution_not_found", "Execution not found")
