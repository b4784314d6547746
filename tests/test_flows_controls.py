"""Run controls on flow steps (``docs/run-controls.md``): a task step may set ``priority``,
``concurrency`` and ``rate_limit``, shaped as a cue's; GET of the flow shows them, and every
execution of the step (each attempt, each ``for_each`` item) is stamped with them, so the
claims' priority order and limits hold for steps as for cues. A step without controls runs at
priority 0 with no limits. Bad controls are refused (422; 400 ``invalid_flow`` on a wait step,
which runs nothing). A flow declared in Python takes the same controls on its steps."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from cueflow import StepContext
from cueflow.engine import Engine
from cueflow.records import Execution
from tests.flows_support import claim_next, create_flow, finish, run_of, start, task, work
from tests.helpers import assert_error

LIMITED = {
    "priority": 9,
    "concurrency": {"limit": 2, "key": "llm"},
    "rate_limit": {"limit": 30, "period_seconds": 60, "key": None},
}


async def stored_execution(engine: Engine, auth: dict[str, str], execution_id: str) -> Execution:
    """The store's record of one of the caller's executions."""
    user = await engine.authenticate(auth["Authorization"])
    async with engine.store.tx() as tx:
        execution = await tx.get_execution(user.user_id, execution_id)
    assert execution is not None
    return execution


async def execution_ids(client: httpx.AsyncClient, auth: dict[str, str], run_id: str, step: str):
    """The executions of ``step`` of a run so far."""
    return (await run_of(client, auth, run_id))["steps"][step]["execution_ids"]


async def test_a_steps_controls_are_shown_and_stamped_on_its_executions(
    engine: Engine, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client, auth, [task("fetch"), task("summarise", "fetch", **LIMITED)], name="controls"
    )
    shown = (await client.get(f"/v1/flows/{flow['id']}", headers=auth)).json()
    by_id = {step["id"]: step for step in shown["steps"]}
    assert {key: by_id["summarise"][key] for key in LIMITED} == LIMITED
    assert by_id["fetch"]["priority"] is None and by_id["fetch"]["concurrency"] is None

    run = await start(client, auth, flow["id"])
    [fetch_id] = await execution_ids(client, auth, run["id"], "fetch")
    fetched = (await client.get(f"/v1/executions/{fetch_id}", headers=auth)).json()
    assert fetched["priority"] == 0
    plain = await stored_execution(engine, auth, fetch_id)
    assert (plain.concurrency_limit, plain.concurrency_key, plain.rate_limit) == (None, None, None)

    await work(client, auth, "fetch")
    [summarise_id] = await execution_ids(client, auth, run["id"], "summarise")
    summarised = (await client.get(f"/v1/executions/{summarise_id}", headers=auth)).json()
    assert summarised["priority"] == 9
    stamped = await stored_execution(engine, auth, summarise_id)
    assert stamped.concurrency_limit == 2
    assert stamped.concurrency_key == "key:llm"
    assert stamped.rate_limit == 30 and stamped.rate_period_seconds == 60
    assert stamped.rate_key == f"cue:{stamped.cue_id}"  # no key: the step's own hidden cue


async def test_a_retry_and_every_item_of_a_for_each_step_carry_the_controls(
    engine: Engine, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [
        task("list"),
        task(
            "each",
            "list",
            for_each="list",
            priority=-3,
            concurrency={"limit": 1},
            retry={"max_attempts": 2, "backoff_minutes": [0]},
        ),
    ]
    flow = await create_flow(client, auth, steps, name="fan-out")
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=["a", "b", "c"])
    items = (await run_of(client, auth, run["id"]))["steps"]["each"]["items"]
    assert len(items) == 3
    first = [item["execution_ids"][0] for item in items]
    for execution_id in first:
        shown = (await client.get(f"/v1/executions/{execution_id}", headers=auth)).json()
        assert shown["priority"] == -3
        stamped = await stored_execution(engine, auth, execution_id)
        assert stamped.concurrency_limit == 1
        assert stamped.concurrency_key == f"cue:{stamped.cue_id}"
        assert stamped.rate_limit is None and stamped.rate_key is None

    await work(client, auth, "each", success=False, error="flaky")
    retried = [
        item["execution_ids"]
        for item in (await run_of(client, auth, run["id"]))["steps"]["each"]["items"]
        if len(item["execution_ids"]) == 2
    ]
    assert len(retried) == 1
    again = await stored_execution(engine, auth, retried[0][1])
    assert (again.priority, again.concurrency_limit) == (-3, 1)


BAD_CONTROLS: list[dict[str, Any]] = [
    {"priority": 1001},
    {"priority": "high"},
    {"concurrency": {"limit": 0}},
    {"concurrency": {"key": "llm"}},
    {"concurrency": {"limit": 2, "shared": True}},
    {"rate_limit": {"limit": 10}},
    {"rate_limit": {"limit": 10, "period_seconds": 86_401}},
    {"rate_limit": {"period_seconds": 60, "key": "x"}},
]


@pytest.mark.parametrize("controls", BAD_CONTROLS)
async def test_bad_step_controls_are_a_422(
    client: httpx.AsyncClient, auth: dict[str, str], controls: dict[str, Any]
) -> None:
    body = {"name": "bad", "steps": [task("a", **controls)]}
    assert_error(await client.post("/v1/flows", json=body, headers=auth), 422, "validation_error")
    flow = await create_flow(client, auth, [task("a")], name="good")
    changed = await client.patch(
        f"/v1/flows/{flow['id']}", json={"steps": [task("a", **controls)]}, headers=auth
    )
    assert_error(changed, 422, "validation_error")


async def test_a_wait_step_with_controls_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    wait = {"id": "ok", "type": "wait", "event": "approved", "timeout_seconds": 60, "priority": 5}
    response = await client.post("/v1/flows", json={"name": "w", "steps": [wait]}, headers=auth)
    error = assert_error(response, 400, "invalid_flow")
    assert "Wait step 'ok'" in error["message"]


async def test_a_flow_declared_in_python_takes_step_controls(engine: Engine) -> None:
    digest = engine.flow("digest", owner="ops@example.com")

    @digest.step(priority=4, concurrency={"limit": 1, "key": "db"})
    def fetch(ctx: StepContext) -> list[int]:
        return [1, 2]

    digest.worker_step(
        "summarise",
        payload={"task": "summarise"},
        needs=[fetch],
        for_each=fetch,
        rate_limit={"limit": 10, "period_seconds": 60},
    )
    digest.webhook_step("notify", url="https://example.com/hook", needs=["summarise"], priority=-1)
    steps = {step.id: step for step in digest.definition().steps}
    assert steps["fetch"].priority == 4
    assert steps["fetch"].concurrency is not None and steps["fetch"].concurrency.key == "db"
    assert steps["summarise"].rate_limit is not None
    assert steps["summarise"].rate_limit.period_seconds == 60
    assert steps["summarise"].priority is None and steps["notify"].priority == -1
    with pytest.raises(ValidationError, match="concurrency"):
        digest.worker_step("bad", payload={"task": "x"}, concurrency={"limit": 0})


async def test_a_for_each_steps_concurrency_limit_holds_its_items_back(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [task("list"), task("each", "list", for_each="list", concurrency={"limit": 1})]
    flow = await create_flow(client, auth, steps, name="one-at-a-time")
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=["a", "b"])
    first = await claim_next(client, auth, "each")
    assert first is not None
    assert await claim_next(client, auth, "each") is None, "the step's limit is 1"
    items = (await run_of(client, auth, run["id"]))["steps"]["each"]["items"]
    [other] = [
        i["execution_ids"][0] for i in items if first["execution_id"] not in i["execution_ids"]
    ]
    shown = (await client.get(f"/v1/executions/{other}", headers=auth)).json()
    assert shown["waiting_for"]["reason"] == "concurrency"
    assert (shown["waiting_for"]["key"], shown["waiting_for"]["limit"]) == (None, 1)

    done = await finish(client, auth, first["execution_id"])
    assert done.status_code == 200, done.text
    second = await claim_next(client, auth, "each")
    assert second is not None and second["execution_id"] == other
