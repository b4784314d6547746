"""Store conformance, part two: fire keys, claims, leases, outcomes and the worker registry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from cueflow import ids
from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict, NotFound
from cueflow.states import Event, Status, move
from cueflow.testing.harness import fire, new_user, one_time_cue, only_execution
from cueflow.testing.store_fixtures import OpenEngine, StoreFixtures

LEASE = timedelta(seconds=900)
"""The default ``WORKER_CLAIM_TIMEOUT_SECONDS``."""


async def due_executions(engine: Engine, clock: FakeClock, user: Principal, count: int) -> set[str]:
    """``count`` worker executions due now; their ids."""
    for _ in range(count):
        await one_time_cue(engine, user)
    assert await fire(engine, clock) == count
    page = await engine.list_executions(user, limit=count + 1)
    return {row.id for row in page.rows}


async def claim_until_empty(engine: Engine, user: Principal, worker: str, bound: int) -> list[str]:
    """Claim-next in a loop until the queue answers ``claim_failed`` (at most ``bound`` wins,
    so a store that hands work out twice fails instead of looping forever); the ids won."""
    won: list[str] = []
    while len(won) <= bound:
        try:
            won.append((await engine.claim(user, worker))["execution_id"])
        except Conflict as exc:
            assert exc.code == "claim_failed"
            return won
        await asyncio.sleep(0)  # let the other claimers in between claims
    raise AssertionError(f"{worker} claimed more than the {bound} executions there are")


class StoreClaimTests(StoreFixtures):
    """Firing, claiming and finishing executions."""

    async def test_a_fire_key_admits_one_execution_per_cue_and_time(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)

        def execution() -> dict[str, Any]:
            return {
                "id": ids.new_execution_id(),
                "cue_id": cue.id,
                "user_id": user.user_id,
                "transport": "worker",
                "scheduled_for": cue.next_run,
                "status": Status.PENDING.value,
                "attempts": 0,
                "created_at": clock.now(),
                "updated_at": clock.now(),
            }

        async with engine.store.tx() as tx:
            assert await tx.insert_execution(execution()) is True
            assert await tx.insert_execution(execution()) is False
        assert await fire(engine, clock) == 0
        await only_execution(engine, user, cue.id)

    async def test_firing_twice_at_the_same_instant_creates_one_execution(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        assert await fire(engine, clock) == 1
        assert await fire(engine, clock, seconds=0) == 0
        execution = await only_execution(engine, user, cue.id)
        assert execution.scheduled_for == cue.next_run
        assert (await engine.get_cue(user, cue.id)).fired_count == 1

    async def test_two_nodes_firing_together_create_each_execution_once(
        self, engine: Engine, clock: FakeClock, another_engine: OpenEngine
    ) -> None:
        user = await new_user(engine)
        for _ in range(10):
            await one_time_cue(engine, user)
        clock.advance(60)
        async with another_engine() as other:
            created = await asyncio.gather(engine.fire_due(), other.fire_due())
        assert sum(created) == 10
        assert (await engine.list_executions(user, limit=50)).total == 10

    async def test_concurrent_claimers_take_each_execution_exactly_once(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        expected = await due_executions(engine, clock, user, 20)
        won = await asyncio.gather(
            *(claim_until_empty(engine, user, f"w{n}", 20) for n in range(5))
        )
        claimed = [execution for worker in won for execution in worker]
        assert sorted(claimed) == sorted(expected)

    async def test_of_racing_claims_for_one_execution_exactly_one_wins(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution] = await due_executions(engine, clock, user, 1)
        results = await asyncio.gather(
            *(engine.claim(user, f"w{n}", execution) for n in range(8)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, dict)]
        losers = [r for r in results if isinstance(r, Conflict) and r.code == "claim_failed"]
        assert (len(winners), len(losers)) == (1, 7), results

    async def test_two_nodes_claiming_together_take_each_execution_once(
        self, engine: Engine, clock: FakeClock, another_engine: OpenEngine
    ) -> None:
        user = await new_user(engine)
        expected = await due_executions(engine, clock, user, 12)
        async with another_engine() as other:
            won = await asyncio.gather(
                *(
                    claim_until_empty(node, user, f"w{n}", 12)
                    for n in range(3)
                    for node in (engine, other)
                )
            )
        assert sorted(e for worker in won for e in worker) == sorted(expected)

    async def test_claim_next_hands_out_the_oldest_due_execution_first(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        late = await one_time_cue(engine, user, delay=120)
        early = await one_time_cue(engine, user, delay=60)
        await fire(engine, clock, seconds=120)
        first = await engine.claim(user, "w1")
        assert first["execution_id"] == (await only_execution(engine, user, early.id)).id
        second = await engine.claim(user, "w1")
        assert second["execution_id"] == (await only_execution(engine, user, late.id)).id

    async def test_a_claim_counts_an_attempt_and_holds_a_lease(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        assert [row.id for row in await engine.claimable(user)] == [execution_id]
        await engine.claim(user, "w1", execution_id)
        claimed = await engine.get_execution(user, execution_id)
        assert claimed.status == "delivering"
        assert claimed.attempts == 1
        assert claimed.claimed_by_worker == "w1"
        assert claimed.lease_expires_at == clock.now() + LEASE
        assert await engine.claimable(user) == []

    async def test_an_execution_changes_only_when_its_status_and_expectations_match(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        async with engine.store.tx() as tx:
            wrong_status = await tx.update_execution(
                execution_id, {"error_message": "x"}, move=move(Event.RETRY_DUE)
            )
            wrong_holder = await tx.update_execution(
                execution_id, {"error_message": "x"}, expect={"claimed_by_worker": "someone"}
            )
            changed = await tx.update_execution(
                execution_id,
                {"claimed_by_worker": "w1", "updated_at": clock.now()},
                move=move(Event.CLAIM),
                expect={"claimed_by_worker": None, "status": Status.PENDING.value},
            )
        assert wrong_status is None and wrong_holder is None
        assert changed is not None
        assert (changed.status, changed.claimed_by_worker) == ("delivering", "w1")
        assert (await engine.get_execution(user, execution_id)).error_message is None

    async def test_an_expired_lease_returns_the_execution_to_the_queue(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        await engine.claim(user, "w1", execution_id)
        clock.advance(LEASE.total_seconds() - 1)
        assert await engine.sweep() == 0
        clock.advance(2)
        assert await engine.sweep() == 1
        assert [row.id for row in await engine.claimable(user)] == [execution_id]
        await engine.claim(user, "w2", execution_id)
        assert (await engine.get_execution(user, execution_id)).attempts == 2

    async def test_a_workers_heartbeat_extends_the_leases_it_holds(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        await engine.worker_heartbeat(user, "w1")
        await engine.claim(user, "w1", execution_id)
        clock.advance(800)
        await engine.worker_heartbeat(user, "w1")
        clock.advance(150)  # past the first lease, within the heartbeat timeout
        assert await engine.sweep() == 0
        held = await engine.get_execution(user, execution_id)
        assert (held.status, held.claimed_by_worker) == ("delivering", "w1")
        assert held.lease_expires_at == clock.now() - timedelta(seconds=150) + LEASE

    async def test_an_outcome_is_written_once_and_finishes_the_run(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        await fire(engine, clock)
        execution_id = (await only_execution(engine, user, cue.id)).id
        await engine.claim(user, "w1", execution_id)
        await engine.report_outcome(user, execution_id, {"success": True, "result": "done"}, "w1")
        with pytest.raises(Conflict) as again:
            await engine.report_outcome(user, execution_id, {"success": False, "error": "no"})
        assert again.value.code == "outcome_already_recorded"
        finished = await engine.get_execution(user, execution_id)
        assert (finished.status, finished.outcome_result) == ("success", "done")
        assert finished.outcome_state == "reported_success"
        assert (await engine.get_cue(user, cue.id)).status == "completed"

    async def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_holders_outcome(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        await engine.claim(user, "w1", execution_id)
        clock.advance(LEASE.total_seconds() + 1)
        await engine.sweep()
        await engine.claim(user, "w2", execution_id)
        with pytest.raises(Conflict) as late:
            await engine.report_outcome(user, execution_id, {"success": False}, "w1")
        assert late.value.code == "lease_lost"
        await engine.report_outcome(user, execution_id, {"success": True}, "w2")
        assert (await engine.get_execution(user, execution_id)).status == "success"

    async def test_an_execution_nobody_claims_is_missed_after_the_unclaimed_timeout(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        [execution_id] = await due_executions(engine, clock, user, 1)
        clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
        assert await engine.sweep() == 1
        assert (await engine.get_execution(user, execution_id)).status == "missed"

    async def test_a_worker_heartbeat_keeps_one_row_per_worker_and_user(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user, stranger = await new_user(engine), await new_user(engine)
        started = clock.now()
        await engine.worker_heartbeat(user, "w1", ["a"])
        clock.advance(10)
        await engine.worker_heartbeat(user, "w1", ["b"])
        clock.advance(5)
        await engine.worker_heartbeat(user, "w2")
        workers = await engine.list_workers(user)
        assert [w.worker_id for w in workers] == ["w2", "w1"]
        assert workers[1].handlers == ["b"]
        assert workers[1].registered_since == started
        assert workers[1].last_heartbeat == started + timedelta(seconds=10)
        assert await engine.list_workers(stranger) == []
        _, warning = await engine.create_cue(
            user, {"name": "has-workers", "transport": "worker", "schedule": _every_hour()}
        )
        assert warning is None
        _, warning = await engine.create_cue(
            stranger, {"name": "no-workers", "transport": "worker", "schedule": _every_hour()}
        )
        assert warning is not None
        await engine.delete_worker(user, "w1")
        assert [w.worker_id for w in await engine.list_workers(user)] == ["w2"]
        with pytest.raises(NotFound):
            await engine.delete_worker(user, "w1")

    async def test_a_poll_naming_its_worker_registers_it_and_keeps_its_handlers(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        started = clock.now()
        await engine.claimable(user, worker_id="poller")
        await engine.worker_heartbeat(user, "w1", ["a"])
        clock.advance(60)
        await engine.claimable(user, worker_id="w1")
        workers = await engine.list_workers(user)
        assert [w.worker_id for w in workers] == ["w1", "poller"]
        assert workers[0].handlers == ["a"]
        assert workers[0].last_heartbeat == started + timedelta(seconds=60)
        assert workers[1].handlers is None
        assert workers[1].registered_since == started


def _every_hour() -> dict[str, Any]:
    return {"type": "recurring", "cron": "0 * * * *"}
