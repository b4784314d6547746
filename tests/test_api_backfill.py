"""``POST /v1/cues/{id}/backfill`` (issue 17, cueflow extension) on both stores: the times are
the scheduler's (DST gaps and repeats included), fire keys make it idempotent, the window is
checked and bounded, the overlap policy applies, the runs are delivered as usual; plus the
Python API (``cueflow cues backfill``: tests/test_cli_backfill.py)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.schedule import Schedule, next_fire_after
from tests.conftest import eventually, make_settings, register
from tests.factories import make_worker_cue
from tests.helpers import assert_error, claim, claim_next, get_execution

NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def parse(value: str) -> datetime:
    """A ``Z`` or ``+00:00`` datetime string."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def backfill(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, **body: Any
) -> httpx.Response:
    """``POST /v1/cues/{id}/backfill`` with ``body`` (datetimes as ISO strings)."""
    sent = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}
    return await client.post(f"/v1/cues/{cue_id}/backfill", json=sent, headers=auth)


async def backfilled(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, **body: Any
) -> dict[str, Any]:
    """A backfill that must succeed; returns its answer."""
    response = await backfill(client, auth, cue_id, **body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def times_of(answer: dict[str, Any]) -> list[datetime]:
    """The scheduled times of the runs a backfill created, in order."""
    return [parse(run["scheduled_for"]) for run in answer["executions"]]


def walk(sched: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """``next_fire_after`` iterated over ``[start, end)``."""
    found: list[datetime] = []
    fire = next_fire_after(sched, start - timedelta(microseconds=1))
    while fire is not None and fire < end:
        found.append(fire)
        fire = next_fire_after(sched, fire)
    return found


async def all_runs(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str
) -> list[dict[str, Any]]:
    """Every execution of a cue (up to 100), oldest scheduled first."""
    response = await client.get(
        "/v1/executions", params={"cue_id": cue_id, "limit": 100}, headers=auth
    )
    assert response.status_code == 200, response.text
    return sorted(response.json()["executions"], key=lambda e: e["scheduled_for"])


# the times ------------------------------------------------------------------------------------
async def test_a_daily_cron_over_spring_forward_gets_exactly_the_schedulers_times(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    schedule = {"type": "recurring", "cron": "30 2 * * *", "timezone": NEW_YORK}
    clock.set(utc(2026, 3, 6, 12))
    fired = await make_worker_cue(client, auth, schedule=schedule)
    while clock.now() < utc(2026, 3, 11, 12):  # the scheduler through the window, hour by hour
        clock.advance(3600)
        await engine.fire_due()
    by_scheduler = [parse(r["scheduled_for"]) for r in await all_runs(client, auth, fired["id"])]
    assert by_scheduler[1] == utc(2026, 3, 8, 7, 30)  # 02:30 does not exist: 03:30 EDT

    fresh = await make_worker_cue(client, auth, schedule=schedule)
    answer = await backfilled(
        client, auth, fresh["id"], start=utc(2026, 3, 6, 12), end=utc(2026, 3, 11, 12)
    )
    assert times_of(answer) == by_scheduler
    assert times_of(answer) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 30),  # 03:30 EDT
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        utc(2026, 3, 10, 6, 30),
        utc(2026, 3, 11, 6, 30),
    ]
    assert answer["created"] == 5 and answer["skipped_existing"] == 0
    assert answer["cue_id"] == fresh["id"]
    run = await get_execution(client, auth, answer["executions"][0]["id"])
    assert run["triggered_by"] == "backfill" and run["status"] == "pending"

    # the scheduler's own runs are not made twice
    again = await backfilled(
        client, auth, fired["id"], start=utc(2026, 3, 6, 12), end=utc(2026, 3, 11, 12)
    )
    assert again["created"] == 0 and again["skipped_existing"] == 5
    assert [parse(t) for t in again["skipped_times"]] == by_scheduler


@pytest.mark.parametrize("fall_back", [None, "first"])
async def test_a_daily_cron_over_fall_back_follows_the_cues_fall_back_rule(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    clock: FakeClock,
    fall_back: str | None,
) -> None:
    schedule: dict[str, Any] = {"type": "recurring", "cron": "30 1 * * *", "timezone": NEW_YORK}
    if fall_back is not None:
        schedule["fall_back"] = fall_back
    clock.set(utc(2026, 11, 10))
    cue = await make_worker_cue(client, auth, schedule=schedule)
    start, end = utc(2026, 10, 30, 12), utc(2026, 11, 3, 12)
    answer = await backfilled(client, auth, cue["id"], start=start, end=end)
    sched = Schedule(
        type="recurring", cron="30 1 * * *", timezone=NEW_YORK, fall_back=fall_back or "both"
    )
    assert times_of(answer) == walk(sched, start, end)
    repeated = [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)]  # 01:30 EDT, 01:30 EST
    if fall_back is None:
        assert set(repeated) <= set(times_of(answer))
        assert len(times_of(answer)) == 5
    else:
        assert repeated[0] in times_of(answer) and repeated[1] not in times_of(answer)
        assert len(times_of(answer)) == 4


