"""Scheduled flows, on both stores: a flow's ``schedule`` (cron with a timezone, interval, one
time) starts runs the way a cue fires — marked ``trigger: "schedule"`` with their
``scheduled_for``, under the misfire policy, paused and resumed by ``PATCH`` — and a fire starts
exactly one run, even fired again or by two engines at once. Time moves on the fake clock."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.flow_schedule import TRIGGER_TRANSPORT
from tests.conftest import eventually
from tests.flows_support import create_flow, run_of, start, task, work
from tests.helpers import assert_error
from tests.scheduler_support import at, new_user, opened

NINE_IN_NEW_YORK = {"type": "recurring", "cron": "0 9 * * *", "timezone": "America/New_York"}
EVERY_MINUTE = {"type": "interval", "interval_seconds": 60}


async def runs_of(
    client: httpx.AsyncClient, auth: dict[str, str], flow_id: str
) -> list[dict[str, Any]]:
    """The flow's runs, oldest ``scheduled_for`` first."""
    response = await client.get("/v1/flow-runs", params={"flow_id": flow_id}, headers=auth)
    assert response.status_code == 200, response.text
    return sorted(response.json()["runs"], key=lambda r: (r["scheduled_for"] or "", r["id"]))


async def flow_of(client: httpx.AsyncClient, auth: dict[str, str], flow_id: str) -> Any:
    """``GET /v1/flows/{id}``."""
    response = await client.get(f"/v1/flows/{flow_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def patch(
    client: httpx.AsyncClient, auth: dict[str, str], flow_id: str, **body: Any
) -> httpx.Response:
    """``PATCH /v1/flows/{id}``."""
    return await client.patch(f"/v1/flows/{flow_id}", json=body, headers=auth)


async def fire_at(engine: Engine, clock: FakeClock, seconds: float) -> int:
    """Move the clock by ``seconds`` and fire what is due."""
    clock.advance(seconds)
    return await engine.fire_due()


async def test_a_cron_flow_shows_its_schedule_and_next_run_in_its_timezone(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client, auth, [task("a")], schedule=NINE_IN_NEW_YORK, schedule_input={"n": 1}
    )
    assert flow["schedule"] == NINE_IN_NEW_YORK
    assert flow["schedule_status"] == "active"
    assert flow["misfire_policy"] == "fire_once"
    assert flow["schedule_input"] == {"n": 1}
    assert flow["next_run"] == "2026-01-05T14:00:00Z"  # 09:00 EST
    assert await flow_of(client, auth, flow["id"]) == flow
    listed = (await client.get("/v1/flows", headers=auth)).json()["flows"]
    assert [f["next_run"] for f in listed] == ["2026-01-05T14:00:00Z"]
    cues = (await client.get("/v1/cues", headers=auth)).json()
    assert cues["cues"] == [], "the schedule's hidden cue is no cue of the user's"


