"""The hand-off's guarantees on both stores: a child is created exactly once when its last
parents finish at the same moment on two engines; the outcome and what it hands off commit
together; every way an execution ends reaches the hand-off (lease used up, webhook delivery);
wait steps are resumed by events and failed by their deadline."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import cueflow.handoff as handoff
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from cueflow.store import ExecutionFilter
from tests.conftest import make_settings
from tests.flows_support import claim_next, create_flow, finish, run_of, start, task, work
from tests.helpers import assert_error
from tests.webhook_support import Receiver, api, open_engine


async def test_a_child_is_created_once_when_its_parents_finish_at_once_on_two_engines(
    database_url: str, clock: FakeClock
) -> None:
    first = Engine(make_settings(database_url), clock=clock)
    second = Engine(make_settings(database_url), clock=clock)
    await first.open()
    await second.open()
    try:
        user = await first.account("fan-in@example.com")
        flow = await first.create_flow(
            user, {"name": "join", "steps": [task("a"), task("b"), task("c", "a", "b")]}
        )
        runs = [(await first.start_flow_run(user, flow.id, {}))[0] for _ in range(20)]
        batch = await first.claim_batch(user, "w1", limit=100)
        by_run: dict[str, list[str]] = {}
        for row in batch.claimed:
            by_run.setdefault(row.payload_override["flow"]["run_id"], []).append(row.id)
        assert all(len(ids) == 2 for ids in by_run.values()) and len(by_run) == 20
        await asyncio.gather(
            *(
                engine.report_outcome(user, execution_id, {"success": True})
                for ids in by_run.values()
                for engine, execution_id in zip((first, second), ids, strict=True)
            )
        )
        for run in runs:
            _, steps = await first.get_flow_run(user, run.id)
            children = [s for s in steps if s.step_id == "c"]
            assert len(children) == 1, "the child was created twice"
            assert len(children[0].execution_ids) == 1
            page = await first.list_executions(user, _filter(run.id, "c"), limit=10, offset=0)
            assert page.total == 1
    finally:
        await first.close()
        await second.close()


def _filter(run_id: str, step_id: str) -> ExecutionFilter:
    return ExecutionFilter(flow_run_id=run_id, step_id=step_id)


async def test_the_outcome_and_the_child_it_hands_off_to_commit_together(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    run = await start(client, auth, flow["id"])
    item = await claim_next(client, auth, "a")
    assert item is not None
    real_attempt = handoff._attempt

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the process died during the hand-off")

    monkeypatch.setattr(handoff, "_attempt", crash)
    with pytest.raises(RuntimeError):
        await finish(client, auth, item["execution_id"], output=1)
    execution = await client.get(f"/v1/executions/{item['execution_id']}", headers=auth)
    assert execution.json()["outcome"] is None  # the outcome rolled back with the hand-off
    assert execution.json()["status"] == "delivering"
    assert (await run_of(client, auth, run["id"]))["steps"]["b"]["status"] == "pending"

    monkeypatch.setattr(handoff, "_attempt", real_attempt)
    assert (await finish(client, auth, item["execution_id"], output=1)).status_code == 200
    again = await finish(client, auth, item["execution_id"], output=1)
    assert_error(again, 409, "outcome_already_recorded")
    shown = await run_of(client, auth, run["id"])
    assert shown["steps"]["a"]["output"] == 1
    assert len(shown["steps"]["b"]["execution_ids"]) == 1


async def test_a_lease_used_up_fails_the_attempt_and_the_retry_is_told(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    step = task("slow", retry={"max_attempts": 2, "backoff_minutes": [0]})
    flow = await create_flow(client, auth, [step])
    run = await start(client, auth, flow["id"])
    first = await claim_next(client, auth, "slow")
    assert first is not None
    clock.advance(engine.settings.worker_claim_timeout_seconds + 1)
    await engine.sweep()
    second = await claim_next(client, auth, "slow")
    assert second is not None
    failure = second["payload"]["flow"]["previous_failure"]
    assert failure["type"] == "execution_failed"
    assert "lease expired" in failure["reason"]
    assert (await finish(client, auth, second["execution_id"])).status_code == 200
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"


async def test_an_execution_nobody_claims_in_time_fails_its_step_as_missed(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    flow = await create_flow(
        client, auth, [task("lonely"), task("cleanup", "lonely", when="failure")]
    )
    run = await start(client, auth, flow["id"])
    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    await engine.sweep()
    shown = await run_of(client, auth, run["id"])
    assert shown["steps"]["lonely"]["status"] == "failed"
    assert shown["steps"]["lonely"]["error"]["type"] == "missed"
    assert shown["steps"]["cleanup"]["status"] == "running"


async def test_a_wait_step_is_resumed_by_its_event_whose_data_is_its_output(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    wait = {"id": "approval", "needs": ["draft"], "type": "wait", "event": "approved"}
    wait["timeout_seconds"] = 3600
    flow = await create_flow(client, auth, [task("draft"), wait, task("send", "approval")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "draft")
    assert (await run_of(client, auth, run["id"]))["status"] == "waiting"
    other = await client.post(
        f"/v1/flow-runs/{run['id']}/events/rejected", json={"data": 1}, headers=auth
    )
    assert other.json()["resumed"] == []
    sent = await client.post(
        f"/v1/flow-runs/{run['id']}/events/approved", json={"data": {"by": "ann"}}, headers=auth
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["resumed"] == ["approval"]
    assert sent.json()["status"] == "running"
    item = await work(client, auth, "send")
    assert item["payload"]["flow"]["parents"] == {"approval": {"by": "ann"}}
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    late = await client.post(f"/v1/flow-runs/{run['id']}/events/approved", json={}, headers=auth)
    assert_error(late, 409, "flow_run_finished")


async def test_a_wait_past_its_deadline_fails_and_its_failure_handler_runs(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    wait = {"id": "approval", "type": "wait", "event": "approved", "timeout_seconds": 60}
    flow = await create_flow(client, auth, [wait, task("escalate", "approval", when="failure")])
    run = await start(client, auth, flow["id"])
    clock.advance(59)
    await engine.sweep()
    assert (await run_of(client, auth, run["id"]))["steps"]["approval"]["status"] == "waiting"
    clock.advance(2)
    await engine.sweep()
    shown = await run_of(client, auth, run["id"])
    assert shown["steps"]["approval"]["status"] == "failed"
    assert shown["steps"]["approval"]["error"]["type"] == "wait_timeout"
    await work(client, auth, "escalate")
    assert (await run_of(client, auth, run["id"]))["status"] == "failed"


async def test_a_webhook_step_is_delivered_and_its_acceptance_hands_off(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        response = await client.post("/v1/auth/register", json={"email": "hook@example.com"})
        auth = {"Authorization": f"Bearer {response.json()['api_key']}"}
        hook = {
            "id": "notify",
            "transport": "webhook",
            "callback": {"url": receiver.url()},
            "payload": {"kind": "notify"},
        }
        flow = await create_flow(client, auth, [hook, task("after", "notify")])
        receiver.answers["/hook"] = b'{"sent": true, "id": 3}'
        run = await start(client, auth, flow["id"], input={"order": 7})
        assert await engine.deliver_due() == 1
        [request] = receiver.requests
        sent = json.loads(request.body)["payload"]
        assert sent["kind"] == "notify"
        assert sent["flow"]["input"] == {"order": 7}
        assert sent["flow"]["step"] == "notify"
        item = await work(client, auth, "after")
        assert item["payload"]["flow"]["parents"] == {"notify": {"sent": True, "id": 3}}
        assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"


async def test_a_webhook_step_whose_delivery_fails_fails_the_step(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/hook", 500)
        response = await client.post("/v1/auth/register", json={"email": "bad@example.com"})
        auth = {"Authorization": f"Bearer {response.json()['api_key']}"}
        hook = {"id": "notify", "transport": "webhook", "callback": {"url": receiver.url()}}
        flow = await create_flow(client, auth, [hook])
        run = await start(client, auth, flow["id"])
        await engine.deliver_due()
        shown = await run_of(client, auth, run["id"])
        assert shown["status"] == "failed"
        assert shown["steps"]["notify"]["error"]["type"] == "execution_failed"


async def test_an_unknown_run_is_404_for_events_and_cancel(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    for path in ("/v1/flow-runs/run_nope/cancel", "/v1/flow-runs/run_nope/events/x"):
        assert_error(await client.post(path, json={}, headers=auth), 404, "flow_run_not_found")
    user = await engine.account("py@example.com")
    with pytest.raises(CueflowError):
        await engine.get_flow_run(user, "run_nope")


async def test_an_in_process_step_hands_its_result_on_as_its_output(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    @engine.handler("double")
    def double(payload: dict[str, Any]) -> str:
        return str(payload["flow"]["input"] * 2)

    step = {"id": "double", "transport": "inprocess", "payload": {"task": "double"}}
    flow = await create_flow(client, auth, [step, task("after", "double")])
    run = await start(client, auth, flow["id"], input=21)
    assert await engine.deliver_due() == 1
    item = await work(client, auth, "after")
    assert item["payload"]["flow"]["parents"] == {"double": "42"}
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"


async def test_a_batch_of_outcomes_hands_off_each_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b"), task("c", "a", "b")])
    run = await start(client, auth, flow["id"])
    first, second = await claim_next(client, auth, "a"), await claim_next(client, auth, "b")
    assert first is not None and second is not None
    outcomes = [
        {"execution_id": first["execution_id"], "success": True, "output": "A"},
        {"execution_id": second["execution_id"], "success": True, "output": "B"},
    ]
    response = await client.post(
        "/v1/executions/outcomes", json={"outcomes": outcomes}, headers=auth
    )
    assert response.status_code == 200, response.text
    item = await work(client, auth, "c")
    assert item["payload"]["flow"]["parents"] == {"a": "A", "b": "B"}
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"
