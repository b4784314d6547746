"""``GET /v1/executions/claimable`` (contract §2.3.5): which executions a worker may claim, in
what order, with what in each item."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import claimed_execution, due_execution, fire, make_worker_cue
from tests.helpers import (
    NONE_AVAILABLE,
    NOT_AVAILABLE,
    assert_error,
    claim,
    claim_next,
    claimable,
    create_cue,
    executions_of,
)


async def insert_future_execution(
    engine: Engine, auth: dict[str, str], cue_id: str, seconds_ahead: int
) -> str:
    """Store a pending execution of ``cue_id`` scheduled ``seconds_ahead`` from now (as a
    manual fire with a future ``send_at`` would); returns its id. There is no HTTP route that
    creates one, so this goes through the store."""
    user = await engine.authenticate(auth["Authorization"])
    cue = await engine.get_cue(user, cue_id)
    now = engine.clock.now()
    execution_id = str(uuid.uuid4())
    async with engine.store.tx() as tx:
        inserted = await tx.insert_execution(
            {
                "id": execution_id,
                "cue_id": cue_id,
                "user_id": user.user_id,
                "transport": cue.transport,
                "scheduled_for": now + timedelta(seconds=seconds_ahead),
                "status": "pending",
                "triggered_by": "manual_fire",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    assert inserted
    return execution_id


async def test_claimable_item_shape_with_attempt_zero_before_claim(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(
        client, engine, clock, auth, name="reports", payload={"task": "report", "n": 3}
    )

    [item] = await claimable(client, auth)

    assert item == {
        "execution_id": execution["id"],
        "cue_id": execution["cue_id"],
        "cue_name": "reports",
        "task": "report",
        "scheduled_for": "2026-01-05T12:05:00Z",
        "payload": {"task": "report", "n": 3},
        "attempt": 0,
    }


async def test_claimable_task_is_null_without_payload_task(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await due_execution(client, engine, clock, auth, payload={"x": 1})

    [item] = await claimable(client, auth)

    assert item["task"] is None
    assert item["payload"] == {"x": 1}


async def test_claimable_filters_by_task(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a = await make_worker_cue(client, auth, payload={"task": "a"})
    b = await make_worker_cue(client, auth, payload={"task": "b"})
    await fire(engine, clock, 300)

    only_a = await claimable(client, auth, task="a")
    only_b = await claimable(client, auth, task="b")
    unknown = await claimable(client, auth, task="zzz")
    every = await claimable(client, auth)

    assert [i["cue_id"] for i in only_a] == [a["id"]]
    assert [i["cue_id"] for i in only_b] == [b["id"]]
    assert unknown == []
    assert {i["cue_id"] for i in every} == {a["id"], b["id"]}


async def test_claimable_is_oldest_scheduled_first(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(3):
        await fire(engine, clock, 60)

    items = await claimable(client, auth)

    assert [i["scheduled_for"] for i in items] == [
        "2026-01-05T12:01:00Z",
        "2026-01-05T12:02:00Z",
        "2026-01-05T12:03:00Z",
    ]
    assert {i["cue_id"] for i in items} == {cue["id"]}


async def test_not_yet_due_execution_is_not_claimable(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)
    future = await insert_future_execution(engine, auth, cue["id"], seconds_ahead=120)

    listed = await claimable(client, auth)
    specific = await claim(client, auth, future)
    next_one = await claim_next(client, auth)

    assert listed == []
    assert_error(specific, 409, "claim_failed", NOT_AVAILABLE)
    assert_error(next_one, 409, "claim_failed", NONE_AVAILABLE)
    clock.advance(120)
    assert [i["execution_id"] for i in await claimable(client, auth)] == [future]
    assert (await claim(client, auth, future)).status_code == 200


async def test_claimed_execution_leaves_the_claimable_list(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await claimed_execution(client, engine, clock, auth)

    assert await claimable(client, auth) == []


async def test_claimable_shows_only_the_callers_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    await due_execution(client, engine, clock, other_auth)

    assert await claimable(client, auth) == []


async def test_webhook_cues_never_appear_in_claimable(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
):
    webhook = engine.transports.get("webhook")
    if webhook is None:
        pytest.skip("the webhook transport is not installed")

    async def public_address(host: str) -> list[str]:
        return ["93.184.215.14"]  # no DNS in the test environment; example.com's address

    monkeypatch.setattr(webhook.guard, "resolve", public_address)  # type: ignore[attr-defined]
    response = await create_cue(
        client, auth, transport="webhook", callback={"url": "https://example.com/hook"}
    )
    assert response.status_code == 201, response.text
    worker = await make_worker_cue(client, auth)
    await fire(engine, clock, 300)
    assert len((await client.get("/v1/executions", headers=auth)).json()["executions"]) == 2

    items = await claimable(client, auth)

    assert [i["cue_id"] for i in items] == [worker["id"]]
    webhook_run = (await executions_of(client, auth, response.json()["id"]))[0]
    assert_error(await claim(client, auth, webhook_run["id"]), 409, "claim_failed", NOT_AVAILABLE)