async def test_a_due_schedule_starts_one_run_that_says_the_schedule_started_it(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(
        client, auth, [task("a"), task("b", "a")], schedule=NINE_IN_NEW_YORK,
        schedule_input={"n": 1},
    )  # fmt: skip
    clock.set(at(13, 59, 59))
    await engine.fire_due()
    assert await runs_of(client, auth, flow["id"]) == []

    clock.set(at(14, 0))
    await engine.fire_due()
    [run] = await runs_of(client, auth, flow["id"])
    assert run["trigger"] == "schedule"
    assert run["scheduled_for"] == "2026-01-05T14:00:00Z"
    assert run["input"] == {"n": 1}
    assert run["status"] == "running"
    assert (await flow_of(client, auth, flow["id"]))["next_run"] == "2026-01-06T14:00:00Z"

    first = await work(client, auth, "a", output={"x": 2})
    assert first["payload"]["flow"]["input"] == {"n": 1}
    await work(client, auth, "b")
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"

    await engine.fire_due()  # the same instant again: nothing new
    assert len(await runs_of(client, auth, flow["id"])) == 1


async def test_runs_started_by_request_say_so(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")], schedule=EVERY_MINUTE)
    run = await start(client, auth, flow["id"], input={"k": 1})
    assert (run["trigger"], run["scheduled_for"]) == ("api", None)


async def test_an_interval_flow_starts_a_run_each_interval(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(client, auth, [task("a")], schedule=EVERY_MINUTE)
    assert flow["next_run"] == "2026-01-05T12:01:00Z"
    await fire_at(engine, clock, 60)
    await fire_at(engine, clock, 60)
    runs = await runs_of(client, auth, flow["id"])
    assert [r["scheduled_for"] for r in runs] == ["2026-01-05T12:01:00Z", "2026-01-05T12:02:00Z"]


async def test_a_one_time_flow_runs_once_and_its_schedule_completes(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    once = {"type": "once", "at": "2026-01-05T12:30:00Z"}
    flow = await create_flow(client, auth, [task("a")], schedule=once)
    await fire_at(engine, clock, 1800)
    await fire_at(engine, clock, 3600)
    [run] = await runs_of(client, auth, flow["id"])
    assert run["scheduled_for"] == "2026-01-05T12:30:00Z"
    shown = await flow_of(client, auth, flow["id"])
    assert (shown["schedule_status"], shown["next_run"]) == ("completed", None)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("fire_once", ["2026-01-05T12:10:00Z"]),
        ("skip", []),
        ("fire_all", [f"2026-01-05T12:{m:02d}:00Z" for m in range(1, 11)]),
    ],
)
async def test_runs_missed_during_downtime_follow_the_misfire_policy(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    engine: Engine,
    clock: FakeClock,
    policy: str,
    expected: list[str],
) -> None:
    flow = await create_flow(
        client, auth, [task("a")], schedule=EVERY_MINUTE, misfire_policy=policy
    )
    await fire_at(engine, clock, 600)  # ten minutes without a scheduler
    runs = await runs_of(client, auth, flow["id"])
    assert [r["scheduled_for"] for r in runs] == expected
    assert (await flow_of(client, auth, flow["id"]))["next_run"] == "2026-01-05T12:11:00Z"


async def test_pause_stops_runs_and_resume_skips_the_times_missed_while_paused(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(client, auth, [task("a")], schedule=EVERY_MINUTE)
    paused = await patch(client, auth, flow["id"], schedule_status="paused")
    assert paused.status_code == 200, paused.text
    assert (paused.json()["schedule_status"], paused.json()["next_run"]) == ("paused", None)
    await fire_at(engine, clock, 300)
    assert await runs_of(client, auth, flow["id"]) == []

    resumed = (await patch(client, auth, flow["id"], schedule_status="active")).json()
    assert (resumed["schedule_status"], resumed["next_run"]) == ("active", "2026-01-05T12:06:00Z")
    await engine.fire_due()
    assert await runs_of(client, auth, flow["id"]) == []
    await fire_at(engine, clock, 60)
    [run] = await runs_of(client, auth, flow["id"])
    assert run["scheduled_for"] == "2026-01-05T12:06:00Z"


async def test_patch_adds_changes_and_removes_a_schedule(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    assert (flow["schedule"], flow["next_run"]) == (None, None)
    added = (await patch(client, auth, flow["id"], schedule=EVERY_MINUTE)).json()
    assert added["next_run"] == "2026-01-05T12:01:00Z"
    hourly = {"type": "interval", "interval_seconds": 3600}
    changed = await patch(
        client, auth, flow["id"], schedule=hourly, misfire_policy="skip", schedule_input=[1]
    )
    assert changed.status_code == 200, changed.text
    shown = changed.json()
    assert shown["schedule"] == {**hourly, "timezone": "UTC"}
    assert shown["next_run"] == "2026-01-05T13:00:00Z"
    assert (shown["misfire_policy"], shown["schedule_input"]) == ("skip", [1])
    await fire_at(engine, clock, 3600)
    [run] = await runs_of(client, auth, flow["id"])
    assert run["input"] == [1]

    removed = (await patch(client, auth, flow["id"], schedule=None)).json()
    assert (removed["schedule"], removed["schedule_status"], removed["next_run"]) == (
        None,
        None,
        None,
    )
    await fire_at(engine, clock, 7200)
    assert len(await runs_of(client, auth, flow["id"])) == 1


async def test_bad_schedules_and_inputs_are_refused_as_for_cues(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [task("a")]
    bad_cron = {"name": "f", "steps": steps, "schedule": {"type": "recurring", "cron": "nope"}}
    response = await client.post("/v1/flows", json=bad_cron, headers=auth)
    assert_error(response, 400, "invalid_schedule")
    bad_zone = {**NINE_IN_NEW_YORK, "timezone": "Mars/Olympus"}
    response = await client.post(
        "/v1/flows", json={"name": "f", "steps": steps, "schedule": bad_zone}, headers=auth
    )
    assert_error(response, 422, "invalid_timezone", "Unknown timezone: 'Mars/Olympus'")
    schema = {"type": "object", "required": ["n"]}
    refused = {"name": "f", "steps": steps, "input_schema": schema, "schedule": EVERY_MINUTE}
    assert_error(await client.post("/v1/flows", json=refused, headers=auth), 400, "invalid_input")

    flow = await create_flow(
        client, auth, steps, schedule=EVERY_MINUTE, input_schema=schema, schedule_input={"n": 1}
    )
    narrower = {"type": "object", "required": ["m"]}
    assert_error(await patch(client, auth, flow["id"], input_schema=narrower), 400, "invalid_input")
    assert_error(await patch(client, auth, flow["id"], schedule_input={}), 400, "invalid_input")
    wrong = await patch(client, auth, flow["id"], schedule_status="completed")
    assert wrong.status_code in (400, 422), wrong.text
    assert (await flow_of(client, auth, flow["id"]))["input_schema"] == schema

    nul = await patch(client, auth, flow["id"], schedule_input={"n": "a\u0000b"})
    assert_error(nul, 400, "invalid_payload")

    plain = await create_flow(client, auth, steps, name="plain")
    assert_error(await patch(client, auth, plain["id"], misfire_policy="skip"), 400, "no_schedule")


async def test_a_fire_made_again_starts_no_second_run(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    """A crashed batch retried (here: the trigger's ``next_run`` put back) finds the fire key
    taken: no second run."""
    flow = await create_flow(client, auth, [task("a")], schedule=EVERY_MINUTE)
    await fire_at(engine, clock, 60)
    user = await engine.principal(auth["Authorization"].removeprefix("Bearer "))
    async with engine.services.store.tx() as tx:
        [trigger] = await tx.flow_triggers(user.user_id, [flow["id"]], TRIGGER_TRANSPORT)
        await tx.update_flow_trigger(trigger.id, {"next_run": at(12, 1)})
    await engine.fire_due()
    [run] = await runs_of(client, auth, flow["id"])
    assert run["scheduled_for"] == "2026-01-05T12:01:00Z"


async def test_two_engines_firing_at_once_start_each_run_exactly_once(
    engine: Engine, clock: FakeClock, database_url: str
) -> None:
    user = await new_user(engine)
    flows = [
        await engine.create_flow(
            user, {"name": f"f{n}", "steps": [task("a")], "schedule": EVERY_MINUTE}
        )
        for n in range(10)
    ]
    async with opened(database_url, clock) as other:
        for _ in range(3):
            clock.advance(60)
            await asyncio.gather(engine.fire_due(), other.fire_due(), engine.fire_due())
    runs, total = await engine.list_flow_runs(user, limit=100)
    assert total == 30
    for flow in flows:
        times = sorted(r.scheduled_for for r in runs if r.flow_id == flow.id)
        assert times == [at(12, 1), at(12, 2), at(12, 3)], flow.name


async def test_deleting_a_scheduled_flow_ends_its_schedule(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(
        client, auth, [task("a")], schedule=EVERY_MINUTE, misfire_policy="skip"
    )
    await fire_at(engine, clock, 600)  # late: skipped, no run
    response = await client.delete(f"/v1/flows/{flow['id']}", headers=auth)
    assert response.status_code == 204, response.text
    assert await fire_at(engine, clock, 600) == 0


async def test_a_scheduled_flow_with_an_open_run_keeps_its_schedule_when_delete_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")], schedule=EVERY_MINUTE)
    await start(client, auth, flow["id"])
    response = await client.delete(f"/v1/flows/{flow['id']}", headers=auth)
    assert_error(response, 409, "flow_has_open_runs")
    shown = await flow_of(client, auth, flow["id"])
    assert (shown["schedule_status"], shown["next_run"]) == ("active", "2026-01-05T12:01:00Z")


async def test_the_running_scheduler_wakes_for_a_new_schedule_and_starts_its_runs(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as running:
        await running.start()
        user = await new_user(running)
        await asyncio.sleep(0.2)  # the loop found nothing due and sleeps
        flow = await running.create_flow(
            user, {"name": "f", "steps": [task("a")], "schedule": EVERY_MINUTE}
        )
        clock.advance(60)

        async def started() -> list[Any]:
            runs, _ = await running.list_flow_runs(user, flow_id=flow.id)
            return runs

        [run] = await eventually(started)
        assert (run.trigger, run.scheduled_for) == ("schedule", at(12, 1))
