"""Claims (contract §2.3.6, §4.3): ``POST /v1/executions/{id}/claim`` takes one execution,
``POST /v1/executions/claim`` the oldest due one; each gives a lease to one worker only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import claimed_execution, due_execution, fire, make_once_cue, make_worker_cue
from tests.helpers import (
    LEASE,
    NONE_AVAILABLE,
    NOT_AVAILABLE,
    UNKNOWN_ID,
    assert_error,
    assert_validation_error,
    claim,
    claim_next,
    executions_of,
    get_execution,
    zulu,
)


async def test_claim_returns_lease_and_marks_execution_delivering(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, auth, execution["id"], "worker-7")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "claimed": True,
        "execution_id": execution["id"],
        "lease_seconds": LEASE,
        "id": execution["id"],
        "status": "claimed",
        "claimed_at": zulu(clock.now()),
    }
    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "delivering"
    assert after["attempts"] == 1
    assert after["claimed_by_worker"] == "worker-7"
    assert after["started_at"] == zulu(clock.now())


@pytest.mark.parametrize("second_worker", ["w1", "w2"])
async def test_second_claim_is_rejected_with_409(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    second_worker: str,
):
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    response = await claim(client, auth, execution["id"], second_worker)

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)
    after = await get_execution(client, auth, execution["id"])
    assert (after["claimed_by_worker"], after["attempts"]) == ("w1", 1)


async def test_claiming_another_users_execution_is_409_not_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, other_auth, execution["id"])

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)
    assert (await get_execution(client, auth, execution["id"]))["status"] == "pending"


@pytest.mark.parametrize("execution_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_claiming_an_unknown_execution_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await claim(client, auth, execution_id)

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {}}, "body.worker_id"),
        ({"json": {"worker_id": ""}}, "body.worker_id"),
        ({"json": {"worker_id": "w" * 256}}, "body.worker_id"),
        ({"json": {"worker": "w1"}}, "body.worker_id"),
        ({}, "body"),
    ],
    ids=["empty-object", "empty-id", "long-id", "misnamed", "no-body"],
)
async def test_claim_without_a_valid_worker_id_is_rejected_with_422(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    kwargs: dict[str, Any],
    field: str,
):
    execution = await due_execution(client, engine, clock, auth)

    specific = await client.post(f"/v1/executions/{execution['id']}/claim", headers=auth, **kwargs)
    next_one = await client.post("/v1/executions/claim", headers=auth, **kwargs)

    for response in (specific, next_one):
        assert_validation_error(response, field)
    assert (await get_execution(client, auth, execution["id"]))["status"] == "pending"


async def test_claim_with_empty_object_names_the_missing_worker_id(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await client.post("/v1/executions/claim", json={}, headers=auth)

    error = assert_validation_error(response, "body.worker_id")
    assert error["message"] == "body.worker_id: Field required"


async def test_worker_id_of_255_characters_can_claim(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, auth, execution["id"], "w" * 255)

    assert response.status_code == 200, response.text


async def test_claim_ignores_unknown_body_fields(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await client.post(
        f"/v1/executions/{execution['id']}/claim",
        json={"worker_id": "w1", "handlers": ["x"], "lease": 5},
        headers=auth,
    )

    assert response.status_code == 200, response.text


async def test_claim_next_picks_the_oldest_due_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    # The older run (12:01) is created after the newer one (12:02): order is by scheduled_for.
    early = await make_once_cue(client, auth, clock, in_seconds=60, name="early")
    late = await make_once_cue(client, auth, clock, in_seconds=120, name="late")
    await client.patch(f"/v1/cues/{early['id']}", json={"status": "paused"}, headers=auth)
    assert await fire(engine, clock, 120) == 1
    await client.patch(f"/v1/cues/{early['id']}", json={"status": "active"}, headers=auth)
    assert await engine.fire_due() == 1
    [early_run] = await executions_of(client, auth, early["id"])
    [late_run] = await executions_of(client, auth, late["id"])
    assert early_run["scheduled_for"] < late_run["scheduled_for"]
    assert early_run["created_at"] >= late_run["created_at"]

    first = await claim_next(client, auth, "w1")
    second = await claim_next(client, auth, "w2")
    third = await claim_next(client, auth, "w3")

    assert first.json() == {
        "claimed": True,
        "execution_id": early_run["id"],
        "lease_seconds": LEASE,
        "id": early_run["id"],
        "status": "claimed",
        "claimed_at": zulu(clock.now()),
    }
    assert second.json()["execution_id"] == late_run["id"]
    assert_error(third, 409, "claim_failed", NONE_AVAILABLE)
    assert (await get_execution(client, auth, early_run["id"]))["claimed_by_worker"] == "w1"


async def test_claim_next_with_nothing_due_is_409(client: httpx.AsyncClient, auth: dict[str, str]):
    await make_worker_cue(client, auth)

    response = await claim_next(client, auth)

    assert_error(response, 409, "claim_failed", NONE_AVAILABLE)


async def test_claim_next_never_takes_another_users_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    await due_execution(client, engine, clock, other_auth)

    response = await claim_next(client, auth)

    assert_error(response, 409, "claim_failed", NONE_AVAILABLE)
