"""The scheduler through the engine API: cron and interval ticks, the fire key, pause and
resume, daylight saving time and the misfire policies. Time moves on the injected fake clock,
which starts on Monday 2026-01-05 at 12:00:00 UTC."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.records import Cue, Execution
from tests.conftest import make_settings

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
EVERY_5_MIN = "*/5 * * * *"


def at(hour: int, minute: int, second: int = 0) -> datetime:
    """A time on the fake clock's first day (UTC)."""
    return START.replace(hour=hour, minute=minute, second=second)


async def new_user(engine: Engine, email: str = "a@example.com") -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def recurring_cue(
    engine: Engine,
    user: Principal,
    cron: str = EVERY_5_MIN,
    name: str = "every-5",
    **extra: Any,
) -> str:
    row, _ = await engine.create_cue(
        user,
        {
            "name": name,
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": cron, **extra.pop("schedule", {})},
            **extra,
        },
    )
    return row.id


async def one_time_cue(
    engine: Engine, user: Principal, when: datetime, name: str = "once", **extra: Any
) -> str:
    row, _ = await engine.create_cue(
        user,
        {
            "name": name,
            "transport": "worker",
            "schedule": {"type": "once", "at": when.isoformat()},
            **extra,
        },
    )
    return row.id


async def runs(engine: Engine, user: Principal, cue_id: str) -> list[Execution]:
    """The cue's executions, oldest ``scheduled_for`` first."""
    rows, total = await engine.cue_executions(user, cue_id, limit=500)
    assert len(rows) == total
    return sorted(rows, key=lambda r: r.scheduled_for)


async def cue(engine: Engine, user: Principal, cue_id: str) -> Cue:
    return await engine.get_cue(user, cue_id)


@asynccontextmanager
async def opened(url: str, clock: FakeClock, **overrides: Any) -> AsyncIterator[Engine]:
    eng = Engine(make_settings(url, **overrides), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()


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


# daylight saving time -------------------------------------------------------------------------


async def step_and_fire(engine: Engine, clock: FakeClock, days: int, step: timedelta) -> None:
    end = clock.now() + timedelta(days=days)
    while clock.now() < end:
        clock.advance(step.total_seconds())
        await engine.fire_due()


@pytest.mark.parametrize("step_minutes", [30, 60])
async def test_daily_cron_fires_once_per_local_day_across_spring_forward(
    engine: Engine, clock: FakeClock, step_minutes: int
) -> None:
    clock.set(datetime(2026, 3, 6, 12, 0, tzinfo=UTC))
    user = await new_user(engine)
    cue_id = await recurring_cue(
        engine, user, "30 2 * * *", name="nightly", schedule={"timezone": "America/New_York"}
    )

    await step_and_fire(engine, clock, 4, timedelta(minutes=step_minutes))

    scheduled = [r.scheduled_for for r in await runs(engine, user, cue_id)]
    assert [s.astimezone(NEW_YORK).date() for s in scheduled] == [
        date(2026, 3, 7),
        date(2026, 3, 8),
        date(2026, 3, 9),
        date(2026, 3, 10),
    ]
    assert scheduled == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 02:30 does not exist: 03:30 EDT
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
        datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
    ]
    assert all(a < b for a, b in itertools.pairwise(scheduled))
    assert (await cue(engine, user, cue_id)).fired_count == 4


async def test_daily_cron_in_the_repeated_hour_fires_twice_on_fall_back(
    engine: Engine, clock: FakeClock
) -> None:
    clock.set(datetime(2026, 10, 30, 12, 0, tzinfo=UTC))
    user = await new_user(engine)
    cue_id = await recurring_cue(
        engine, user, "30 1 * * *", name="nightly", schedule={"timezone": "America/New_York"}
    )

    await step_and_fire(engine, clock, 4, timedelta(minutes=30))

    scheduled = [r.scheduled_for for r in await runs(engine, user, cue_id)]
    assert scheduled == [
        datetime(2026, 10, 31, 5, 30, tzinfo=UTC),
        datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST
        datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
        datetime(2026, 11, 3, 6, 30, tzinfo=UTC),
    ]


# misfire policies -----------------------------------------------------------------------------

TEN_TICKS_MISSED = at(12, 52, 30)
"""For a */5 cue created at 12:00: ticks 12:05 ... 12:50 are past, 12:55 is next."""


