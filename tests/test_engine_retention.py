"""History retention through the engine API on both stores: old ended executions, flow runs,
alerts and expired keys go; recent and unfinished ones stay; each cue keeps its newest
finished runs; batches are bounded; a dry run deletes nothing; the retention loop prunes by
itself; two engines on one database never prune at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import NotFound
from cueflow.retention import KEEP_LATEST, parse_age
from cueflow.store import ExecutionFilter
from tests.claims_support import is_postgres, new_user, opened
from tests.conftest import eventually
from tests.flows_support import task
from tests.retention_support import kept, recurring, seed

DAY = timedelta(days=1)
MONTH = timedelta(days=30)


async def test_old_ended_executions_go_while_recent_and_unfinished_ones_stay(
    engine: Engine,
) -> None:
    user = await new_user(engine)
    cue_id = await recurring(engine, user)
    old = []
    for status in ("success", "failed", "missed"):
        old += await seed(engine, user, cue_id, status, MONTH + 2 * DAY, count=3)
    unfinished = []
    for status in ("pending", "delivering", "retrying", "retry_ready"):
        unfinished += await seed(engine, user, cue_id, status, MONTH + DAY)
    recent = await seed(engine, user, cue_id, "success", MONTH - DAY, count=KEEP_LATEST)

    report = await engine.prune(MONTH)

    assert report.complete
    assert report.counts["executions"] == len(old) == 9
    assert await kept(engine, user, old) == []
    assert await kept(engine, user, unfinished) == unfinished
    assert await kept(engine, user, recent) == recent
    assert (await engine.prune(MONTH)).deleted == 0


async def test_each_cue_keeps_its_newest_finished_runs_however_old(engine: Engine) -> None:
    user = await new_user(engine)
    busy = await recurring(engine, user, "busy")
    quiet = await recurring(engine, user, "quiet")
    busy_runs = await seed(engine, user, busy, "failed", MONTH * 3, count=KEEP_LATEST + 4)
    quiet_runs = await seed(engine, user, quiet, "success", MONTH * 3, count=1)
    unclaimed = await seed(engine, user, quiet, "missed", MONTH * 2, count=2)

    report = await engine.prune(MONTH)

    assert report.counts["executions"] == 4 + 2
    # the consecutive-failure alert still sees a streak on the busy cue
    assert await kept(engine, user, busy_runs) == busy_runs[-KEEP_LATEST:]
    assert await kept(engine, user, quiet_runs) == quiet_runs
    assert await kept(engine, user, unclaimed) == []  # missed runs are no finished runs


async def test_a_dry_run_counts_per_kind_and_deletes_nothing(engine: Engine) -> None:
    user = await new_user(engine)
    cue_id = await recurring(engine, user)
    old = await seed(engine, user, cue_id, "success", MONTH * 2, count=5)
    await seed(engine, user, cue_id, "success", DAY, count=KEEP_LATEST)
    async with engine.store.tx() as tx:
        await tx.insert_alert(
            {
                "id": str(uuid.uuid4()),
                "user_id": user.user_id,
                "cue_id": cue_id,
                "alert_type": "consecutive_failures",
                "message": "old",
                "created_at": engine.clock.now() - MONTH * 2,
            }
        )

    dry = await engine.prune(MONTH, dry_run=True)

    assert dry.counts == {
        "executions": 5,
        "flow_runs": 0,
        "flow_steps": 0,
        "alerts": 1,
        "fire_keys": 0,
        "rate_limit_starts": 0,
    }
    assert dry.batches == 0
    assert await kept(engine, user, old) == old
    assert (await engine.list_alerts(user))[1] == 1
    done = await engine.prune(MONTH)
    assert done.counts == dry.counts
    assert (await engine.list_alerts(user))[1] == 0


async def test_batches_are_bounded(database_url: str, clock: FakeClock) -> None:
    async with opened(database_url, clock, retention_batch=4) as engine:
        user = await new_user(engine)
        cue_id = await recurring(engine, user)
        old = await seed(engine, user, cue_id, "success", MONTH * 2, count=11)
        await seed(engine, user, cue_id, "success", DAY, count=KEEP_LATEST)

        report = await engine.prune(MONTH)

        assert report.counts["executions"] == 11
        assert report.largest_batch == 4
        assert report.batches == 3  # 4 + 4 + 3
        assert await kept(engine, user, old) == []


async def test_ended_flow_runs_go_with_their_steps_and_executions(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    flow = await engine.create_flow(
        user, {"name": "pipeline", "steps": [task("extract"), task("load", "extract")]}
    )
    cancelled, _, _ = await engine.start_flow_run(user, flow.id, {"input": {}})
    await engine.cancel_flow_run(user, cancelled.id)
    clock.advance(timedelta(days=31).total_seconds())
    still_open, _, _ = await engine.start_flow_run(user, flow.id, {"input": {}})
    old_steps = (await engine.list_executions(user, ExecutionFilter(flow_run_id=cancelled.id))).rows
    assert old_steps

    dry = await engine.prune(MONTH, dry_run=True)
    report = await engine.prune(MONTH)

    assert report.counts["flow_runs"] == dry.counts["flow_runs"] == 1
    assert report.counts["flow_steps"] == dry.counts["flow_steps"] >= 1
    assert report.counts["executions"] == dry.counts["executions"] == len(old_steps)
    with pytest.raises(NotFound):
        await engine.get_flow_run(user, cancelled.id)
    assert await kept(engine, user, [row.id for row in old_steps]) == []
    run, steps = await engine.get_flow_run(user, still_open.id)
    assert run.status not in ("cancelled", "failed", "succeeded") and steps


async def test_expired_fire_keys_go_and_a_kept_key_still_repeats_its_fire(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring(engine, user)
    await engine.fire_cue(user, cue_id, idempotency_key="nightly-1")
    clock.advance(hours=1)
    first = await engine.fire_cue(user, cue_id, idempotency_key="nightly-2")
    assert (await engine.prune(MONTH)).counts["fire_keys"] == 0
    again = await engine.fire_cue(user, cue_id, idempotency_key="nightly-2")
    assert again.repeated and again.id == first.id
    clock.advance(hours=24)  # the first key's window is over, the second's ends now
    assert (await engine.prune(MONTH)).counts["fire_keys"] == 1
    clock.advance(seconds=1)
    assert (await engine.prune(MONTH)).counts["fire_keys"] == 1


async def test_the_retention_loop_prunes_by_itself_when_retention_days_is_set(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, retention_days=30) as engine:
        user = await new_user(engine)
        cue_id = await recurring(engine, user)
        old = await seed(engine, user, cue_id, "success", MONTH * 2, count=5)
        recent = await seed(engine, user, cue_id, "success", DAY, count=KEEP_LATEST)
        await engine.start()
        assert "retention" in engine.loops.running()

        async def pruned() -> bool:
            return await kept(engine, user, old) == []

        await eventually(pruned)
        assert await kept(engine, user, recent) == recent
    async with opened(database_url, clock) as engine:
        await engine.start()
        assert "retention" not in engine.loops.running()  # off by default


async def test_two_engines_pruning_at_once_delete_each_row_once(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        opened(database_url, clock, retention_batch=5) as one,
        opened(database_url, clock, retention_batch=5) as two,
    ):
        user = await new_user(one)
        cue_id = await recurring(one, user)
        await seed(one, user, cue_id, "success", MONTH * 2, count=60)
        await seed(one, user, cue_id, "success", DAY, count=KEEP_LATEST)

        reports = await asyncio.gather(one.prune(MONTH), two.prune(MONTH))
        leftover = await one.prune(MONTH)

        total = sum(r.counts["executions"] for r in (*reports, leftover))
        assert total == 60
        assert (await one.list_executions(user, limit=100)).total == KEEP_LATEST


async def test_a_node_that_finds_the_retention_lock_taken_skips_its_prune(
    database_url: str, clock: FakeClock
) -> None:
    if not is_postgres(database_url):
        pytest.skip("one writer at a time on SQLite: there is no lock to take")
    async with (
        opened(database_url, clock) as one,
        opened(database_url, clock) as two,
    ):
        user = await new_user(one)
        cue_id = await recurring(one, user)
        old = await seed(one, user, cue_id, "success", MONTH * 2, count=4)
        await seed(one, user, cue_id, "success", DAY, count=KEEP_LATEST)
        async with one.store.tx() as tx:
            assert await tx.try_lock_retention()  # node one is pruning
            skipped = await two.prune(MONTH)
        assert not skipped.complete and skipped.deleted == 0
        assert await kept(one, user, old) == old
        done = await two.prune(MONTH)
        assert done.complete and done.counts["executions"] == 4


async def test_with_a_monthly_limit_this_months_executions_stay(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, monthly_execution_limit=1000) as engine:
        clock.set(clock.now().replace(day=20, hour=12))
        user = await new_user(engine)
        cue_id = await recurring(engine, user)
        this_month = await seed(engine, user, cue_id, "success", timedelta(days=10), count=5)
        await seed(engine, user, cue_id, "success", DAY, count=KEEP_LATEST)

        report = await engine.prune(timedelta(days=2))

        assert report.counts["executions"] == 0
        assert await kept(engine, user, this_month) == this_month


def test_ages_are_written_with_a_unit() -> None:
    assert parse_age("30d") == timedelta(days=30)
    assert parse_age("12h") == timedelta(hours=12)
    assert parse_age("90m") == timedelta(minutes=90)
    for bad in ("30", "d", "-1d", "0d", "3w"):
        with pytest.raises(ValueError):
            parse_age(bad)
