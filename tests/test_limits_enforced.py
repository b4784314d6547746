"""Concurrency and rate limits (cueflow extension, :mod:`cueflow.run_controls`) hold on every
path that starts an execution, in process on both stores with the fake clock: worker claims by
id and claim-next (what a limit holds back is skipped, not waited on), webhook deliveries and
in-process handlers, and one key shared by a worker cue and a push cue. The racing proofs over
real nodes are ``tests/test_reliability_concurrency_limit.py`` and
``tests/test_reliability_rate_limit.py``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_once_cue
from tests.helpers import (
    NONE_AVAILABLE,
    assert_error,
    claim,
    claim_next,
    claimable,
    executions_of,
    get_execution,
    report,
)
from tests.inprocess_support import due_cue, opened
from tests.webhook_support import Receiver, api, new_user, open_engine
from tests.webhook_support import create_cue as create_webhook_cue

SHARED = {"limit": 1, "key": "provider"}


async def due_runs(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    count: int,
    **fields: Any,
) -> list[str]:
    """``count`` one-time worker cues with ``fields``, fired; their executions' ids, oldest
    first."""
    cues = [
        await make_once_cue(client, auth, clock, in_seconds=60 + n, **fields) for n in range(count)
    ]
    clock.advance(60 + count)
    await engine.fire_due()
    return [(await executions_of(client, auth, cue["id"]))[0]["id"] for cue in cues]


async def test_a_concurrency_key_at_its_limit_holds_back_claims_and_is_skipped(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    held, waiting = await due_runs(client, engine, clock, auth, 2, concurrency=SHARED)
    [free] = await due_runs(client, engine, clock, auth, 1)
    taken = await claim(client, auth, held)
    assert taken.status_code == 200, taken.text

    # Claimable lists and claim-next skip what the key holds back: the free run is younger
    # than the held-back one and is taken anyway.
    assert [item["execution_id"] for item in await claimable(client, auth)] == [free]
    response = await claim_next(client, auth, "w2")
    assert response.status_code == 200, response.text
    assert response.json()["execution_id"] == free
    assert_error(await claim_next(client, auth, "w3"), 409, "claim_failed", NONE_AVAILABLE)
    # By id it answers 409 with a code that says why.
    refused = await claim(client, auth, waiting, "w3")
    assert refused.status_code == 409, refused.text
    assert "concurrency" in refused.json()["error"]["code"], refused.text
    shown = await get_execution(client, auth, waiting)
    assert (shown["status"], shown["attempts"]) == ("pending", 0)
    assert shown["waiting_for"] == {
        "reason": "concurrency",
        "key": "provider",
        "limit": 1,
        "in_flight": 1,
        "until": None,
    }

    # The outcome frees the slot.
    done = await report(client, auth, held, success=True)
    assert done.status_code == 200, done.text
    again = await claim_next(client, auth, "w3")
    assert again.status_code == 200, again.text
    assert again.json()["execution_id"] == waiting


async def test_a_rate_limit_holds_back_claims_until_its_window_moves_on(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    rate = {"limit": 2, "period_seconds": 60, "key": "api"}
    runs = await due_runs(client, engine, clock, auth, 4, rate_limit=rate)

    first = [await claim_next(client, auth, f"w{n}") for n in range(2)]
    assert [r.json()["execution_id"] for r in first] == runs[:2]
    assert_error(await claim_next(client, auth, "w3"), 409, "claim_failed", NONE_AVAILABLE)
    refused = await claim(client, auth, runs[2], "w3")
    assert refused.status_code == 409, refused.text
    assert "rate" in refused.json()["error"]["code"], refused.text
    shown = await get_execution(client, auth, runs[2])
    assert shown["waiting_for"]["reason"] == "rate_limit"
    assert shown["waiting_for"]["limit"] == 2

    # Finishing the first two does not free the rate: starts count, not runs in flight.
    for eid in runs[:2]:
        assert (await report(client, auth, eid, success=True)).status_code == 200
    clock.advance(30)
    assert_error(await claim_next(client, auth, "w3"), 409, "claim_failed", NONE_AVAILABLE)
    clock.advance(31)
    later = [await claim_next(client, auth, f"w{n}") for n in range(2)]
    assert [r.json()["execution_id"] for r in later] == runs[2:]


async def test_webhook_deliveries_of_one_key_never_exceed_its_limit(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock, delivery_concurrency=10) as engine,
        api(engine) as client,
        Receiver(delay=0.05) as receiver,
    ):
        auth = await new_user(client)
        for _ in range(6):
            await create_webhook_cue(
                client, auth, clock, receiver.url(), concurrency={"limit": 2, "key": "hooks"}
            )
        clock.advance(60)
        await engine.fire_due()

        assert await engine.deliver_due() == 6

    assert len(receiver.requests) == 6
    assert receiver.most_in_flight == 2


async def test_webhook_starts_of_one_key_keep_to_its_rate(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        auth = await new_user(client)
        rate = {"limit": 2, "period_seconds": 60, "key": "hooks"}
        for _ in range(5):
            await create_webhook_cue(client, auth, clock, receiver.url(), rate_limit=rate)
        clock.advance(60)
        await engine.fire_due()

        assert await engine.deliver_due() == 2
        clock.advance(30)
        assert await engine.deliver_due() == 0
        clock.advance(31)
        assert await engine.deliver_due() == 2
        clock.advance(61)
        assert await engine.deliver_due() == 1

    assert len(receiver.requests) == 5


async def test_in_process_handlers_of_one_key_never_exceed_its_limit(
    database_url: str, clock: FakeClock
) -> None:
    running = most = 0

    async def handle(payload: dict[str, Any]) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return "ok"

    async with opened(database_url, clock, handler_concurrency=8) as engine:
        engine.handler("limited")(handle)
        user = await engine.account("limits@example.com")
        for _ in range(6):
            await due_cue(engine, user, clock, "limited", concurrency={"limit": 2, "key": "shared"})
        clock.advance(60)
        await engine.fire_due()

        assert await engine.deliver_due() == 6

    assert most == 2


async def test_one_key_counts_worker_claims_and_push_deliveries_together(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        async with Receiver() as receiver:
            [held] = await due_runs(client, engine, clock, auth, 1, concurrency=SHARED)
            hook = await create_webhook_cue(
                client,
                auth,
                clock,
                receiver.url(),
                concurrency=SHARED,
                schedule={"type": "once", "at": (clock.now() + timedelta(seconds=1)).isoformat()},
            )
            taken = await claim(client, auth, held)
            assert taken.status_code == 200, taken.text
            clock.advance(1)
            await engine.fire_due()

            assert await engine.deliver_due() == 0
            [waiting] = await executions_of(client, auth, hook["id"])
            assert (waiting["status"], waiting["attempts"]) == ("pending", 0)

            assert (await report(client, auth, held, success=True)).status_code == 200
            assert await engine.deliver_due() == 1
            assert len(receiver.requests) == 1


async def test_a_run_held_back_by_its_limit_is_not_missed_for_want_of_a_worker(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    # One start an hour: the second run waits for the limit, which a worker cannot change.
    rate = {"limit": 1, "period_seconds": 3600, "key": "hourly"}
    first, second = await due_runs(client, engine, clock, auth, 2, rate_limit=rate)
    taken = await claim_next(client, auth)
    assert taken.json()["execution_id"] == first
    assert (await report(client, auth, first, success=True)).status_code == 200

    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    await engine.sweep()

    waiting = await get_execution(client, auth, second)
    assert waiting["status"] == "pending", waiting
    assert waiting["waiting_for"]["reason"] == "rate_limit"
    clock.advance(3600)
    again = await claim_next(client, auth)
    assert again.status_code == 200, again.text
    assert again.json()["execution_id"] == second


async def test_a_run_queued_behind_a_long_concurrency_holder_is_not_missed(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    shared = {"limit": 1, "key": "solo"}
    first, second = await due_runs(client, engine, clock, auth, 2, concurrency=shared)
    taken = await claim_next(client, auth)
    assert taken.json()["execution_id"] == first

    # the holder works past the unclaimed timeout, heartbeating its claim
    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    beat = await client.post(
        f"/v1/executions/{first}/heartbeat", json={"worker_id": "w1"}, headers=auth
    )
    assert beat.status_code == 200, beat.text
    await engine.sweep()
    assert (await get_execution(client, auth, second))["status"] == "pending"

    # once the key is idle for the whole timeout, nobody claiming it is a miss again
    assert (await report(client, auth, first, success=True)).status_code == 200
    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    await engine.sweep()
    assert (await get_execution(client, auth, second))["status"] == "missed"
