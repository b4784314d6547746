"""Leases through the engine API: expiry, heartbeats, stale and lost workers, late reports.
Time moves on the injected fake clock."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict, CueflowError
from tests.claims_support import (
    HEARTBEAT_TIMEOUT,
    LEASE,
    UNCLAIMED_TIMEOUT,
    due_execution,
    new_user,
    status_of,
)

# leases -----------------------------------------------------------------------------------------


async def test_claim_lease_survives_899_seconds_and_returns_to_queue_after_901(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    claimed = await engine.claim(user, "worker-1")
    assert claimed["execution_id"] == execution_id
    assert claimed["lease_seconds"] == LEASE

    clock.advance(LEASE - 1)
    assert await engine.sweep() == 0
    row = await status_of(engine, user, execution_id)
    assert row.status == "delivering"
    assert row.claimed_by_worker == "worker-1"

    clock.advance(2)
    assert await engine.sweep() == 1
    row = await status_of(engine, user, execution_id)
    assert row.status == "pending"
    assert row.claimed_by_worker is None
    assert row.attempts == 1
    assert "lease" in (row.error_message or "").lower()
    assert [r.id for r in await engine.claimable(user)] == [execution_id]

    again = await engine.claim(user, "worker-2")
    assert again["execution_id"] == execution_id
    row = await status_of(engine, user, execution_id)
    assert row.status == "delivering"
    assert row.attempts == 2
    assert row.claimed_by_worker == "worker-2"


async def test_sweeping_twice_at_the_same_instant_changes_nothing_more(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    await due_execution(engine, clock, user)
    await engine.claim(user, "worker-1")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    assert await engine.sweep() == 0


async def test_execution_heartbeat_at_800_seconds_keeps_the_lease_past_900(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "worker-1")

    clock.advance(800)
    beat = await engine.heartbeat_execution(user, execution_id, "worker-1")
    until = clock.now() + timedelta(seconds=LEASE)
    assert beat == {
        "execution_id": execution_id,
        "lease_extended_until": until.isoformat(),
        "acknowledged": True,
    }

    clock.advance(200)  # 1000 s after the claim
    assert await engine.sweep() == 0
    row = await status_of(engine, user, execution_id)
    assert row.status == "delivering"
    assert row.claimed_by_worker == "worker-1"
    assert row.lease_expires_at == until

    clock.advance(LEASE - 200 + 1)  # just past the extended lease
    assert await engine.sweep() == 1
    assert (await status_of(engine, user, execution_id)).status == "pending"


async def test_heartbeat_from_another_worker_is_refused_and_does_not_extend_the_lease(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "worker-1")
    clock.advance(800)
    with pytest.raises(CueflowError) as err:
        await engine.heartbeat_execution(user, execution_id, "worker-2")
    assert (err.value.status, err.value.code) == (403, "not_execution_owner")
    clock.advance(101)
    assert await engine.sweep() == 1
    assert (await status_of(engine, user, execution_id)).status == "pending"


async def test_heartbeat_of_an_unclaimed_execution_is_a_conflict(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    with pytest.raises(Conflict) as err:
        await engine.heartbeat_execution(user, execution_id, "worker-1")
    assert err.value.code == "execution_not_claiming"


@pytest.mark.parametrize("max_attempts", [1, 3])
async def test_execution_fails_when_every_allowed_claim_lets_its_lease_expire(
    engine: Engine, clock: FakeClock, max_attempts: int
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(
        engine, clock, user, retry={"max_attempts": max_attempts, "backoff_minutes": [1]}
    )
    cue_id = (await status_of(engine, user, execution_id)).cue_id

    for attempt in range(1, max_attempts + 1):
        assert (await engine.claim(user, f"worker-{attempt}"))["execution_id"] == execution_id
        assert (await status_of(engine, user, execution_id)).attempts == attempt
        clock.advance(LEASE + 1)
        assert await engine.sweep() == 1
        row = await status_of(engine, user, execution_id)
        if attempt < max_attempts:
            assert row.status == "pending"
            assert (await engine.get_cue(user, cue_id)).status == "active"

    row = await status_of(engine, user, execution_id)
    assert row.status == "failed"
    assert row.attempts == max_attempts
    assert "lease" in (row.error_message or "").lower()
    assert (await engine.get_cue(user, cue_id)).status == "failed"
    assert await engine.claimable(user) == []
    with pytest.raises(Conflict):
        await engine.claim(user, "worker-x", execution_id)
    clock.advance(UNCLAIMED_TIMEOUT * 2)
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "failed"


async def test_worker_whose_last_lease_ran_out_cannot_report_late(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user, retry={"max_attempts": 1})
    await engine.claim(user, "worker-slow")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    assert (await status_of(engine, user, execution_id)).status == "failed"

    with pytest.raises(Conflict) as err:
        await engine.report_outcome(
            user, execution_id, {"success": True, "result": "late"}, worker_id="worker-slow"
        )
    assert err.value.code == "lease_lost"
    row = await status_of(engine, user, execution_id)
    assert (row.status, row.outcome_recorded_at) == ("failed", None)


async def test_worker_may_report_on_an_execution_back_in_the_queue(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "worker-slow")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    assert (await status_of(engine, user, execution_id)).status == "pending"

    done = await engine.report_outcome(
        user, execution_id, {"success": True, "result": "late"}, worker_id="worker-slow"
    )
    assert done["outcome_recorded"] is True
    assert (await status_of(engine, user, execution_id)).status == "success"


async def test_exhausted_leases_of_a_recurring_cue_fail_the_execution_not_the_cue(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "hourly",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "0 * * * *"},
            "retry": {"max_attempts": 1},
        },
    )
    clock.advance(hours=1)
    assert await engine.fire_due() == 1
    claimed = await engine.claim(user, "worker-1")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    assert (await status_of(engine, user, claimed["execution_id"])).status == "failed"
    assert (await engine.get_cue(user, cue.id)).status == "active"


async def test_silent_registered_worker_loses_its_claim_before_the_lease_ends(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.worker_heartbeat(user, "worker-1", ["job"])
    await engine.claim(user, "worker-1")

    clock.advance(HEARTBEAT_TIMEOUT - 1)
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "delivering"

    clock.advance(2)  # 181 s of silence; the lease still has 719 s to run
    assert await engine.sweep() == 1
    row = await status_of(engine, user, execution_id)
    assert row.status == "pending"
    assert row.claimed_by_worker is None
    assert "heartbeat" in (row.error_message or "").lower()
    assert [r.id for r in await engine.claimable(user)] == [execution_id]


async def test_registered_worker_that_keeps_heartbeating_keeps_its_claim(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.worker_heartbeat(user, "worker-1")
    await engine.claim(user, "worker-1")
    for _ in range(8):  # 800 s in steps shorter than the heartbeat timeout
        clock.advance(100)
        await engine.worker_heartbeat(user, "worker-1")
        assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "delivering"


async def test_unregistered_worker_keeps_its_claim_until_the_lease_ends(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "never-sent-a-heartbeat")
    clock.advance(LEASE - 1)
    assert await engine.sweep() == 0
    assert (await status_of(engine, user, execution_id)).status == "delivering"


async def test_worker_that_lost_its_lease_cannot_overwrite_the_new_holders_outcome(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    execution_id = await due_execution(engine, clock, user)
    await engine.claim(user, "worker-old")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    await engine.claim(user, "worker-new")

    with pytest.raises(Conflict) as err:
        await engine.report_outcome(
            user, execution_id, {"success": False, "error": "too late"}, worker_id="worker-old"
        )
    assert err.value.code == "lease_lost"
    with pytest.raises(Conflict) as err:
        await engine.report_outcome(
            user, execution_id, {"success": False, "error": "too late", "worker_id": "worker-old"}
        )
    assert err.value.code == "lease_lost"
    row = await status_of(engine, user, execution_id)
    assert row.outcome_recorded_at is None
    assert row.status == "delivering"

    done = await engine.report_outcome(
        user, execution_id, {"success": True, "result": "ok"}, worker_id="worker-new"
    )
    assert done["outcome_recorded"] is True
    row = await status_of(engine, user, execution_id)
    assert row.status == "success"
    assert row.outcome_success is True
    assert row.outcome_result == "ok"
    assert row.attempts == 2

    with pytest.raises(Conflict) as err:
        await engine.report_outcome(
            user, execution_id, {"success": False, "error": "late"}, worker_id="worker-old"
        )
    assert err.value.code == "outcome_already_recorded"
    assert (await status_of(engine, user, execution_id)).outcome_success is True
