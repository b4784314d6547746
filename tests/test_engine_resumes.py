"""Resuming and changing cues: interval grids after a resume or a schedule change, one-time cues
resumed after they fired."""

from __future__ import annotations

import itertools
from datetime import datetime

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.scheduler_support import (
    at,
    cue,
    new_user,
    one_time_cue,
    runs,
)

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
