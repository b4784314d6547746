"""Runs started by hand (contract §2.2.8, §2.3.9): ``POST /v1/cues/{id}/fire`` and
``POST /v1/executions/{id}/replay``, on both stores."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import register
from tests.factories import (
    due_execution,
    make_paused_cue,
    make_worker_cue,
    missed_execution,
    once_schedule,
    reported_execution,
)
from tests.helpers import (
    OFFSET_DATETIME,
    assert_error,
    assert_validation_error,
    claim,
    claimable,
    executions_of,
    get_cue,
    get_execution,
)
from tests.webhook_support import Receiver, api, open_engine
from tests.webhook_support import create_cue as create_webhook_cue

RUN_KEYS = {"id", "cue_id", "scheduled_for", "status", "triggered_by"}


async def fire(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, **kwargs: Any
) -> httpx.Response:
    """``POST /v1/cues/{id}/fire``."""
    return await client.post(f"/v1/cues/{cue_id}/fire", headers=auth, **kwargs)


def parse(value: str) -> datetime:
    """A ``+00:00`` or ``Z`` datetime string."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def claimable_ids(client: httpx.AsyncClient, auth: dict[str, str]) -> list[str]:
    """The execution ids ``GET /v1/executions/claimable`` lists."""
    return [item["execution_id"] for item in await claimable(client, auth)]


