"""The scheduler through the engine API: recurring and one-time cues fire once per tick, pause
and resume, interval grids. Time moves on the injected fake clock."""

from __future__ import annotations

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.scheduler_support import (
    at,
    cue,
    new_user,
    one_time_cue,
    opened,
    recurring_cue,
    runs,
)

# recurring ------------------------------------------------------------------------------------


async def test_recurring_cron_fires_once_per_tick_and_advances_next_run(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    created = await cue(engine, user, cue_id)
    assert created.next_run == at(12, 5)
    assert created.fired_count == 0

    clock.set(at(12, 4, 59))
    assert await engine.fire_due() == 0

    for tick in (1, 2, 3):
        clock.set(at(12, 5 * tick))
        assert await engine.fire_due() == 1
        row = await cue(engine, user, cue_id)
        assert row.next_run == at(12, 5 * tick + 5)
        assert row.fired_count == tick
        assert row.status == "active"

    executions = await runs(engine, user, cue_id)
    assert [r.scheduled_for for r in executions] == [at(12, 5), at(12, 10), at(12, 15)]
    assert {r.status for r in executions} == {"pending"}
    assert {r.attempts for r in executions} == {0}


async def test_firing_twice_at_the_same_instant_creates_nothing_new(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    clock.set(at(12, 5))
    assert await engine.fire_due() == 1
    assert await engine.fire_due() == 0
    assert len(await runs(engine, user, cue_id)) == 1
    assert (await cue(engine, user, cue_id)).fired_count == 1


async def test_fire_key_stops_a_retried_batch_from_creating_the_same_run_twice(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    clock.set(at(12, 5))
    assert await engine.fire_due() == 1

    # A node that crashed after inserting but before advancing next_run leaves it behind.
    async with engine.store.tx() as tx:
        await tx.update_cue(user.user_id, cue_id, {"next_run": at(12, 5)})
    assert await engine.fire_due() == 0

    executions = await runs(engine, user, cue_id)
    assert [r.scheduled_for for r in executions] == [at(12, 5)]
    row = await cue(engine, user, cue_id)
    assert row.next_run == at(12, 10)
    assert row.fired_count == 1


async def test_cron_in_a_timezone_fires_at_local_wall_time(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(
        engine, user, "0 9 * * *", schedule={"timezone": "America/New_York"}
    )
    assert (await cue(engine, user, cue_id)).next_run == at(14, 0)  # 09:00 EST


async def test_scheduler_fires_every_due_cue_across_several_batches(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, scheduler_batch_size=7) as eng:
        user = await new_user(eng)
        for i in range(20):
            await one_time_cue(eng, user, at(12, 1), name=f"once-{i}")
        await recurring_cue(eng, user, "* * * * *", name="minutely")
        clock.set(at(12, 1))
        assert await eng.fire_due() == 21
        assert (await eng.list_executions(user, limit=100)).total == 21
        assert await eng.fire_due() == 0


async def test_one_time_cue_fires_once_and_has_no_next_run(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10))
    assert (await cue(engine, user, cue_id)).next_run == at(12, 10)
    clock.set(at(12, 10))
    assert await engine.fire_due() == 1
    row = await cue(engine, user, cue_id)
    assert row.next_run is None
    assert row.fired_count == 1
    clock.advance(hours=5)
    assert await engine.fire_due() == 0
    assert [r.scheduled_for for r in await runs(engine, user, cue_id)] == [at(12, 10)]


# pause and resume -----------------------------------------------------------------------------


async def test_paused_cue_never_fires(engine: Engine, clock: FakeClock) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    clock.set(at(12, 1))
    paused = await engine.pause_cue(user, cue_id)
    assert paused.status == "paused"
    assert paused.next_run is None

    for minute in range(5, 60, 5):
        clock.set(at(12, minute))
        assert await engine.fire_due() == 0
    clock.set(at(18, 0))
    assert await engine.fire_due() == 0
    assert await runs(engine, user, cue_id) == []
    assert (await cue(engine, user, cue_id)).fired_count == 0


async def test_resume_computes_next_run_from_now_and_skips_ticks_missed_while_paused(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    clock.set(at(12, 1))
    await engine.pause_cue(user, cue_id)

    clock.set(at(13, 0, 30))
    resumed = await engine.resume_cue(user, cue_id)
    assert resumed.status == "active"
    assert resumed.next_run == at(13, 5)
    assert await engine.fire_due() == 0

    clock.set(at(13, 5))
    assert await engine.fire_due() == 1
    assert [r.scheduled_for for r in await runs(engine, user, cue_id)] == [at(13, 5)]


async def test_one_time_cue_resumed_after_its_time_fires_once_late(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10))
    clock.set(at(12, 5))
    await engine.pause_cue(user, cue_id)
    clock.set(at(12, 30))
    assert await engine.fire_due() == 0
    await engine.resume_cue(user, cue_id)
    assert await engine.fire_due() == 1
    executions = await runs(engine, user, cue_id)
    assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 10), "pending")]


async def test_one_time_cue_with_skip_policy_resumed_after_its_time_is_missed_and_fails(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10), misfire_policy="skip")
    clock.set(at(12, 5))
    await engine.pause_cue(user, cue_id)
    clock.set(at(12, 30))
    await engine.resume_cue(user, cue_id)
    assert await engine.fire_due() == 1
    executions = await runs(engine, user, cue_id)
    assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 10), "missed")]
    assert (await cue(engine, user, cue_id)).status == "failed"
    assert await engine.claimable(user) == []


async def test_changing_the_schedule_recomputes_next_run_from_now(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    clock.set(at(12, 2))
    row = await engine.update_cue(
        user, cue_id, {"schedule": {"type": "recurring", "cron": "0 * * * *"}}
    )
    assert row.next_run == at(13, 0)
    clock.set(at(12, 5))
    assert await engine.fire_due() == 0


# interval schedules ---------------------------------------------------------------------------


async def test_interval_schedule_fires_on_its_grid_without_drifting(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    clock.set(at(12, 0, 10))
    row, _ = await engine.create_cue(
        user,
        {
            "name": "every-minute",
            "transport": "worker",
            "schedule": {"type": "interval", "interval_seconds": 60},
        },
    )
    cue_id = row.id
    assert row.next_run == at(12, 1, 10)

    clock.set(at(12, 1, 10))
    assert await engine.fire_due() == 1
    assert (await cue(engine, user, cue_id)).next_run == at(12, 2, 10)

    clock.set(at(12, 1, 40))
    assert await engine.fire_due() == 0

    clock.set(at(12, 2, 40))  # 30 s late, within the grace: the grid does not move
    assert await engine.fire_due() == 1
    assert (await cue(engine, user, cue_id)).next_run == at(12, 3, 10)

    clock.set(at(12, 5, 0))  # two ticks missed (12:03:10, 12:04:10): fire_once takes the last
    assert await engine.fire_due() == 1
    assert (await cue(engine, user, cue_id)).next_run == at(12, 5, 10)

    executions = await runs(engine, user, cue_id)
    assert [r.scheduled_for for r in executions] == [
        at(12, 1, 10),
        at(12, 2, 10),
        at(12, 4, 10),
    ]
