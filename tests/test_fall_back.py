"""The repeated hour of a fall-back transition: ``schedule.fall_back`` (``both`` or ``first``).

In Europe/London on 2026-10-25 the clocks go back from 02:00 BST to 01:00 GMT (at 01:00 UTC),
so every wall time from 01:00 to 01:59 happens twice. By default (``both``, CueAPI's and
croniter's rule) a cron matching such a time fires at both; ``first`` fires only at the first
occurrence, as a cron daemon does for jobs at a fixed time of day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.schedule import Schedule, due_ticks, next_fire_after
from tests.factories import make_worker_cue
from tests.helpers import assert_validation_error, executions_of

LONDON = "Europe/London"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(cron: str, start: datetime, count: int, fall_back: str | None = None) -> list[datetime]:
    extra: dict[str, Any] = {} if fall_back is None else {"fall_back": fall_back}
    sched = Schedule(type="recurring", cron=cron, timezone=LONDON, **extra)
    got: list[datetime] = []
    after = start
    for _ in range(count):
        fire = next_fire_after(sched, after)
        assert fire is not None
        got.append(fire)
        after = fire
    return got


def test_by_default_a_repeated_time_fires_at_both_occurrences() -> None:
    assert fires("30 1 * * *", utc(2026, 10, 24, 12), 3) == [
        utc(2026, 10, 25, 0, 30),  # 01:30 BST
        utc(2026, 10, 25, 1, 30),  # 01:30 GMT
        utc(2026, 10, 26, 1, 30),
    ]


def test_first_fires_a_repeated_time_once_at_its_first_occurrence() -> None:
    assert fires("30 1 * * *", utc(2026, 10, 24, 12), 3, "first") == [
        utc(2026, 10, 25, 0, 30),  # 01:30 BST
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]


def test_first_skips_a_time_at_the_instant_the_clocks_go_back() -> None:
    # 01:00 wall: 00:00 UTC (BST), then again at 01:00 UTC, the transition itself
    assert fires("0 1 * * *", utc(2026, 10, 24, 12), 2, "first") == [
        utc(2026, 10, 25, 0, 0),
        utc(2026, 10, 26, 1, 0),
    ]


def test_first_leaves_a_frequent_cron_an_hour_without_fires() -> None:
    both = fires("*/30 * * * *", utc(2026, 10, 24, 23, 45), 5)
    first = fires("*/30 * * * *", utc(2026, 10, 24, 23, 45), 3, "first")
    assert both == [utc(2026, 10, 25, 0, 0) + timedelta(minutes=30 * i) for i in range(5)]
    assert first == [utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 2, 0)]


def test_first_changes_nothing_on_other_days_nor_at_spring_forward() -> None:
    start = utc(2026, 3, 27)
    assert fires("30 1 * * *", start, 5, "first") == fires("30 1 * * *", start, 5)


def test_missed_runs_across_the_night_follow_the_same_rule() -> None:
    sched = Schedule(type="recurring", cron="30 1 * * *", timezone=LONDON, fall_back="first")
    ticks, dropped = due_ticks(sched, utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 3), limit=10)
    assert (ticks, dropped) == ([utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)], 0)


def london_cue(**schedule: Any) -> dict[str, Any]:
    return {"type": "recurring", "cron": "30 1 * * *", "timezone": LONDON, **schedule}


async def test_fall_back_is_echoed_only_when_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    plain = await make_worker_cue(client, auth, schedule=london_cue())
    assert "fall_back" not in plain["schedule"]
    first = await make_worker_cue(client, auth, schedule=london_cue(fall_back="first"))
    assert first["schedule"]["fall_back"] == "first"
    fetched = await client.get(f"/v1/cues/{first['id']}", headers=auth)
    assert fetched.json()["schedule"]["fall_back"] == "first"
    changed = await client.patch(
        f"/v1/cues/{first['id']}", json={"schedule": london_cue(fall_back="both")}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["schedule"]["fall_back"] == "both"


async def test_an_unknown_fall_back_is_a_validation_error(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"name": "nightly", "schedule": london_cue(fall_back="twice"), "transport": "worker"}
    response = await client.post("/v1/cues", json=body, headers=auth)
    assert_validation_error(response, "body.schedule.fall_back")


async def test_the_scheduler_fires_a_first_cue_once_in_the_repeated_hour(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    clock.set(utc(2026, 10, 24, 12))
    once = await make_worker_cue(client, auth, schedule=london_cue(fall_back="first"))
    twice = await make_worker_cue(client, auth, schedule=london_cue())
    for step in range(30):  # through the night, half an hour at a time
        clock.set(utc(2026, 10, 24, 23) + timedelta(minutes=30 * step))
        await engine.fire_due()
    assert [e["scheduled_for"] for e in await executions_of(client, auth, once["id"])] == [
        "2026-10-25T00:30:00Z"
    ]
    assert sorted(e["scheduled_for"] for e in await executions_of(client, auth, twice["id"])) == [
        "2026-10-25T00:30:00Z",
        "2026-10-25T01:30:00Z",
    ]
