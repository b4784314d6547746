"""The release extension: ``Engine.release_execution`` and ``POST /v1/executions/{id}/release``
give a claim back unfinished; the execution returns to the queue with the claim counted."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict, Forbidden, NotFound
from cueflow.states import Event, move
from tests.agents_support import due_executions, new_user, state
from tests.helpers import assert_error


async def test_release_returns_the_execution_to_the_queue_with_the_attempt_counted(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    await engine.claim(user, "w1", execution_id)
    answer = await engine.release_execution(user, execution_id, "w1", "rate limited")
    assert answer == {
        "execution_id": execution_id,
        "released": True,
        "status": "pending",
        "attempts": 1,
        "next_attempt_at": clock.now() + timedelta(minutes=1),
    }
    row = await state(engine, user, execution_id)
    assert row["status"] == "pending"
    assert row["claimed_by_worker"] is None
    assert row["lease_expires_at"] is None
    assert "rate limited" in row["error_message"]
    clock.advance(60)
    assert [r.id for r in await engine.claimable(user)] == [execution_id]
    await engine.claim(user, "w2", execution_id)
    assert (await state(engine, user, execution_id))["attempts"] == 2


async def test_a_release_waits_out_the_cue_backoff_before_the_execution_is_claimable_again(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    retry = {"retry": {"max_attempts": 4, "backoff_minutes": [1, 5, 15]}}
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}], **retry)
    for minutes in (1, 5):
        await engine.claim(user, "w1", execution_id)
        await engine.release_execution(user, execution_id, "w1", "provider down")
        assert await engine.claimable(user) == []
        with pytest.raises(Conflict):  # neither by id nor as the next one
            await engine.claim(user, "w1", execution_id)
        with pytest.raises(Conflict):
            await engine.claim(user, "w1")
        assert (await engine.claim_batch(user, "w1", limit=5)).claimed == []
        clock.advance(minutes * 60 - 1)
        assert await engine.claimable(user) == []
        clock.advance(1)
        assert [r.id for r in await engine.claimable(user)] == [execution_id]
    await engine.claim(user, "w1", execution_id)
    answer = await engine.release_execution(
        user, execution_id, "w1", "rate limited", retry_after_seconds=7
    )
    assert answer["next_attempt_at"] == clock.now() + timedelta(seconds=7)
    clock.advance(6)
    assert await engine.claimable(user) == []
    clock.advance(1)
    await engine.claim(user, "w1", execution_id)
    assert (await state(engine, user, execution_id))["attempts"] == 4


async def test_a_released_execution_waiting_out_its_backoff_is_not_missed(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    retry = {"retry": {"max_attempts": 3, "backoff_minutes": [60]}}
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}], **retry)
    await engine.claim(user, "w1", execution_id)
    await engine.release_execution(user, execution_id, "w1")
    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    await engine.sweep()
    assert (await state(engine, user, execution_id))["status"] == "pending"


async def test_release_after_the_last_attempt_fails_the_execution_and_its_one_time_cue(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    retry = {"retry": {"max_attempts": 1, "backoff_minutes": [1]}}
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}], **retry)
    await engine.claim(user, "w1", execution_id)
    answer = await engine.release_execution(user, execution_id, "w1")
    assert answer["status"] == "failed"
    row = await state(engine, user, execution_id)
    assert row["status"] == "failed"
    assert "max attempts exhausted" in row["error_message"]
    cue = await engine.get_cue(user, row["cue_id"])
    assert cue.status == "failed"


async def test_release_refuses_unknown_unclaimed_and_foreign_claims(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    with pytest.raises(NotFound):
        await engine.release_execution(user, str(uuid.uuid4()), "w1")
    with pytest.raises(NotFound):
        await engine.release_execution(user, "not-a-uuid", "w1")
    with pytest.raises(Conflict) as refused:
        await engine.release_execution(user, execution_id, "w1")
    assert refused.value.code == "execution_not_claiming"
    await engine.claim(user, "w1", execution_id)
    with pytest.raises(Forbidden) as foreign:
        await engine.release_execution(user, execution_id, "w2")
    assert foreign.value.code == "not_execution_owner"
    assert (await state(engine, user, execution_id))["status"] == "delivering"


async def test_release_endpoint_answers_with_the_contract_envelope(
    engine: Engine, clock: FakeClock, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].removeprefix("Bearer "))
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    path = f"/v1/executions/{execution_id}/release"
    missing = f"/v1/executions/{uuid.uuid4()}/release"
    assert_error(await client.post(missing, json={"worker_id": "w1"}, headers=auth), 404,
                 "execution_not_found")  # fmt: skip
    assert_error(await client.post(path, json={"worker_id": "w1"}, headers=auth), 409,
                 "execution_not_claiming")  # fmt: skip
    claimed = await client.post(
        f"/v1/executions/{execution_id}/claim", json={"worker_id": "w1"}, headers=auth
    )
    assert claimed.status_code == 200, claimed.text
    assert_error(await client.post(path, json={"worker_id": "w2"}, headers=auth), 403,
                 "not_execution_owner")  # fmt: skip
    too_long = await client.post(path, json={"worker_id": "w1", "reason": "x" * 501}, headers=auth)
    assert too_long.status_code == 422
    negative = {"worker_id": "w1", "retry_after_seconds": -1}
    assert (await client.post(path, json=negative, headers=auth)).status_code == 422
    body = {"worker_id": "w1", "reason": "later", "retry_after_seconds": 30}
    released = await client.post(path, json=body, headers=auth)
    assert released.status_code == 200, released.text
    assert released.json() == {
        "execution_id": execution_id,
        "released": True,
        "status": "pending",
        "attempts": 1,
        "next_attempt_at": (clock.now() + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
    }
    claimable = await client.get("/v1/executions/claimable", headers=auth)
    assert claimable.json()["executions"] == []


async def test_a_push_delivery_in_flight_cannot_be_released(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    payload = {"task": "greet"}
    [execution_id] = await due_executions(engine, clock, user, [payload], transport="inprocess")
    async with engine.store.tx() as tx:  # as the dispatcher claims it for delivery
        claimed = {"claimed_by_worker": "dispatcher"}
        assert await tx.update_execution(execution_id, claimed, move=move(Event.CLAIM))
    with pytest.raises(Conflict) as refused:
        await engine.release_execution(user, execution_id, "dispatcher")
    assert refused.value.code == "execution_not_claiming"
