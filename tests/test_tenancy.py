"""Tenancy through the engine API: user B can never see, claim, heartbeat, report on or list
user A's cues, executions or workers; every call is scoped to its caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.cues import NO_WORKER_WARNING
from cueflow.engine import Engine
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.records import Execution
from cueflow.store import ExecutionFilter


async def new_user(engine: Engine, email: str) -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def worker_cue(
    engine: Engine, user: Principal, name: str, schedule: dict[str, Any]
) -> tuple[str, str | None]:
    cue, warning = await engine.create_cue(
        user,
        {"name": name, "transport": "worker", "schedule": schedule, "payload": {"task": "job"}},
    )
    return cue.id, warning


@dataclass
class World:
    a: Principal
    b: Principal
    a_cue: str
    a_pending: str
    """A's execution waiting for a worker."""
    a_claimed: str
    """A's execution claimed by A's worker ``shared-name``."""


@pytest.fixture
async def world(engine: Engine, clock: FakeClock) -> World:
    """A with a live worker, a recurring cue and two executions (one claimed); B empty."""
    a = await new_user(engine, "a@example.com")
    b = await new_user(engine, "b@example.com")
    await engine.worker_heartbeat(a, "shared-name", ["job"])
    a_cue, _ = await worker_cue(engine, a, "nightly", {"type": "recurring", "cron": "*/5 * * * *"})
    clock.advance(minutes=5)
    assert await engine.fire_due() == 1
    first = (await engine.claim(a, "shared-name"))["execution_id"]
    clock.advance(minutes=5)
    assert await engine.fire_due() == 1
    second = [r.id for r in await engine.claimable(a)]
    assert len(second) == 1
    await engine.worker_heartbeat(a, "shared-name", ["job"])
    return World(a=a, b=b, a_cue=a_cue, a_pending=second[0], a_claimed=first)


def assert_not_found(error: pytest.ExceptionInfo[CueflowError], code: str) -> None:
    assert isinstance(error.value, NotFound), error.value
    assert (error.value.status, error.value.code) == (404, code)


async def a_execution(engine: Engine, world: World, execution_id: str) -> Execution:
    return await engine.get_execution(world.a, execution_id)


# cues -----------------------------------------------------------------------------------------


async def test_other_user_cannot_read_or_list_a_cue(engine: Engine, world: World) -> None:
    with pytest.raises(NotFound) as err:
        await engine.get_cue(world.b, world.a_cue)
    assert_not_found(err, "cue_not_found")
    assert await engine.list_cues(world.b) == ([], 0)
    for status in ("active", "paused"):
        assert await engine.list_cues(world.b, status=status) == ([], 0)
    assert await engine.cue_executions(world.b, world.a_cue) == ([], 0)


async def test_other_user_cannot_change_pause_resume_or_delete_a_cue(
    engine: Engine, world: World
) -> None:
    calls = [
        engine.update_cue(world.b, world.a_cue, {"name": "stolen"}),
        engine.pause_cue(world.b, world.a_cue),
        engine.resume_cue(world.b, world.a_cue),
        engine.delete_cue(world.b, world.a_cue),
    ]
    for call in calls:
        with pytest.raises(NotFound) as err:
            await call
        assert_not_found(err, "cue_not_found")
    cue = await engine.get_cue(world.a, world.a_cue)
    assert (cue.name, cue.status) == ("nightly", "active")
    assert (await engine.cue_executions(world.a, world.a_cue))[1] == 2


async def test_cue_names_are_unique_per_user_not_globally(engine: Engine, world: World) -> None:
    b_cue, _ = await worker_cue(
        engine, world.b, "nightly", {"type": "recurring", "cron": "0 * * * *"}
    )
    assert b_cue != world.a_cue
    assert [c.id for c in (await engine.list_cues(world.b))[0]] == [b_cue]
    assert [c.id for c in (await engine.list_cues(world.a))[0]] == [world.a_cue]


# executions -------------------------------------------------------------------------------------


async def test_other_user_cannot_read_or_list_executions(engine: Engine, world: World) -> None:
    for execution_id in (world.a_pending, world.a_claimed):
        with pytest.raises(NotFound) as err:
            await engine.get_execution(world.b, execution_id)
        assert_not_found(err, "execution_not_found")
    filters = [
        None,
        ExecutionFilter(cue_id=world.a_cue),
        ExecutionFilter(statuses=["pending", "delivering"]),
        ExecutionFilter(worker_id="shared-name"),
    ]
    for where in filters:
        page = await engine.list_executions(world.b, where)
        assert (page.rows, page.total, page.oldest_claimed_at) == ([], 0, None)


async def test_other_user_sees_nothing_claimable_and_cannot_claim(
    engine: Engine, world: World
) -> None:
    assert await engine.claimable(world.b) == []
    assert await engine.claimable(world.b, task="job") == []
    with pytest.raises(Conflict) as err:
        await engine.claim(world.b, "b-worker")
    assert err.value.code == "claim_failed"
    for execution_id in (world.a_pending, world.a_claimed):
        with pytest.raises(Conflict) as err:
            await engine.claim(world.b, "b-worker", execution_id)
        assert err.value.code == "claim_failed"
    row = await a_execution(engine, world, world.a_pending)
    assert (row.status, row.attempts, row.claimed_by_worker) == ("pending", 0, None)
    row = await a_execution(engine, world, world.a_claimed)
    assert (row.status, row.claimed_by_worker) == ("delivering", "shared-name")


