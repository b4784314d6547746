"""A poll that names its worker is that worker's heartbeat (cueflow, following CueAPI's Workers
document): ``X-Worker-Id`` on ``GET /v1/executions/claimable`` registers the worker or refreshes
its last heartbeat, as ``POST /v1/worker/heartbeat`` does, at most once per
``POLL_REFRESH_SECONDS``; it keeps the worker's handlers and does not extend its leases."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.workers import POLL_REFRESH_SECONDS, PollSightings
from tests.conftest import eventually
from tests.factories import claimed_execution, due_execution
from tests.helpers import (
    LEASE,
    START,
    assert_error,
    assert_validation_error,
    cue_body,
    get_execution,
    worker_heartbeat,
    zulu,
)


async def poll(
    client: httpx.AsyncClient, auth: dict[str, str], worker_id: str | None, **params: Any
) -> list[dict[str, Any]]:
    """``GET /v1/executions/claimable`` naming ``worker_id`` (if given); the items."""
    headers = {**auth, **({"X-Worker-Id": worker_id} if worker_id is not None else {})}
    response = await client.get("/v1/executions/claimable", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["executions"])


async def workers(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``GET /v1/workers`` by worker id."""
    response = await client.get("/v1/workers", headers=auth)
    assert response.status_code == 200, response.text
    return {w["worker_id"]: w for w in response.json()["workers"]}


async def test_a_poll_naming_its_worker_registers_it_as_active(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert await poll(client, auth, "poller-1") == []

    assert await workers(client, auth) == {
        "poller-1": {
            "worker_id": "poller-1",
            "last_heartbeat": START,
            "seconds_since_heartbeat": 0,
            "heartbeat_status": "active",
            "handlers": None,
            "registered_since": START,
        }
    }


async def test_a_poll_without_a_worker_id_registers_nobody(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await poll(client, auth, None)

    assert await workers(client, auth) == {}


async def test_polls_keep_a_worker_active_and_keep_its_handlers(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    await worker_heartbeat(client, auth, "w1", handlers=["report"])
    for _ in range(5):  # ten minutes of polling, no daemon heartbeat
        clock.advance(120)
        await poll(client, auth, "w1")

    [worker] = (await workers(client, auth)).values()
    assert worker["heartbeat_status"] == "active"
    assert worker["last_heartbeat"] == zulu(clock.now())
    assert worker["handlers"] == ["report"]
    assert worker["registered_since"] == START


async def test_a_long_poll_counts_as_a_heartbeat_while_it_waits(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    user = await engine.authenticate(auth["Authorization"])
    waiting = asyncio.create_task(poll(client, auth, "long-poller", wait=60))
    await eventually(lambda: _async(engine.long_polls.waiting(user.user_id) == 1))

    assert list(await workers(client, auth)) == ["long-poller"]
    clock.advance(61)
    assert await asyncio.wait_for(waiting, 10) == []


async def _async(value: bool) -> bool:
    return value


async def test_polls_write_the_worker_at_most_once_per_refresh_interval(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    await poll(client, auth, "w1")
    first = clock.now()
    clock.advance(POLL_REFRESH_SECONDS - 1)
    await poll(client, auth, "w1")  # within the interval: read only
    assert (await workers(client, auth))["w1"]["last_heartbeat"] == zulu(first)

    clock.advance(1)
    await poll(client, auth, "w1")  # the interval is over: written again
    assert (await workers(client, auth))["w1"]["last_heartbeat"] == zulu(clock.now())

    clock.advance(60)
    await worker_heartbeat(client, auth, "w1", handlers=["a"])
    beat = clock.now()
    clock.advance(1)
    await poll(client, auth, "w1")  # the daemon heartbeat just wrote the row
    assert (await workers(client, auth))["w1"]["last_heartbeat"] == zulu(beat)


async def test_a_deleted_worker_is_registered_again_by_its_next_poll(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await poll(client, auth, "w1")
    assert (await client.delete("/v1/workers/w1", headers=auth)).status_code == 204

    await poll(client, auth, "w1")  # within the refresh interval, yet the row is gone

    assert list(await workers(client, auth)) == ["w1"]


async def test_a_polling_worker_is_not_another_accounts_worker(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    await poll(client, auth, "shared")

    assert await workers(client, other_auth) == {}
    await poll(client, other_auth, "shared")
    assert list(await workers(client, other_auth)) == ["shared"]


async def test_a_polling_worker_silences_the_no_active_workers_warning(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await poll(client, auth, "w1")

    response = await client.post("/v1/cues", json=cue_body(), headers=auth)

    assert response.status_code == 201, response.text
    assert response.json()["warning"] is None


async def test_polls_do_not_extend_the_leases_the_worker_holds(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    """The Workers document makes the claim timeout the longest a claim is held without an
    outcome; polling keeps the worker listed, not its claims (heartbeats extend those)."""
    execution = await claimed_execution(client, engine, clock, auth, "w1")
    for _ in range(LEASE // 60 + 1):
        clock.advance(60)
        await poll(client, auth, "w1")
        await engine.sweep()

    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "pending"
    assert after["claimed_by_worker"] is None
    assert (await workers(client, auth))["w1"]["heartbeat_status"] == "active"


async def test_a_poll_still_lists_work_while_registering_its_worker(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await due_execution(client, engine, clock, auth)

    items = await poll(client, auth, "w1")

    assert [i["execution_id"] for i in items] == [execution["id"]]
    assert list(await workers(client, auth)) == ["w1"]


@pytest.mark.parametrize("worker_id", ["", "w" * 256])
async def test_a_poll_with_a_bad_worker_id_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], worker_id: str
) -> None:
    response = await client.get(
        "/v1/executions/claimable", headers={**auth, "X-Worker-Id": worker_id}
    )

    assert_validation_error(response, "header.X-Worker-Id")
    assert await workers(client, auth) == {}


async def test_a_read_key_may_poll_but_not_name_a_worker(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    keys = {}
    for scope in ("read", "worker"):
        created = await client.post("/v1/auth/keys", json={"scope": scope}, headers=auth)
        assert created.status_code == 201, created.text
        keys[scope] = {"Authorization": f"Bearer {created.json()['api_key']}"}

    refused = await client.get(
        "/v1/executions/claimable", headers={**keys["read"], "X-Worker-Id": "w1"}
    )

    assert_error(refused, 403, "insufficient_scope")
    assert await poll(client, keys["read"], None) == []
    assert await workers(client, auth) == {}
    assert await poll(client, keys["worker"], "w1") == []
    assert list(await workers(client, auth)) == ["w1"]


def test_sightings_forget_the_worker_written_longest_ago_past_their_capacity() -> None:
    sightings = PollSightings(refresh_seconds=5, capacity=2)
    now = FakeClock().now()
    assert sightings.claim_write("u", "a", now)
    assert sightings.claim_write("u", "b", now)
    assert not sightings.claim_write("u", "a", now)
    assert sightings.claim_write("u", "c", now)  # "a" was written longest ago: forgotten
    assert sightings.claim_write("u", "a", now)
    assert not sightings.claim_write("u", "c", now + timedelta(seconds=4))
    assert sightings.claim_write("u", "c", now + timedelta(seconds=5))
