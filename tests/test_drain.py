"""Draining an engine (what ``cueflow serve`` does on SIGTERM, in process): long-polls are
answered at once, ``/status`` turns 503 ``draining`` while ``/health`` stays 200, a handler in
flight finishes within the grace, and one still running after it goes back to the queue.

The same against a real ``cueflow serve`` process and SIGTERM: ``tests/test_drain_serve.py``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.push_attempts import RELEASED_ON_STOP
from tests.conftest import eventually
from tests.inprocess_support import due_cue, only_execution, opened


async def test_open_long_polls_are_answered_at_once_when_the_engine_drains(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as engine:
        user = await engine.account("poller@example.com")
        # the fake clock never moves: without the drain these would wait forever
        polls = [asyncio.create_task(engine.claimable(user, wait=60)) for _ in range(3)]
        batch = asyncio.create_task(engine.claim_batch(user, "worker-1", wait=60))

        async def all_waiting() -> bool:
            return engine.long_polls.waiting(user.user_id) == 4

        await eventually(all_waiting)
        await engine.drain()
        answered = await asyncio.wait_for(asyncio.gather(*polls), 5)
        assert answered == [[], [], []]
        assert (await asyncio.wait_for(batch, 5)).claimed == []
        # a long-poll that arrives while draining does not wait either
        assert await asyncio.wait_for(engine.claimable(user, wait=60), 5) == []
        assert engine.long_polls.waiting(user.user_id) == 0


async def test_status_is_503_draining_while_health_stays_200(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as engine:
        app = create_app(engine, manage_engine=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as client:
            assert (await client.get("/status")).status_code == 200
            await engine.drain()
            status = await client.get("/status")
            assert status.status_code == 503
            assert status.json() == {"status": "draining", "reason": "shutting down"}
            assert (await client.get("/health")).status_code == 200  # liveness: still alive


async def test_a_started_engine_is_no_longer_draining(database_url: str, clock: FakeClock) -> None:
    async with opened(database_url, clock) as engine:
        await engine.drain()
        assert engine.draining()
        await engine.start()
        assert not engine.draining()
        assert (await engine.status())["status"] != "draining"


async def test_a_handler_in_flight_finishes_within_the_grace(
    database_url: str, clock: FakeClock
) -> None:
    started, finish = asyncio.Event(), asyncio.Event()
    async with opened(database_url, clock, graceful_timeout_seconds=10) as engine:

        @engine.handler("steady")
        async def steady(payload: dict[str, Any]) -> str:
            started.set()
            await finish.wait()
            return "finished"

        user = await engine.account("steady@example.com")
        cue = await due_cue(engine, user, clock, "steady")
        clock.advance(60)
        await engine.fire_due()
        assert await engine.dispatcher.dispatch() == 1
        await asyncio.wait_for(started.wait(), 5)

        draining = asyncio.create_task(engine.drain())
        await eventually(lambda: _true(engine.draining()))
        assert (await engine.status())["status"] == "draining"
        finish.set()  # the handler ends during the drain
        await asyncio.wait_for(draining, 10)

        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "success"
        assert execution.outcome_result == "finished"
        assert execution.lease_expires_at is None


async def test_a_handler_still_running_after_the_grace_goes_back_to_the_queue(
    database_url: str, clock: FakeClock
) -> None:
    cancelled = asyncio.Event()
    stuck = True
    async with opened(database_url, clock) as engine:

        @engine.handler("stuck")
        async def handler(payload: dict[str, Any]) -> str:
            if stuck:
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
            return "delivered after the restart"

        user = await engine.account("stuck@example.com")
        cue = await due_cue(engine, user, clock, "stuck")
        clock.advance(60)
        await engine.fire_due()
        assert await engine.dispatcher.dispatch() == 1

        await asyncio.wait_for(engine.drain(timeout=0.2), 10)
        assert cancelled.is_set()
        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "pending"  # back in the queue now, not after a lease
        assert execution.attempts == 0  # the interrupted attempt is not counted
        assert execution.lease_expires_at is None
        assert execution.error_message == RELEASED_ON_STOP

        stuck = False  # the next process delivers it
        assert await engine.deliver_due() == 1
        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "success"
        assert execution.attempts == 1


async def _true(value: bool) -> bool:
    return value
