"""Claims and leases through the engine API: racing claimers, lease expiry, heartbeats,
stale workers, lost leases and unclaimed executions. Time moves on the injected fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict, CueflowError
from cueflow.records import Cue, Execution
from cueflow.store import ExecutionFilter
from tests.conftest import make_settings

LEASE = 900
HEARTBEAT_TIMEOUT = 180
UNCLAIMED_TIMEOUT = 900


async def new_user(engine: Engine, email: str = "a@example.com") -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def one_time_cue(
    engine: Engine, user: Principal, name: str, delay: float = 60, **extra: Any
) -> Cue:
    at = engine.clock.now() + timedelta(seconds=delay)
    spec = {
        "name": name,
        "transport": "worker",
        "schedule": {"type": "once", "at": at.isoformat()},
        "payload": {"task": "job"},
        **extra,
    }
    cue, _ = await engine.create_cue(user, spec)
    return cue


async def due_execution(
    engine: Engine, clock: FakeClock, user: Principal, name: str = "job", **extra: Any
) -> str:
    """Create a one-time worker cue due in 60 s, move there, fire it; the execution id."""
    cue = await one_time_cue(engine, user, name, **extra)
    clock.advance(60)
    assert await engine.fire_due() == 1
    rows, total = await engine.cue_executions(user, cue.id)
    assert total == 1
    return rows[0].id


async def many_due_executions(
    engine: Engine, clock: FakeClock, user: Principal, count: int
) -> set[str]:
    """``count`` one-time worker cues due at the same instant, fired; their execution ids."""
    for i in range(count):
        await one_time_cue(engine, user, f"job-{i:03d}")
    clock.advance(60)
    assert await engine.fire_due() == count
    page = await engine.list_executions(user, limit=count + 10)
    assert page.total == count
    return {row.id for row in page.rows}


async def status_of(engine: Engine, user: Principal, execution_id: str) -> Execution:
    return await engine.get_execution(user, execution_id)


def conflict_code(error: BaseException) -> str | None:
    return error.code if isinstance(error, Conflict) else None


@asynccontextmanager
async def opened(url: str, clock: FakeClock, **overrides: Any) -> AsyncIterator[Engine]:
    eng = Engine(make_settings(url, **overrides), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


# racing claimers ------------------------------------------------------------------------------


async def claim_next_until_conflict(engine: Engine, user: Principal, worker: str) -> list[str]:
    won: list[str] = []
    while True:
        try:
            result = await engine.claim(user, worker)
        except Conflict as exc:
            assert exc.code == "claim_failed"
            return won
        won.append(result["execution_id"])


async def claim_random_by_id_until_empty(
    engine: Engine, user: Principal, worker: str, rng: random.Random
) -> tuple[list[str], int]:
    won: list[str] = []
    lost = 0
    for _ in range(2_000):  # bounded: 200 items, each lost race removes a candidate
        rows = await engine.claimable(user)
        if not rows:
            return won, lost
        target = rng.choice(rows).id
        try:
            result = await engine.claim(user, worker, target)
        except Conflict as exc:
            assert exc.code == "claim_failed"
            lost += 1
            continue
        assert result["execution_id"] == target
        won.append(target)
    raise AssertionError("claimer did not drain the queue")


async def test_eight_claim_next_workers_claim_each_of_200_executions_exactly_once(
    engine: Engine, clock: FakeClock, database_url: str
) -> None:
    user = await new_user(engine)
    fired = await many_due_executions(engine, clock, user, 200)

    results = await asyncio.gather(
        *(claim_next_until_conflict(engine, user, f"worker-{i}") for i in range(8))
    )

    claimed = [eid for won in results for eid in won]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200, "an execution was handed out twice"
    assert set(claimed) == fired
    if is_postgres(database_url):
        assert sum(1 for won in results if won) > 1, "claims did not run concurrently"
    page = await engine.list_executions(user, limit=300)
    assert {row.status for row in page.rows} == {"delivering"}
    assert {row.attempts for row in page.rows} == {1}
    holders = {row.id: row.claimed_by_worker for row in page.rows}
    for i, won in enumerate(results):
        assert all(holders[eid] == f"worker-{i}" for eid in won)
    assert await engine.claimable(user) == []


async def test_eight_claim_by_id_workers_picking_random_items_claim_each_exactly_once(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    fired = await many_due_executions(engine, clock, user, 200)

    results = await asyncio.gather(
        *(
            claim_random_by_id_until_empty(engine, user, f"worker-{i}", random.Random(i))
            for i in range(8)
        )
    )

    claimed = [eid for won, _ in results for eid in won]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200, "an execution was handed out twice"
    assert set(claimed) == fired
    page = await engine.list_executions(user, limit=300)
    assert {row.attempts for row in page.rows} == {1}
    with pytest.raises(Conflict) as err:
        await engine.claim(user, "late-worker")
    assert err.value.code == "claim_failed"


async def test_eight_workers_racing_for_the_same_execution_one_wins_seven_get_claim_failed(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    fired = await many_due_executions(engine, clock, user, 5)

    for execution_id in sorted(fired):
        outcomes = await asyncio.gather(
            *(engine.claim(user, f"worker-{i}", execution_id) for i in range(8)),
            return_exceptions=True,
        )
        wins = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, dict)]
        losses = [o for o in outcomes if not isinstance(o, dict)]
        assert len(wins) == 1, outcomes
        assert [conflict_code(o) for o in losses] == ["claim_failed"] * 7, losses
        winner, result = wins[0]
        assert result == {"claimed": True, "execution_id": execution_id, "lease_seconds": LEASE}
        row = await status_of(engine, user, execution_id)
        assert row.status == "delivering"
        assert row.claimed_by_worker == f"worker-{winner}"
        assert row.attempts == 1


async def test_two_engines_firing_concurrently_create_each_execution_exactly_once(
    database_url: str, clock: FakeClock
) -> None:
    if not is_postgres(database_url):
        pytest.skip("several nodes on one database is the PostgreSQL deployment")
    async with (
        opened(database_url, clock, scheduler_batch_size=7) as e1,
        opened(database_url, clock, scheduler_batch_size=7) as e2,
    ):
        user = await new_user(e1)
        for i in range(60):
            await one_time_cue(e1 if i % 2 else e2, user, f"once-{i:02d}")
        for i in range(20):
            await e1.create_cue(
                user,
                {
                    "name": f"cron-{i:02d}",
                    "transport": "worker",
                    "schedule": {"type": "recurring", "cron": "* * * * *"},
                },
            )
        clock.advance(60)  # 12:01: every one-time cue and every per-minute cron is due

        created = await asyncio.gather(e1.fire_due(), e2.fire_due())

        assert sum(created) == 80
        page = await e2.list_executions(user, limit=500)
        assert page.total == 80
        keys = [(row.cue_id, row.scheduled_for) for row in page.rows]
        assert len(set(keys)) == 80, "a fire key was used twice"
        cues, _ = await e1.list_cues(user, limit=100)
        assert {cue.fired_count for cue in cues} == {1}
        assert sum(await asyncio.gather(e1.fire_due(), e2.fire_due())) == 0

        results = await asyncio.gather(
            *(claim_next_until_conflict(e1 if i % 2 else e2, user, f"worker-{i}") for i in range(8))
        )
        claimed = [eid for won in results for eid in won]
        assert len(claimed) == 80
        assert len(set(claimed)) == 80, "two engines handed out the same execution"
        assert set(claimed) == {row.id for row in page.rows}


async def test_two_engines_claiming_the_same_execution_by_id_hand_it_out_once(
    database_url: str, clock: FakeClock
) -> None:
    if not is_postgres(database_url):
        pytest.skip("several nodes on one database is the PostgreSQL deployment")
    async with opened(database_url, clock) as e1, opened(database_url, clock) as e2:
        user = await new_user(e1)
        fired = await many_due_executions(e1, clock, user, 3)
        for execution_id in sorted(fired):
            outcomes = await asyncio.gather(
                *((e1 if i % 2 else e2).claim(user, f"worker-{i}", execution_id) for i in range(8)),
                return_exceptions=True,
            )
            assert sum(isinstance(o, dict) for o in outcomes) == 1, outcomes
            assert sorted(filter(None, map(conflict_code, outcomes))) == ["claim_failed"] * 7


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
