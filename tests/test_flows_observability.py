"""Flows on ``GET /metrics`` and in the log, on both stores: runs started (by trigger) and
ended (by status) are counted, each hand-off from a parent's end to its child's first
execution is timed, and the lines about a run or its steps carry ``flow_run_id`` in JSON and
text formats (an in-process step's own log calls too)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.flows_support import claim_next, create_flow, finish, start, task, work
from tests.test_logging import Capture, capture, records
from tests.test_metrics import scrape

__all__ = ["capture"]  # the fixture, shared with the logging tests

HANDOFF = "cueflow_flow_handoff_seconds_count"


async def test_runs_started_and_ended_are_counted_by_trigger_and_status(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    schedule = {"type": "interval", "interval_seconds": 60}
    flow = await create_flow(client, auth, [task("a")], schedule=schedule)
    await start(client, auth, flow["id"])
    await work(client, auth, "a")
    failing = await start(client, auth, flow["id"])
    await work(client, auth, "a", success=False, error="boom")
    clock.advance(60)
    await engine.fire_due()
    scheduled = await client.get("/v1/flow-runs", params={"status": "running"}, headers=auth)
    [running] = scheduled.json()["runs"]
    assert running["trigger"] == "schedule"
    cancelled = await client.post(f"/v1/flow-runs/{running['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200, cancelled.text

    samples = await scrape(client)
    assert samples("cueflow_flow_runs_started_total", trigger="api") == 2
    assert samples("cueflow_flow_runs_started_total", trigger="schedule") == 1
    assert samples("cueflow_flow_runs_finished_total", status="succeeded") == 1
    assert samples("cueflow_flow_runs_finished_total", status="failed") == 1
    assert samples("cueflow_flow_runs_finished_total", status="cancelled") == 1
    assert failing["trigger"] == "api"


async def test_each_hand_off_to_a_child_is_timed(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    @engine.handler("first")
    def first(payload: dict[str, Any]) -> str:
        return "done"

    inprocess = {"id": "first", "transport": "inprocess", "payload": {"task": "first"}}
    steps = [inprocess, task("b", "first"), task("c", "b"), task("d", "b")]
    flow = await create_flow(client, auth, steps)
    await start(client, auth, flow["id"])
    assert (await scrape(client))(HANDOFF) == 0, "a run's root steps have no parent"

    assert await engine.deliver_due() == 1  # a push delivery's end hands off too
    assert (await scrape(client))(HANDOFF) == 1
    item = await claim_next(client, auth, "b")
    assert item is not None
    response = await finish(client, auth, item["execution_id"])
    assert response.status_code == 200, response.text
    samples = await scrape(client)
    assert samples(HANDOFF) == 3, "one per child created: c and d"
    assert samples("cueflow_flow_handoff_seconds_bucket", le="+Inf") == 3
    assert samples("cueflow_flow_handoff_seconds_sum") >= 0


async def test_run_and_step_lines_carry_the_flow_run_id(
    capture: Capture, client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    stream = capture("json", "INFO")

    @engine.handler("greet")
    def greet(payload: dict[str, Any]) -> str:
        logging.getLogger("app.greet").info("greeting %s", payload["flow"]["input"])
        return "hello"

    greeting = {"id": "greet", "transport": "inprocess", "payload": {"task": "greet"}}
    retried = task("b", "greet", retry={"max_attempts": 2, "backoff_minutes": [0]})
    flow = await create_flow(client, auth, [greeting, retried])
    run = await start(client, auth, flow["id"], input="world")
    assert await engine.deliver_due() == 1
    await work(client, auth, "b", success=False, error="flaky")
    await work(client, auth, "b", success=False, error="down")

    lines = records(stream)
    [handled] = [r for r in lines if r["logger"] == "app.greet"]
    assert handled["message"] == "greeting world"
    assert handled["flow_run_id"] == run["id"]
    assert handled["execution_id"] == run["steps"]["greet"]["execution_ids"][0]
    about_run = [r["message"] for r in lines if r.get("flow_run_id") == run["id"]]
    assert about_run == [
        "flow run started (api)",
        "greeting world",
        "step b attempt 1 failed (reported_failure); retrying",
        "step b failed: reported_failure: down",
        "flow run ended: failed",
    ]


async def test_text_lines_show_the_flow_run_id(
    capture: Capture, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    stream = capture("text", "INFO")
    flow = await create_flow(client, auth, [task("a")])
    run = await start(client, auth, flow["id"])
    [line] = [x for x in stream.getvalue().splitlines() if "flow run started" in x]
    assert f"flow_run_id={run['id']}]" in line
    assert " INFO    cueflow.flow_runs [" in line