async def test_fire_once_is_the_default_and_fires_only_the_most_recent_missed_tick(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user)
    assert (await cue(engine, user, cue_id)).misfire_policy == "fire_once"

    clock.set(TEN_TICKS_MISSED)
    assert await engine.fire_due() == 1

    executions = await runs(engine, user, cue_id)
    assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 50), "pending")]
    row = await cue(engine, user, cue_id)
    assert row.next_run == at(12, 55)
    assert row.next_run > clock.now()
    assert await engine.fire_due() == 0

    clock.set(at(12, 55))
    assert await engine.fire_due() == 1
    assert [r.scheduled_for for r in await runs(engine, user, cue_id)] == [
        at(12, 50),
        at(12, 55),
    ]


async def test_skip_policy_records_one_missed_execution_and_moves_on(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user, misfire_policy="skip")

    clock.set(TEN_TICKS_MISSED)
    assert await engine.fire_due() == 1

    executions = await runs(engine, user, cue_id)
    assert len(executions) == 1
    assert executions[0].status == "missed"
    assert "10" in (executions[0].error_message or "")
    row = await cue(engine, user, cue_id)
    assert row.next_run == at(12, 55)
    assert row.status == "active"
    assert await engine.claimable(user) == []
    assert await engine.fire_due() == 0


async def test_fire_all_policy_fires_every_missed_tick(engine: Engine, clock: FakeClock) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user, misfire_policy="fire_all")

    clock.set(TEN_TICKS_MISSED)
    assert await engine.fire_due() == 10

    executions = await runs(engine, user, cue_id)
    assert [r.scheduled_for for r in executions] == [at(12, m) for m in range(5, 55, 5)]
    assert {r.status for r in executions} == {"pending"}
    assert (await cue(engine, user, cue_id)).next_run == at(12, 55)
    assert len(await engine.claimable(user)) == 10


async def test_fire_all_policy_is_bounded_by_the_catchup_limit(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, catchup_limit=3) as eng:
        user = await new_user(eng)
        cue_id = await recurring_cue(eng, user, misfire_policy="fire_all")

        clock.set(TEN_TICKS_MISSED)
        assert await eng.fire_due() == 4

        executions = await runs(eng, user, cue_id)
        pending = [r.scheduled_for for r in executions if r.status == "pending"]
        missed = [r for r in executions if r.status == "missed"]
        assert pending == [at(12, 40), at(12, 45), at(12, 50)]
        assert len(missed) == 1
        assert "7" in (missed[0].error_message or "")
        assert (await cue(eng, user, cue_id)).next_run == at(12, 55)
        assert await eng.fire_due() == 0


@pytest.mark.parametrize("policy", ["fire_once", "skip", "fire_all"])
async def test_run_within_the_grace_fires_normally_whatever_the_policy(
    engine: Engine, clock: FakeClock, policy: str
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user, misfire_policy=policy)
    clock.set(at(12, 6))  # 60 s late
    assert await engine.fire_due() == 1
    executions = await runs(engine, user, cue_id)
    assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 5), "pending")]
    assert (await cue(engine, user, cue_id)).next_run == at(12, 10)


async def test_run_just_past_the_grace_follows_the_skip_policy(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await recurring_cue(engine, user, misfire_policy="skip")
    clock.set(at(12, 6, 1))  # 61 s late
    assert await engine.fire_due() == 1
    executions = await runs(engine, user, cue_id)
    assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 5), "missed")]
    assert (await cue(engine, user, cue_id)).next_run == at(12, 10)


async def test_custom_misfire_grace_is_honoured(database_url: str, clock: FakeClock) -> None:
    async with opened(database_url, clock, misfire_grace_seconds=600) as eng:
        user = await new_user(eng)
        cue_id = await recurring_cue(eng, user, misfire_policy="skip")
        clock.set(at(12, 9, 59))  # almost 5 min late: within a 10 min grace
        assert await eng.fire_due() == 1
        executions = await runs(eng, user, cue_id)
        assert [(r.scheduled_for, r.status) for r in executions] == [(at(12, 5), "pending")]


async def test_fire_all_on_an_interval_schedule_is_bounded_and_stays_on_the_grid(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, catchup_limit=3) as eng:
        user = await new_user(eng)
        clock.set(at(12, 0, 10))
        row, _ = await eng.create_cue(
            user,
            {
                "name": "every-minute",
                "transport": "worker",
                "schedule": {"type": "interval", "interval_seconds": 60},
                "misfire_policy": "fire_all",
            },
        )
        clock.set(at(12, 30))  # ticks 12:01:10 ... 12:29:10 are past: 29 of them
        assert await eng.fire_due() == 4
        executions = await runs(eng, user, row.id)
        pending = [r.scheduled_for for r in executions if r.status == "pending"]
        missed = [r for r in executions if r.status == "missed"]
        assert pending == [at(12, 27, 10), at(12, 28, 10), at(12, 29, 10)]
        assert len(missed) == 1
        assert "26" in (missed[0].error_message or "")
        assert (await cue(eng, user, row.id)).next_run == at(12, 30, 10)


