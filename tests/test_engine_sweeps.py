"""What the sweeper does through the engine API: unclaimed executions turn missed, custom lease,
heartbeat and unclaimed timeouts, claim order, two engines sweeping at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict
from cueflow.store import ExecutionFilter
from tests.claims_support import (
    LEASE,
    UNCLAIMED_TIMEOUT,
    due_execution,
    is_postgres,
    many_due_executions,
    new_user,
    one_time_cue,
    opened,
    status_of,
)


async def test_outcome_of_the_holder_finishes_the_execution_and_the_one_time_cue(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    cue_id = (await status_of(engine, user, execution_id)).cue_id
    await engine.claim(user, "worker-1")
    await engine.report_outcome(user, execution_id, {"success": True}, worker_id="worker-1")
    row = await status_of(engine, user, execution_id)
    assert row.status == "success"
    assert row.lease_expires_at is None
    assert (await engine.get_cue(user, cue_id)).status == "completed"
    clock.advance(LEASE * 2)
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "success"


async def test_unclaimed_execution_is_missed_after_900_seconds_and_its_one_time_cue_fails(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    cue_id = (await status_of(engine, user, execution_id)).cue_id

    clock.advance(UNCLAIMED_TIMEOUT - 1)
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "pending"

    clock.advance(2)
    assert await engine.sweep() == 1
    row = await status_of(engine, user, execution_id)
    assert row.status == "missed"
    assert row.error_message
    assert (await engine.get_cue(user, cue_id)).status == "failed"
    assert await engine.claimable(user) == []
    with pytest.raises(Conflict) as err:
        await engine.claim(user, "worker-1", execution_id)
    assert err.value.code == "claim_failed"


async def test_unclaimed_execution_of_a_recurring_cue_is_missed_and_the_cue_stays_active(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "hourly",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "0 * * * *"},
        },
    )
    clock.advance(hours=1)
    assert await engine.fire_due() == 1
    clock.advance(UNCLAIMED_TIMEOUT + 1)
    assert await engine.sweep() == 1
    page = await engine.list_executions(user, ExecutionFilter(statuses=["missed"]))
    assert page.total == 1
    assert (await engine.get_cue(user, cue.id)).status == "active"


async def test_execution_returned_by_an_expired_lease_is_not_immediately_marked_missed(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "worker-1")
    clock.advance(LEASE + 1)  # scheduled_for is now older than the unclaimed timeout
    assert await engine.sweep() == 1
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "pending"
    assert [r.id for r in await engine.claimable(user)] == [execution_id]


async def test_custom_claim_timeout_sets_the_lease_length(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, worker_claim_timeout_seconds=30) as eng:
        user = await new_user(eng)
        execution_id = await due_execution(eng, clock, user)
        claimed = await eng.claim(user, "worker-1")
        assert claimed["lease_seconds"] == 30
        row = await status_of(eng, user, execution_id)
        assert row.lease_expires_at == clock.now() + timedelta(seconds=30)

        clock.advance(29)
        assert await eng.sweep() == 0
        assert (await status_of(eng, user, execution_id)).status == "delivering"
        beat = await eng.heartbeat_execution(user, execution_id, "worker-1")
        assert beat["lease_extended_until"] == (clock.now() + timedelta(seconds=30)).isoformat()

        clock.advance(31)
        assert await eng.sweep() == 1
        assert (await status_of(eng, user, execution_id)).status == "pending"


async def test_custom_heartbeat_and_unclaimed_timeouts_are_honoured(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(
        database_url,
        clock,
        worker_heartbeat_timeout_seconds=10,
        worker_unclaimed_timeout_seconds=100,
    ) as eng:
        user = await new_user(eng)
        claimed_id = await due_execution(eng, clock, user, "claimed")
        await eng.worker_heartbeat(user, "worker-1")
        await eng.claim(user, "worker-1")
        clock.advance(11)
        assert await eng.sweep() == 1
        assert (await status_of(eng, user, claimed_id)).status == "pending"
        await eng.claim(user, "worker-2")
        await eng.report_outcome(user, claimed_id, {"success": True}, worker_id="worker-2")

        waiting_id = await due_execution(eng, clock, user, "waiting")
        clock.advance(99)
        assert await eng.sweep() == 0
        clock.advance(2)
        assert await eng.sweep() == 1
        assert (await status_of(eng, user, waiting_id)).status == "missed"
        assert (await status_of(eng, user, claimed_id)).status == "success"


async def test_unclaimed_timeout_zero_never_marks_executions_missed(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, worker_unclaimed_timeout_seconds=0) as eng:
        user = await new_user(eng)
        execution_id = await due_execution(eng, clock, user)
        clock.advance(days=2)
        assert await eng.sweep() == 0
        assert (await status_of(eng, user, execution_id)).status == "pending"


async def test_claim_next_hands_out_the_oldest_due_execution_first(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    await one_time_cue(engine, user, "later", delay=120)
    await one_time_cue(engine, user, "sooner", delay=60)
    clock.advance(120)
    assert await engine.fire_due() == 2
    rows = await engine.claimable(user)
    assert [r.cue_name for r in rows] == ["sooner", "later"]
    first = await engine.claim(user, "worker-1")
    assert first["execution_id"] == rows[0].id


async def test_execution_heartbeats_keep_a_registered_workers_claim_alive(
    engine: Engine, clock: FakeClock
) -> None:
    """The holder extends its lease every 100 s; its worker heartbeat thread has died. A lease
    the holder just extended proves it is alive, so the claim is not reset as stale."""
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.worker_heartbeat(user, "worker-1")
    await engine.claim(user, "worker-1")
    for step in range(1, 5):
        clock.advance(100)
        beat = await engine.heartbeat_execution(user, execution_id, "worker-1")
        await engine.sweep()
        row = await status_of(engine, user, execution_id)
        assert row.status == "delivering", (
            f"claim reset {step * 100} s after the claim, right after a heartbeat extended "
            f"the lease to {beat['lease_extended_until']}: {row.error_message!r}"
        )


async def test_two_engines_sweeping_concurrently_reset_each_lease_and_miss_each_run_once(
    database_url: str, clock: FakeClock
) -> None:
    if not is_postgres(database_url):
        pytest.skip("several nodes on one database is the PostgreSQL deployment")
    async with opened(database_url, clock) as e1, opened(database_url, clock) as e2:
        user = await new_user(e1)
        fired = await many_due_executions(e1, clock, user, 40)
        for i in range(20):
            await e1.claim(user, f"worker-{i}")
        clock.advance(LEASE + 1)  # 20 leases ended; 20 executions waited past the timeout

        changed = await asyncio.gather(e1.sweep(), e2.sweep())

        assert sum(changed) == 40
        page = await e2.list_executions(user, limit=100)
        statuses = sorted(row.status for row in page.rows)
        assert statuses == ["missed"] * 20 + ["pending"] * 20
        assert {row.attempts for row in page.rows if row.status == "pending"} == {1}
        assert {row.id for row in page.rows} == fired
        assert sum(await asyncio.gather(e1.sweep(), e2.sweep())) == 0