async def test_other_user_claiming_next_only_ever_gets_its_own_executions(
    engine: Engine, world: World, clock: FakeClock
) -> None:
    b_cue, _ = await worker_cue(
        engine, world.b, "b-job", {"type": "recurring", "cron": "* * * * *"}
    )
    clock.advance(minutes=1)
    await engine.fire_due()
    b_rows = await engine.claimable(world.b)
    assert len(b_rows) == 1
    assert {r.cue_id for r in b_rows} == {b_cue}
    assert world.a_pending in {r.id for r in await engine.claimable(world.a)}

    claimed = await engine.claim(world.b, "b-worker")
    assert claimed["execution_id"] == b_rows[0].id
    with pytest.raises(Conflict) as err:
        await engine.claim(world.b, "b-worker")
    assert err.value.code == "claim_failed"
    assert (await a_execution(engine, world, world.a_pending)).status == "pending"


async def test_other_user_cannot_heartbeat_an_execution(engine: Engine, world: World) -> None:
    before = (await a_execution(engine, world, world.a_claimed)).lease_expires_at
    for worker_id in ("shared-name", "b-worker", None):
        with pytest.raises(NotFound) as err:
            await engine.heartbeat_execution(world.b, world.a_claimed, worker_id)
        assert_not_found(err, "execution_not_found")
    with pytest.raises(NotFound) as err:
        await engine.heartbeat_execution(world.b, world.a_pending)
    assert_not_found(err, "execution_not_found")
    after = await a_execution(engine, world, world.a_claimed)
    assert after.lease_expires_at == before
    assert after.last_heartbeat_at is None


async def test_other_user_cannot_report_an_outcome(engine: Engine, world: World) -> None:
    for execution_id in (world.a_pending, world.a_claimed):
        for worker_id in ("shared-name", None):
            with pytest.raises(NotFound) as err:
                await engine.report_outcome(
                    world.b, execution_id, {"success": False, "error": "x"}, worker_id=worker_id
                )
            assert_not_found(err, "execution_not_found")
        row = await a_execution(engine, world, execution_id)
        assert row.outcome_recorded_at is None
        assert row.status in ("pending", "delivering")
    assert (await engine.get_cue(world.a, world.a_cue)).run_count == 0
    done = await engine.report_outcome(
        world.a, world.a_claimed, {"success": True}, worker_id="shared-name"
    )
    assert done["outcome_recorded"] is True


# workers --------------------------------------------------------------------------------------


async def test_other_user_cannot_list_or_delete_a_worker(engine: Engine, world: World) -> None:
    assert await engine.list_workers(world.b) == []
    with pytest.raises(NotFound) as err:
        await engine.delete_worker(world.b, "shared-name")
    assert_not_found(err, "worker_not_found")
    assert [w.worker_id for w in await engine.list_workers(world.a)] == ["shared-name"]


async def test_worker_ids_are_per_user(engine: Engine, world: World, clock: FakeClock) -> None:
    clock.advance(seconds=30)
    await engine.worker_heartbeat(world.b, "shared-name", ["other"])
    a_workers = await engine.list_workers(world.a)
    b_workers = await engine.list_workers(world.b)
    assert [(w.worker_id, w.handlers) for w in a_workers] == [("shared-name", ["job"])]
    assert [(w.worker_id, w.handlers) for w in b_workers] == [("shared-name", ["other"])]
    assert a_workers[0].last_heartbeat < b_workers[0].last_heartbeat
    await engine.delete_worker(world.b, "shared-name")
    assert [w.worker_id for w in await engine.list_workers(world.a)] == ["shared-name"]


async def test_other_users_live_worker_does_not_keep_a_stale_worker_claim(
    engine: Engine, world: World, clock: FakeClock
) -> None:
    # A's "shared-name" last beat when the world was built; B's namesake keeps beating.
    for _ in range(4):
        clock.advance(seconds=60)
        await engine.worker_heartbeat(world.b, "shared-name")
    await engine.sweep()
    row = await a_execution(engine, world, world.a_claimed)
    assert row.status == "pending"
    assert "heartbeat" in (row.error_message or "").lower()


async def test_other_users_stale_worker_does_not_release_a_live_workers_claim(
    engine: Engine, world: World, clock: FakeClock
) -> None:
    await engine.worker_heartbeat(world.b, "shared-name")  # B's worker then goes silent
    for _ in range(4):
        clock.advance(seconds=60)
        await engine.worker_heartbeat(world.a, "shared-name")
    await engine.sweep()
    row = await a_execution(engine, world, world.a_claimed)
    assert (row.status, row.claimed_by_worker) == ("delivering", "shared-name")


async def test_no_worker_warning_counts_only_the_callers_workers(
    engine: Engine, world: World, clock: FakeClock
) -> None:
    at = (clock.now() + timedelta(hours=1)).isoformat()
    _, a_warning = await worker_cue(engine, world.a, "a-once", {"type": "once", "at": at})
    _, b_warning = await worker_cue(engine, world.b, "b-once", {"type": "once", "at": at})
    assert a_warning is None
    assert b_warning == NO_WORKER_WARNING


async def test_sweeping_and_firing_leave_each_users_rows_with_their_owner(
    engine: Engine, world: World, clock: FakeClock
) -> None:
    await worker_cue(engine, world.b, "b-job", {"type": "recurring", "cron": "*/5 * * * *"})
    clock.advance(minutes=5)
    await engine.fire_due()
    a_page = await engine.list_executions(world.a, limit=100)
    b_page = await engine.list_executions(world.b, limit=100)
    assert {r.user_id for r in a_page.rows} == {world.a.user_id}
    assert {r.user_id for r in b_page.rows} == {world.b.user_id}
    assert a_page.total == 3
    assert b_page.total == 1
