"""Racing claimers through the engine API: claim-next and claim-by-id workers, two engines
firing and claiming at once; every execution is handed out exactly once."""

from __future__ import annotations

import asyncio
import random

import pytest

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict
from tests.claims_support import (
    LEASE,
    conflict_code,
    is_postgres,
    many_due_executions,
    new_user,
    one_time_cue,
    opened,
    status_of,
)

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
        assert result == {
            "claimed": True,
            "execution_id": execution_id,
            "lease_seconds": LEASE,
            "id": execution_id,
            "status": "claimed",
            "claimed_at": clock.now(),
        }
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