async def test_the_window_is_half_open_and_clipped_to_now(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)  # every five minutes, clock at 12:00
    now = clock.now()
    answer = await backfilled(
        client, auth, cue["id"], start=now - timedelta(minutes=20), end=now + timedelta(hours=1)
    )
    assert times_of(answer) == [now - timedelta(minutes=m) for m in (20, 15, 10, 5, 0)]
    cue2 = await make_worker_cue(client, auth)
    answer = await backfilled(
        client, auth, cue2["id"], start=now - timedelta(minutes=20), end=now - timedelta(minutes=5)
    )
    assert times_of(answer) == [now - timedelta(minutes=m) for m in (20, 15, 10)]


async def test_naive_datetimes_are_utc(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    answer = await backfilled(
        client, auth, cue["id"], start="2026-01-05T11:00:00", end="2026-01-05T11:10:00"
    )
    assert times_of(answer) == [utc(2026, 1, 5, 11, 0), utc(2026, 1, 5, 11, 5)]


async def test_an_interval_cue_runs_on_its_grid(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth, schedule={"type": "interval", "interval_seconds": 90})
    grid = parse(cue["next_run"])
    answer = await backfilled(
        client, auth, cue["id"], start=clock.now() - timedelta(minutes=5), end=clock.now()
    )
    start, now = clock.now() - timedelta(minutes=5), clock.now()
    expected = [grid - timedelta(seconds=90 * k) for k in range(10, 0, -1)]
    assert times_of(answer) == [t for t in expected if start <= t < now]
    assert len(times_of(answer)) == 3  # 11:55:30, 11:57, 11:58:30
    assert all((grid - t).total_seconds() % 90 == 0 for t in times_of(answer))


async def test_a_one_time_cue_gets_its_time_when_inside_the_window(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    at = clock.now() + timedelta(minutes=1)
    cue = await make_worker_cue(client, auth, schedule={"type": "once", "at": at.isoformat()})
    clock.advance(600)
    outside = await backfilled(
        client, auth, cue["id"], start=at + timedelta(seconds=1), end=clock.now()
    )
    assert outside["created"] == 0 and outside["executions"] == []
    inside = await backfilled(client, auth, cue["id"], start=at, end=clock.now())
    assert times_of(inside) == [at]


async def test_a_second_backfill_of_the_same_window_creates_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    window = {"start": clock.now() - timedelta(hours=1), "end": clock.now()}
    first = await backfilled(client, auth, cue["id"], **window)
    assert first["created"] == 12
    second = await backfilled(client, auth, cue["id"], **window)
    assert second["created"] == 0 and second["skipped_existing"] == 12
    assert len(await all_runs(client, auth, cue["id"])) == 12
    # the scheduler's next tick is not among them, and fires as usual
    clock.set(parse(cue["next_run"]))
    assert await engine.fire_due() == 1


# refusals ---------------------------------------------------------------------------------------
async def test_a_window_with_more_than_1000_times_is_refused_with_its_count(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth, schedule={"type": "interval", "interval_seconds": 5})
    response = await backfill(
        client, auth, cue["id"], start=clock.now() - timedelta(hours=2), end=clock.now()
    )
    error = assert_error(response, 422, "backfill_too_large")
    assert "1440" in error["message"] and "1000" in error["message"]
    assert await all_runs(client, auth, cue["id"]) == []


@pytest.mark.parametrize(
    "window",
    [
        {"start": "2026-01-05T11:00:00Z", "end": "2026-01-05T10:00:00Z"},  # end before start
        {"start": "2026-01-05T11:00:00Z", "end": "2026-01-05T11:00:00Z"},  # empty
        {"start": "2026-01-06T11:00:00Z", "end": "2026-01-07T11:00:00Z"},  # the future
    ],
)
async def test_bad_windows_are_refused_422(
    client: httpx.AsyncClient, auth: dict[str, str], window: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    assert_error(await backfill(client, auth, cue["id"], **window), 422, "invalid_window")
    assert await all_runs(client, auth, cue["id"]) == []


@pytest.mark.parametrize(
    "body",
    [
        {"end": "2026-01-05T11:00:00Z"},
        {"start": "yesterday", "end": "2026-01-05T11:00:00Z"},
        {"start": "2026-01-05T10:00:00Z", "end": "2026-01-05T11:00:00Z", "overlap_policy": "x"},
    ],
)
async def test_malformed_bodies_are_refused_422(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    response = await client.post(f"/v1/cues/{cue['id']}/backfill", json=body, headers=auth)
    assert_error(response, 422, "validation_error")


async def test_unknown_and_other_users_cues_are_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    window = {"start": clock.now() - timedelta(hours=1), "end": clock.now()}
    assert_error(await backfill(client, auth, "cue_nope", **window), 404, "cue_not_found")
    cue = await make_worker_cue(client, auth)
    other = await register(client)
    assert_error(await backfill(client, other, cue["id"], **window), 404, "cue_not_found")


async def test_a_flow_steps_hidden_cue_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    from tests.flows_support import create_flow, start, task, work

    auth = await register(client)
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    await start(client, auth, flow["id"])
    item = await work(client, auth, "a", output=1)
    shown = await client.get(f"/v1/executions/{item['execution_id']}", headers=auth)
    window = {"start": clock.now() - timedelta(hours=1), "end": clock.now()}
    refused = await backfill(client, auth, shown.json()["cue_id"], **window)
    assert_error(refused, 409, "flow_step_cue")


# overlap -----------------------------------------------------------------------------------------
async def test_skip_with_nothing_running_runs_the_first_and_records_the_rest_missed(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    answer = await backfilled(
        client,
        auth,
        cue["id"],
        start=clock.now() - timedelta(minutes=30),
        end=clock.now(),
        overlap_policy="skip",
    )
    runs = answer["executions"]
    assert [r["status"] for r in runs] == ["pending"] + ["missed"] * 5
    assert all(runs[0]["id"] in r["error_message"] for r in runs[1:])


async def test_the_cues_policy_applies_by_default_and_counts_runs_under_way(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth, overlap_policy="buffer_one")
    first = await backfilled(
        client, auth, cue["id"], start=clock.now() - timedelta(minutes=30), end=clock.now()
    )
    assert [r["status"] for r in first["executions"]] == ["pending"] + ["missed"] * 5
    assert (await claim(client, auth, first["executions"][0]["id"])).status_code == 200
    more = await backfilled(
        client, auth, cue["id"], start=clock.now() - timedelta(hours=1), end=clock.now()
    )
    assert more["skipped_existing"] == 6
    assert [r["status"] for r in more["executions"]] == ["pending"] + ["missed"] * 5


async def test_cancel_other_leaves_the_newest_running(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    answer = await backfilled(
        client,
        auth,
        cue["id"],
        start=clock.now() - timedelta(minutes=15),
        end=clock.now(),
        overlap_policy="cancel_other",
    )
    runs = answer["executions"]
    assert [r["status"] for r in runs] == ["failed", "failed", "pending"]
    for older, newer in itertools.pairwise(runs):
        assert older["error_message"].startswith(f"cancelled: superseded by {newer['id']}")


# delivery ----------------------------------------------------------------------------------------
async def test_workers_claim_backfilled_runs_oldest_first(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    answer = await backfilled(
        client, auth, cue["id"], start=clock.now() - timedelta(minutes=10), end=clock.now()
    )
    response = await claim_next(client, auth)
    assert response.status_code == 200, response.text
    assert response.json()["execution_id"] == answer["executions"][0]["id"]


async def test_the_dispatcher_delivers_backfilled_runs_of_a_push_cue(
    engine: Engine, clock: FakeClock
) -> None:
    ran: list[Any] = []
    engine.handler("backfilled")(lambda payload: ran.append(payload) or "done")
    email = f"bf-{uuid.uuid4().hex[:8]}@example.com"
    await engine.register(email)
    user = await engine.account(email)
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "push",
            "transport": "inprocess",
            "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
            "payload": {"task": "backfilled"},
        },
    )
    result = await engine.backfill_cue(
        user, cue.id, clock.now() - timedelta(minutes=10), clock.now()
    )
    assert [run.scheduled_for for run in result.created] == [
        clock.now() - timedelta(minutes=m) for m in (10, 5)
    ]
    assert all(run.triggered_by == "backfill" for run in result.created)
    assert await engine.deliver_due() == 2

    async def delivered() -> bool:
        runs, _ = await engine.cue_executions(user, cue.id)
        return all(run.status == "success" for run in runs)

    await eventually(delivered)
    assert len(ran) == 2


async def test_backfilled_runs_count_toward_the_monthly_limit_but_are_never_refused(
    database_url: str, clock: FakeClock
) -> None:
    engine = Engine(make_settings(database_url, monthly_execution_limit=3), clock=clock)
    await engine.open()
    try:
        email = f"bf-{uuid.uuid4().hex[:8]}@example.com"
        await engine.register(email)
        user = await engine.account(email)
        cue, _ = await engine.create_cue(
            user,
            {
                "name": "limited",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
                "payload": {"task": "t"},
            },
        )
        start = clock.now() - timedelta(minutes=30)
        result = await engine.backfill_cue(user, cue.id, start, clock.now())
        assert [run.status for run in result.created] == ["pending"] * 6  # past the limit of 3
        assert cue.next_run is not None
        clock.set(cue.next_run)
        assert await engine.fire_due() == 1
        runs, _ = await engine.cue_executions(user, cue.id)
        scheduled = next(run for run in runs if run.triggered_by != "backfill")
        assert scheduled.status == "missed"  # the backfilled runs used the month up
        assert scheduled.error_message == "Monthly execution limit reached"
    finally:
        await engine.close()