# fire ------------------------------------------------------------------------------------------
async def test_fire_answers_the_contract_shape_and_creates_a_claimable_run(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    response = await fire(client, auth, cue["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == RUN_KEYS | {"payload"}  # payload: cueflow extension
    assert body["cue_id"] == cue["id"]
    assert body["status"] == "pending"
    assert body["triggered_by"] == "manual_fire"
    assert OFFSET_DATETIME.match(body["scheduled_for"]), body
    assert parse(body["scheduled_for"]) == clock.now()
    execution = await get_execution(client, auth, body["id"])
    assert execution["triggered_by"] == "manual_fire"
    assert execution["status"] == "pending"
    assert await claimable_ids(client, auth) == [body["id"]]
    assert (await get_cue(client, auth, cue["id"]))["fired_count"] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"json": {}},
        {"json": {"payload_override": {"x": 1}, "merge_strategy": "replace", "extra": True}},
        {"json": {"send_at": None}},
        {"content": b"", "headers": {"Content-Type": "application/json"}},
    ],
    ids=["no-body", "empty-object", "unknown-fields", "null-send-at", "empty-json-body"],
)
async def test_fire_body_is_optional_and_unknown_fields_are_ignored(
    client: httpx.AsyncClient, auth: dict[str, str], kwargs: dict[str, Any]
) -> None:
    cue = await make_worker_cue(client, auth)
    headers = {**auth, **kwargs.pop("headers", {})}
    response = await client.post(f"/v1/cues/{cue['id']}/fire", headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    assert response.json()["triggered_by"] == "manual_fire"


async def test_send_at_in_the_past_means_now(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    past = (clock.now() - timedelta(hours=3)).isoformat()
    response = await fire(client, auth, cue["id"], json={"send_at": past})
    assert response.status_code == 200, response.text
    assert parse(response.json()["scheduled_for"]) == clock.now()


async def test_future_send_at_is_honoured_for_worker_cues(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    later = clock.now() + timedelta(minutes=2)
    response = await fire(client, auth, cue["id"], json={"send_at": later.isoformat()})
    assert response.status_code == 200, response.text
    run = response.json()
    assert parse(run["scheduled_for"]) == later
    assert run["scheduled_for"].endswith("+00:00")
    assert await claimable_ids(client, auth) == []
    assert_error(await claim(client, auth, run["id"]), 409, "claim_failed")
    clock.advance(120)
    assert await claimable_ids(client, auth) == [run["id"]]
    assert (await claim(client, auth, run["id"])).status_code == 200


async def test_send_at_without_offset_is_utc(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    later = clock.now() + timedelta(minutes=5)
    naive = later.replace(tzinfo=None).isoformat()
    response = await fire(client, auth, cue["id"], json={"send_at": naive})
    assert parse(response.json()["scheduled_for"]) == later


async def test_malformed_send_at_is_a_validation_error(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    response = await fire(client, auth, cue["id"], json={"send_at": "next tuesday"})
    assert_validation_error(response, "body.send_at")


async def test_non_object_body_is_a_validation_error(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    assert_error(await fire(client, auth, cue["id"], json=[1]), 422, "validation_error")


async def test_any_cue_status_can_be_fired(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    cue = await make_paused_cue(client, auth)
    response = await fire(client, auth, cue["id"])
    assert response.status_code == 200, response.text
    assert (await get_cue(client, auth, cue["id"]))["status"] == "paused"
    assert await claimable_ids(client, auth) == [response.json()["id"]]


async def test_a_finished_one_time_cue_can_be_fired(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await reported_execution(client, engine, clock, auth, schedule=once_schedule(clock))
    assert (await get_cue(client, auth, execution["cue_id"]))["status"] == "completed"
    response = await fire(client, auth, execution["cue_id"])
    assert response.status_code == 200, response.text


async def test_unknown_and_foreign_cues_answer_404(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    assert_error(await fire(client, other_auth, cue["id"]), 404, "cue_not_found", "Cue not found")
    assert_error(await fire(client, auth, "cue_doesnotexist"), 404, "cue_not_found")
    assert await executions_of(client, auth, cue["id"]) == []


async def test_fire_needs_credentials(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    cue = await make_worker_cue(client, auth)
    assert_error(await client.post(f"/v1/cues/{cue['id']}/fire"), 401, "invalid_api_key")


async def test_two_fires_at_one_instant_both_get_a_run(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    first, second = [await fire(client, auth, cue["id"]) for _ in range(2)]
    assert first.status_code == second.status_code == 200
    gap = parse(second.json()["scheduled_for"]) - parse(first.json()["scheduled_for"])
    assert gap == timedelta(microseconds=1)
    assert len(await executions_of(client, auth, cue["id"])) == 2


async def test_concurrent_fires_never_collide(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    responses = await asyncio.gather(*(fire(client, auth, cue["id"]) for _ in range(8)))
    assert [r.status_code for r in responses] == [200] * 8
    assert len({r.json()["scheduled_for"] for r in responses}) == 8


async def test_fire_at_the_instant_of_a_scheduled_run_is_moved_not_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    scheduled = await due_execution(client, engine, clock, auth)
    response = await fire(client, auth, scheduled["cue_id"])
    assert response.status_code == 200, response.text
    assert parse(response.json()["scheduled_for"]) == parse(scheduled["scheduled_for"]) + (
        timedelta(microseconds=1)
    )


async def test_fire_does_not_count_as_a_scheduled_fire(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    scheduled = await due_execution(client, engine, clock, auth)
    await fire(client, auth, scheduled["cue_id"])
    cue = await get_cue(client, auth, scheduled["cue_id"])
    assert cue["fired_count"] == 1
    assert cue["run_count"] == 0


async def test_fired_webhook_cue_is_delivered_by_the_dispatcher(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await register(client)
        cue = await create_webhook_cue(client, auth, clock, receiver.url(), schedule=_hourly())
        later = clock.now() + timedelta(minutes=10)
        delayed = await fire(client, auth, cue["id"], json={"send_at": later.isoformat()})
        now = await fire(client, auth, cue["id"])
        assert now.status_code == delayed.status_code == 200
        assert await engine.deliver_due() == 1
        assert len(receiver.to("/hook")) == 1
        assert (await get_execution(client, auth, now.json()["id"]))["status"] == "success"
        assert (await get_execution(client, auth, delayed.json()["id"]))["status"] == "pending"
        clock.advance(600)
        assert await engine.deliver_due() == 1
        assert (await get_execution(client, auth, delayed.json()["id"]))["status"] == "success"


async def test_fire_wakes_the_delivery_dispatcher(database_url: str, clock: FakeClock) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await register(client)
        cue = await create_webhook_cue(
            client, auth, clock, "http://127.0.0.1:9/", schedule=_hourly()
        )
        engine.dispatcher.wakeup.clear()
        await fire(client, auth, cue["id"])
        assert engine.dispatcher.wakeup.is_set()


def _hourly() -> dict[str, str]:
    return {"type": "recurring", "cron": "0 * * * *"}


# replay ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("success", [True, False], ids=["success", "failed"])
async def test_replay_answers_the_contract_shape(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    success: bool,
) -> None:
    original = await reported_execution(client, engine, clock, auth, {"success": success})
    clock.advance(30)
    response = await client.post(f"/v1/executions/{original['id']}/replay", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == RUN_KEYS | {"replayed_from"}
    assert body["replayed_from"] == original["id"]
    assert body["cue_id"] == original["cue_id"]
    assert body["status"] == "pending"
    assert body["triggered_by"] == "replay"
    assert OFFSET_DATETIME.match(body["scheduled_for"])
    assert parse(body["scheduled_for"]) == clock.now()
    assert body["id"] != original["id"]
    assert await get_execution(client, auth, original["id"]) == original
    assert (await get_execution(client, auth, body["id"]))["triggered_by"] == "replay"
    assert await claimable_ids(client, auth) == [body["id"]]
    assert (await get_cue(client, auth, original["cue_id"]))["fired_count"] == 1


async def test_a_missed_execution_can_be_replayed(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await missed_execution(client, engine, clock, auth)
    assert (await get_execution(client, auth, execution["id"]))["status"] == "missed"
    response = await client.post(f"/v1/executions/{execution['id']}/replay", headers=auth)
    assert response.status_code == 200, response.text


async def test_an_execution_in_flight_cannot_be_replayed(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    pending = await due_execution(client, engine, clock, auth)
    message = "Cannot replay an execution that is still in progress"
    response = await client.post(f"/v1/executions/{pending['id']}/replay", headers=auth)
    assert_error(response, 409, "execution_in_flight", message)
    assert (await claim(client, auth, pending["id"])).status_code == 200
    response = await client.post(f"/v1/executions/{pending['id']}/replay", headers=auth)
    assert_error(response, 409, "execution_in_flight", message)


@pytest.mark.parametrize("execution_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
async def test_replay_of_an_unknown_execution_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
) -> None:
    response = await client.post(f"/v1/executions/{execution_id}/replay", headers=auth)
    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_another_users_execution_cannot_be_replayed(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    original = await reported_execution(client, engine, clock, auth)
    response = await client.post(f"/v1/executions/{original['id']}/replay", headers=other_auth)
    assert_error(response, 404, "execution_not_found")
    assert len(await executions_of(client, auth, original["cue_id"])) == 1