# interval grids after a resume or a schedule change ---------------------------------------------


async def interval_cue(engine: Engine, user: Principal, seconds: int) -> str:
    row, _ = await engine.create_cue(
        user,
        {
            "name": f"every-{seconds}s",
            "transport": "worker",
            "schedule": {"type": "interval", "interval_seconds": seconds},
        },
    )
    return row.id


async def fire_next_runs(
    engine: Engine, clock: FakeClock, user: Principal, cue_id: str, count: int
) -> list[datetime]:
    """Move the clock to the cue's next_run and fire it, ``count`` times; the times fired."""
    fired = []
    for _ in range(count):
        next_run = (await cue(engine, user, cue_id)).next_run
        clock.set(next_run)
        assert await engine.fire_due() == 1
        fired.append(next_run)
    return fired


async def test_interval_runs_after_a_resume_are_one_interval_apart(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    clock.set(at(12, 0, 10))
    cue_id = await interval_cue(engine, user, 60)
    clock.set(at(12, 0, 30))
    await engine.pause_cue(user, cue_id)
    clock.set(at(12, 5, 40))
    await engine.resume_cue(user, cue_id)

    fired = await fire_next_runs(engine, clock, user, cue_id, 3)

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired)]
    assert gaps == [60, 60], f"runs after resume at {[f.time() for f in fired]}"


async def test_interval_runs_after_changing_the_interval_are_one_interval_apart(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    clock.set(at(12, 0, 10))
    cue_id = await interval_cue(engine, user, 60)
    clock.set(at(12, 0, 40))
    await engine.update_cue(
        user, cue_id, {"schedule": {"type": "interval", "interval_seconds": 3600}}
    )

    fired = await fire_next_runs(engine, clock, user, cue_id, 3)

    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(fired)]
    assert gaps == [3600, 3600], f"runs after the change at {[f.time() for f in fired]}"


# resuming a one-time cue that already fired -----------------------------------------------------


async def test_resuming_a_completed_one_time_cue_fires_nothing_again(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10))
    clock.set(at(12, 10))
    assert await engine.fire_due() == 1
    claimed = await engine.claim(user, "worker-1")
    await engine.report_outcome(user, claimed["execution_id"], {"success": True})
    assert (await cue(engine, user, cue_id)).status == "completed"

    clock.set(at(13, 0))
    await engine.pause_cue(user, cue_id)
    await engine.resume_cue(user, cue_id)
    assert await engine.fire_due() == 0
    assert [r.status for r in await runs(engine, user, cue_id)] == ["success"]
    assert await engine.claimable(user) == []


async def test_resuming_a_completed_one_time_cue_with_skip_policy_does_not_fail_it(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10), misfire_policy="skip")
    clock.set(at(12, 10))
    assert await engine.fire_due() == 1
    claimed = await engine.claim(user, "worker-1")
    await engine.report_outcome(user, claimed["execution_id"], {"success": True})
    assert (await cue(engine, user, cue_id)).status == "completed"

    clock.set(at(13, 0))
    await engine.pause_cue(user, cue_id)
    await engine.resume_cue(user, cue_id)
    await engine.fire_due()

    assert [r.status for r in await runs(engine, user, cue_id)] == ["success"]
    assert (await cue(engine, user, cue_id)).status != "failed", (
        "nothing was missed: the run happened and succeeded"
    )


async def test_one_time_cue_with_skip_policy_paused_and_resumed_mid_run_completes(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    cue_id = await one_time_cue(engine, user, at(12, 10), misfire_policy="skip")
    clock.set(at(12, 10))
    assert await engine.fire_due() == 1
    claimed = await engine.claim(user, "worker-1")

    clock.set(at(12, 20))  # the worker is still busy
    await engine.pause_cue(user, cue_id)
    await engine.resume_cue(user, cue_id)
    await engine.fire_due()
    await engine.report_outcome(user, claimed["execution_id"], {"success": True})

    assert [r.status for r in await runs(engine, user, cue_id)] == ["success"]
    assert (await cue(engine, user, cue_id)).status == "completed"
