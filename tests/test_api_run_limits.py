"""Concurrency limits, rate limits and priority as workers and push deliveries meet them
(cueflow extension, :mod:`cueflow.run_limits`): held-back work is left out of claimable lists and
claim-next, a claim by id answers 409 with the limit's code, GET says what a held-back
execution waits for, and room regained (an outcome, a window passing) makes it claimable."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_worker_cue
from tests.helpers import (
    assert_error,
    claim,
    claim_next,
    claimable,
    executions_of,
    get_execution,
    report,
)
from tests.inprocess_support import due_cue, fire, only_execution, opened


async def _due(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str], **fields: Any
) -> list[dict[str, Any]]:
    """Worker cues created with ``fields`` (one per ``names`` entry) fired once at 12:05; returns
    their pending executions, oldest cue first."""
    names = fields.pop("names")
    cues = [await make_worker_cue(client, auth, name=name, **fields) for name in names]
    clock.set(datetime.fromisoformat(cues[0]["next_run"].replace("Z", "+00:00")))
    assert await engine.fire_due() == len(cues)
    return [(await executions_of(client, auth, cue["id"]))[0] for cue in cues]


async def test_a_shared_concurrency_key_holds_claims_to_its_limit(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    shared = {"limit": 2, "key": "llm"}
    runs = await _due(client, engine, clock, auth, names=["a", "b", "c"], concurrency=shared)
    free = await make_worker_cue(client, auth, name="free")
    clock.advance(300)  # the next tick fires every cue again; the free one has no limit
    await engine.fire_due()

    first = (await claim_next(client, auth, "w1")).json()["execution_id"]
    second = (await claim_next(client, auth, "w2")).json()["execution_id"]
    assert {first, second} <= {run["id"] for run in runs}
    listed = await claimable(client, auth)
    assert {item["cue_id"] for item in listed} == {free["id"]}, "the key is full"

    third = await claim_next(client, auth, "w3")
    assert third.json()["execution_id"] not in {run["id"] for run in runs}
    held = next(run for run in runs if run["id"] not in {first, second})
    refused = await claim(client, auth, held["id"], "w4")
    assert_error(refused, 409, "concurrency_limited")
    shown = await get_execution(client, auth, held["id"])
    assert shown["waiting_for"] == {
        "reason": "concurrency",
        "key": "llm",
        "limit": 2,
        "in_flight": 2,
        "until": None,
    }

    done = await report(client, auth, first, success=True, worker_id="w1")
    assert done.status_code == 200, done.text
    assert (await claim(client, auth, held["id"], "w4")).status_code == 200
    assert (await get_execution(client, auth, held["id"]))["waiting_for"] is None


async def test_a_batch_claim_takes_no_more_than_the_limit_leaves_room_for(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await _due(
        client,
        engine,
        clock,
        auth,
        names=["a", "b", "c", "d"],
        concurrency={"limit": 3, "key": "k"},
    )

    response = await client.post(
        "/v1/executions/claims", json={"worker_id": "w1", "limit": 10}, headers=auth
    )

    assert response.status_code == 200, response.text
    assert len(response.json()["claimed"]) == 3


async def test_a_batch_claim_mixing_free_and_rate_limited_picks_claims_all_in_queue_order(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    # PostgreSQL claims the free picks outside a transaction, then admits the rate-limited one
    # in a second look: every pick is claimed once, and the answer keeps the queue order.
    rate = {"limit": 10, "period_seconds": 60, "key": "api"}
    free = await make_worker_cue(client, auth, name="free", priority=9)
    limited = await make_worker_cue(client, auth, name="limited", priority=5, rate_limit=rate)
    last = await make_worker_cue(client, auth, name="last", priority=1)
    clock.set(datetime.fromisoformat(free["next_run"].replace("Z", "+00:00")))
    assert await engine.fire_due() == 3

    response = await client.post(
        "/v1/executions/claims", json={"worker_id": "w1", "limit": 10}, headers=auth
    )

    assert response.status_code == 200, response.text
    claimed = response.json()["claimed"]
    assert [item["cue_id"] for item in claimed] == [free["id"], limited["id"], last["id"]]
    for item in claimed:
        shown = await get_execution(client, auth, item["execution_id"])
        assert (shown["status"], shown["attempts"]) == ("delivering", 1)
    assert await claimable(client, auth) == []


async def test_a_cues_own_concurrency_limit_counts_only_its_runs(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    run, other = await _due(
        client, engine, clock, auth, names=["solo", "other"], concurrency={"limit": 1}
    )
    clock.advance(300)
    await engine.fire_due()

    assert (await claim(client, auth, run["id"])).status_code == 200
    assert (await claim(client, auth, other["id"])).status_code == 200
    assert [item["cue_id"] for item in await claimable(client, auth)] == []


async def test_a_rate_limit_holds_starts_to_its_window_and_says_until_when(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    rate = {"limit": 2, "period_seconds": 60, "key": "api"}
    runs = await _due(client, engine, clock, auth, names=["a", "b", "c"], rate_limit=rate)
    started = clock.now()

    for worker in ("w1", "w2"):
        claimed = await claim_next(client, auth, worker)
        assert claimed.status_code == 200, claimed.text
        await report(client, auth, claimed.json()["execution_id"], success=True, worker_id=worker)
    # finished runs still count: a rate limit counts starts, not runs in flight
    assert await claimable(client, auth) == []
    assert_error(await claim_next(client, auth, "w3"), 409, "claim_failed")
    [held] = [
        r for r in runs if (await get_execution(client, auth, r["id"]))["status"] == "pending"
    ]
    waiting = (await get_execution(client, auth, held["id"]))["waiting_for"]
    assert waiting["reason"] == "rate_limit"
    assert (waiting["key"], waiting["limit"], waiting["period_seconds"]) == ("api", 2, 60)
    until = datetime.fromisoformat(waiting["until"].replace("Z", "+00:00"))
    assert until == started + timedelta(seconds=60)

    clock.advance(59)
    assert_error(await claim(client, auth, held["id"], "w3"), 409, "rate_limited")
    clock.advance(1)
    assert [item["execution_id"] for item in await claimable(client, auth)] == [held["id"]]
    assert (await claim(client, auth, held["id"], "w3")).status_code == 200


async def test_higher_priority_is_claimed_first_then_oldest(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    low = await make_worker_cue(client, auth, name="low", priority=0)
    high = await make_worker_cue(client, auth, name="high", priority=5)
    middle = await make_worker_cue(client, auth, name="middle", priority=1)
    clock.set(datetime.fromisoformat(low["next_run"].replace("Z", "+00:00")))
    await engine.fire_due()
    clock.advance(300)
    await engine.fire_due()  # each cue has an older and a newer run now

    listed = await claimable(client, auth)
    order = [item["cue_id"] for item in listed]
    assert order == [high["id"]] * 2 + [middle["id"]] * 2 + [low["id"]] * 2
    assert listed[0]["scheduled_for"] < listed[1]["scheduled_for"]
    taken = [(await claim_next(client, auth)).json()["execution_id"] for _ in range(6)]
    assert taken == [item["execution_id"] for item in listed]


async def test_push_deliveries_keep_to_a_shared_concurrency_limit(
    database_url: str, clock: FakeClock
) -> None:
    running = 0
    most = 0

    async with opened(database_url, clock, handler_concurrency=10) as engine:

        @engine.handler("call")
        async def call(payload: dict[str, Any]) -> int:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.02)
            running -= 1
            return int(payload["n"])

        user = await engine.account("app@example.com")
        shared = {"limit": 2, "key": "provider"}
        cues = [
            await due_cue(engine, user, clock, "call", payload={"n": n}, concurrency=shared)
            for n in range(6)
        ]

        await fire(engine, clock)

        assert most == 2
        for cue in cues:
            assert (await only_execution(engine, user, cue.id)).status == "success"
