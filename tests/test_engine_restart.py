"""Restarts and the background loop: what a new engine does with runs that came due while no
engine was running, and how quickly the real-clock scheduler loop fires a due cue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cueflow.authentication import Principal
from cueflow.clock import Clock, FakeClock
from cueflow.engine import Engine
from cueflow.records import Cue
from tests.conftest import eventually, make_settings

MAX_LAG_SECONDS = 0.5


async def new_user(engine: Engine, email: str = "a@example.com") -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def one_time_worker_cue(engine: Engine, user: Principal, when: datetime, **extra: Any) -> Cue:
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "once",
            "transport": "worker",
            "schedule": {"type": "once", "at": when.isoformat()},
            **extra,
        },
    )
    return cue


@asynccontextmanager
async def opened(url: str, clock: Clock | None = None, **overrides: Any) -> AsyncIterator[Engine]:
    eng = Engine(make_settings(url, **overrides), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        # Bounded: see test_close_returns_even_when_a_wake_up_lands_in_the_same_loop_turn.
        await asyncio.wait_for(eng.close(), timeout=10.0)


async def cue_created_before_downtime(
    database_url: str, clock: FakeClock, **extra: Any
) -> tuple[str, str, datetime]:
    """On engine A: a user and a one-time worker cue due in 2 minutes; then A closes and the
    clock moves 10 minutes. Returns the api key, the cue id and its ``at``."""
    async with opened(database_url, clock) as a:
        key = (await a.register("a@example.com"))["api_key"]
        user = await a.principal(key)
        when = clock.now() + timedelta(minutes=2)
        row = await one_time_worker_cue(a, user, when, **extra)
    clock.advance(minutes=10)
    return key, row.id, when


# restart with a fake clock --------------------------------------------------------------------


async def test_one_time_cue_due_while_down_fires_exactly_once_after_restart(
    database_url: str, clock: FakeClock
) -> None:
    key, cue_id, when = await cue_created_before_downtime(database_url, clock)

    async with opened(database_url, clock) as b:
        user = await b.principal(key)
        assert await b.fire_due() == 1

        rows, total = await b.cue_executions(user, cue_id)
        assert total == 1
        execution = rows[0]
        assert execution.scheduled_for == when
        assert execution.status == "pending"
        assert [r.id for r in await b.claimable(user)] == [execution.id]
        cue = await b.get_cue(user, cue_id)
        assert cue.next_run is None
        assert cue.status == "active"

        assert await b.fire_due() == 0
        assert (await b.cue_executions(user, cue_id))[1] == 1

        claimed = await b.claim(user, "worker-1")
        assert claimed["execution_id"] == execution.id


async def test_one_time_cue_with_skip_policy_due_while_down_is_missed_and_fails(
    database_url: str, clock: FakeClock
) -> None:
    key, cue_id, when = await cue_created_before_downtime(
        database_url, clock, misfire_policy="skip"
    )

    async with opened(database_url, clock) as b:
        user = await b.principal(key)
        assert await b.fire_due() == 1

        rows, total = await b.cue_executions(user, cue_id)
        assert total == 1
        assert rows[0].scheduled_for == when
        assert rows[0].status == "missed"
        assert rows[0].error_message
        assert await b.claimable(user) == []
        cue = await b.get_cue(user, cue_id)
        assert cue.status == "failed"
        assert cue.next_run is None

        assert await b.fire_due() == 0
        assert (await b.cue_executions(user, cue_id))[1] == 1


async def test_restart_of_the_same_engine_object_fires_the_run_once(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as eng:
        user = await new_user(eng)
        row = await one_time_worker_cue(eng, user, clock.now() + timedelta(minutes=2))
        await eng.close()
        clock.advance(minutes=10)
        await eng.open()
        assert await eng.fire_due() == 1
        assert await eng.fire_due() == 0
        assert (await eng.cue_executions(user, row.id))[1] == 1


async def test_recurring_cue_after_downtime_fires_once_and_resumes_its_schedule(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as a:
        key = (await a.register("a@example.com"))["api_key"]
        user = await a.principal(key)
        cue, _ = await a.create_cue(
            user,
            {
                "name": "every-5",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
            },
        )
    start = clock.now()
    clock.advance(minutes=52, seconds=30)

    async with opened(database_url, clock) as b:
        user = await b.principal(key)
        assert await b.fire_due() == 1
        rows, _ = await b.cue_executions(user, cue.id)
        assert [r.scheduled_for for r in rows] == [start + timedelta(minutes=50)]
        assert (await b.get_cue(user, cue.id)).next_run == start + timedelta(minutes=55)
        assert await b.fire_due() == 0


# the background loop on the real clock ---------------------------------------------------------


async def lag_until_claimable(engine: Engine, user: Principal, due: datetime) -> float:
    """Poll claimable (about every 20 ms) until something is there; seconds after ``due``."""

    async def check() -> float | None:
        await asyncio.sleep(0.01)
        if await engine.claimable(user):
            return max((datetime.now(UTC) - due).total_seconds(), 1e-9)
        return None

    return await eventually(check, timeout=(due - datetime.now(UTC)).total_seconds() + 3.0)


async def test_background_loop_makes_a_due_cue_claimable_within_half_a_second(
    database_url: str,
) -> None:
    async with opened(database_url) as eng:
        await eng.start()
        user = await new_user(eng)
        due = datetime.now(UTC) + timedelta(seconds=1.5)
        await one_time_worker_cue(eng, user, due)
        assert await eng.claimable(user) == []

        lag = await lag_until_claimable(eng, user, due)

        assert lag <= MAX_LAG_SECONDS, f"claimable {lag:.3f} s after its time"
        rows = await eng.claimable(user)
        assert [r.scheduled_for for r in rows] == [due]


async def test_scheduler_sleeping_on_an_empty_schedule_wakes_for_a_new_cue(
    database_url: str,
) -> None:
    async with opened(database_url) as eng:
        await eng.start()
        user = await new_user(eng)
        await asyncio.sleep(0.3)  # the loop has found no cue and sleeps with no deadline
        due = datetime.now(UTC) + timedelta(seconds=1)
        await one_time_worker_cue(eng, user, due)

        lag = await lag_until_claimable(eng, user, due)

        assert lag <= MAX_LAG_SECONDS, f"claimable {lag:.3f} s after its time"


async def test_background_sweeper_runs_on_its_own(database_url: str) -> None:
    async with opened(
        database_url,
        worker_claim_timeout_seconds=1,
        sweep_interval_seconds=0.05,
    ) as eng:
        await eng.start()
        user = await new_user(eng)
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        await one_time_worker_cue(eng, user, due)
        await lag_until_claimable(eng, user, due)
        claimed = await eng.claim(user, "worker-1")

        async def back_in_queue() -> bool:
            row = await eng.get_execution(user, claimed["execution_id"])
            return row.status == "pending"

        await eventually(back_in_queue, timeout=4.0)


@pytest.mark.parametrize("policy", ["fire_once", "skip", "fire_all"])
async def test_started_engine_handles_a_run_missed_while_down_on_start(
    database_url: str, clock: FakeClock, policy: str
) -> None:
    key, cue_id, when = await cue_created_before_downtime(
        database_url, clock, misfire_policy=policy
    )
    async with opened(database_url, clock) as b:
        await b.start()
        user = await b.principal(key)

        async def fired() -> int:
            return (await b.cue_executions(user, cue_id))[1]

        assert await eventually(fired, timeout=3.0) == 1
        rows, _ = await b.cue_executions(user, cue_id)
        assert rows[0].scheduled_for == when
        assert rows[0].status == ("missed" if policy == "skip" else "pending")


async def test_background_loop_on_the_fake_clock_fires_when_the_clock_reaches_next_run(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as eng:
        await eng.start()
        user = await new_user(eng)
        row = await one_time_worker_cue(eng, user, clock.now() + timedelta(minutes=1))

        async def fired() -> int:
            return (await eng.cue_executions(user, row.id))[1]

        await asyncio.sleep(0.1)
        assert await fired() == 0
        clock.advance(seconds=59)
        await asyncio.sleep(0.1)
        assert await fired() == 0
        clock.advance(seconds=1)
        assert await eventually(fired, timeout=3.0) == 1


async def test_cue_created_on_another_node_wakes_a_sleeping_scheduler(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("cross-node wake-ups are PostgreSQL LISTEN/NOTIFY")
    async with opened(database_url) as sleeper, opened(database_url) as other:
        await sleeper.start()
        await asyncio.sleep(0.3)  # the sleeper found no cue and sleeps with no deadline
        user = await new_user(other)
        due = datetime.now(UTC) + timedelta(seconds=1)
        await one_time_worker_cue(other, user, due)

        lag = await lag_until_claimable(other, user, due)

        assert lag <= MAX_LAG_SECONDS, f"claimable {lag:.3f} s after its time"


async def test_run_fired_late_after_a_long_downtime_still_gets_the_full_unclaimed_window(
    database_url: str, clock: FakeClock
) -> None:
    key, cue_id, when = await cue_created_before_downtime(database_url, clock)
    clock.advance(hours=1)  # scheduled_for is now more than 900 s in the past

    async with opened(database_url, clock) as b:
        user = await b.principal(key)
        assert await b.fire_due() == 1
        assert await b.sweep() == 0
        rows = await b.claimable(user)
        assert [r.scheduled_for for r in rows] == [when]

        clock.advance(seconds=901)
        assert await b.sweep() == 1
        assert (await b.cue_executions(user, cue_id))[0][0].status == "missed"


async def test_a_third_engine_after_the_restart_fires_nothing_more(
    database_url: str, clock: FakeClock
) -> None:
    key, cue_id, _ = await cue_created_before_downtime(database_url, clock)
    async with opened(database_url, clock) as b:
        assert await b.fire_due() == 1
    clock.advance(minutes=10)
    async with opened(database_url, clock) as c:
        assert await c.fire_due() == 0
        assert (await c.cue_executions(await c.principal(key), cue_id))[1] == 1


async def test_close_returns_even_when_a_wake_up_lands_in_the_same_loop_turn(
    database_url: str,
) -> None:
    """A cue change (or a NOTIFY, or new executions) can wake a background loop just as the
    engine stops. The loop must still end: ``close()`` may not wait forever."""
    async with opened(database_url) as eng:
        await eng.start()
        user = await new_user(eng)
        await eng.create_cue(
            user,
            {
                "name": "hourly",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "0 * * * *"},
            },
        )
        await asyncio.sleep(0.2)  # the scheduler sleeps until the next hour, with a timeout

        eng.wake()
        await asyncio.sleep(0)  # the wake-up event's waiter finishes in this turn

        loop = asyncio.get_running_loop()
        started = loop.time()
        with contextlib.suppress(TimeoutError):
            # On a hang the timeout cancels close() again, which ends the loop for good.
            await asyncio.wait_for(eng.close(), timeout=3.0)
        took = loop.time() - started
        assert took < 1.0, f"engine.close() took {took:.2f} s: a background task ignored its cancel"
