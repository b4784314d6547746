"""The scheduler across clock changes and downtime: daylight saving time, misfire policies and
the grace period."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.scheduler_support import (
    NEW_YORK,
    at,
    cue,
    new_user,
    opened,
    recurring_cue,
    runs,
)

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
