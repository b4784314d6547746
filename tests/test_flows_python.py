"""Flows declared in Python (``docs/flows.md``, "Flows in Python") on both stores: in-process
steps as decorated functions whose return value is the step's output, mixed with worker and
wait steps; the definition stored idempotently at each start; a run started by name and
awaited; retries that see the previous failure.

Engines run their background loops over a fake clock: in-process steps are delivered by the
dispatcher as soon as they are due (now), so nothing here moves time except to prove that a
start without changes writes nothing.
"""

from __future__ import annotations

import asyncio
import re
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

import cueflow
from cueflow import Engine, FlowRun, Retry, StepContext, StepFailure, StepRun
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.errors import CueflowError, NotFound
from cueflow.flow_schemas import InvalidFlow
from cueflow.states import FailureType, RunStatus, StepStatus
from tests.conftest import make_settings
from tests.flows_support import claim_next, finish

ROOT = Path(__file__).resolve().parent.parent
OWNER = "shop@example.com"
RESULT_TIMEOUT = 30


def engine_for(database_url: str, clock: FakeClock) -> Engine:
    return Engine(make_settings(database_url), clock=clock)


@asynccontextmanager
async def client_of(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the REST API of a started engine."""
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
        yield c


async def test_a_declared_flow_runs_its_in_process_steps_and_its_result_is_awaited(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    seen: list[StepContext] = []
    orders = engine.flow(
        "orders", owner=OWNER, input_schema={"type": "object", "required": ["order"]}
    )

    @orders.step(output_schema={"type": "object", "required": ["items"]})
    async def fetch(ctx: StepContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"items": [{"sku": "a", "n": 2}, {"sku": "b", "n": 1}], "order": ctx.input["order"]}

    @orders.step(needs=[fetch])
    def skus(ctx: StepContext) -> list[dict[str, Any]]:  # a sync step: run in the thread pool
        seen.append(ctx)
        items: list[dict[str, Any]] = ctx.parents["fetch"]["items"]
        return items

    @orders.step(needs=[skus], for_each=skus, id="pack")
    async def pack_one(ctx: StepContext) -> dict[str, Any]:
        seen.append(ctx)
        return {"packed": ctx.item["sku"], "index": ctx.item_index}

    async with engine:
        run = await engine.run_flow("orders", {"order": 7})
        assert isinstance(run, FlowRun) and run.status in (RunStatus.RUNNING, RunStatus.PENDING)
        done = await run.result(timeout=RESULT_TIMEOUT)

    assert done.status == RunStatus.SUCCEEDED and done.done and done.id == run.id
    assert done.input == {"order": 7} and done.finished_at is not None
    assert list(done.steps) == ["fetch", "skus", "pack"]
    fetched = done.steps["fetch"]
    assert isinstance(fetched, StepRun) and fetched.status == StepStatus.SUCCEEDED
    assert fetched.output == {"items": [{"sku": "a", "n": 2}, {"sku": "b", "n": 1}], "order": 7}
    assert done.outputs["skus"] == [{"sku": "a", "n": 2}, {"sku": "b", "n": 1}]  # JSON, not text
    pack = done.steps["pack"]
    assert pack.output == [{"packed": "a", "index": 0}, {"packed": "b", "index": 1}]
    assert [(i.item, i.status) for i in pack.items] == [(0, "succeeded"), (1, "succeeded")]
    assert pack.attempts == 2 and len(pack.execution_ids) == 2
    first = seen[0]
    assert (first.run_id, first.flow_id, first.step) == (run.id, run.flow_id, "fetch")
    assert first.attempt == 1 and first.previous_failure is None and first.parents == {}
    assert first.execution_id == fetched.execution_ids[0]
    assert sorted(c.item_index for c in seen if c.step == "pack") == [0, 1]


async def test_in_process_steps_mix_with_a_worker_step_claimed_over_http(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    shipping = engine.flow("shipping", owner=OWNER)

    @shipping.step()
    async def quote(ctx: StepContext) -> dict[str, Any]:
        return {"price": 12.5, "parcel": ctx.input}

    ship = shipping.worker_step(
        "ship",
        payload={"task": "ship", "carrier": "post"},
        needs=[quote],
        output_schema={"type": "object", "required": ["tracking"]},
    )

    @shipping.step(needs=[ship, quote])
    async def notify(ctx: StepContext) -> str:
        return f"{ctx.parents['ship']['tracking']} for {ctx.parents['quote']['price']}"

    async with engine, client_of(engine) as client:
        # The flow's owner, made when the engine stored the flow, gets a key for its worker.
        key = await engine.regenerate_api_key(await engine.account(OWNER))
        auth = {"Authorization": f"Bearer {key}"}
        run = await engine.run_flow("shipping", {"kg": 2}, idempotency_key="parcel-1")
        again = await engine.run_flow("shipping", {"kg": 2}, idempotency_key="parcel-1")
        assert again.id == run.id

        async def claimed() -> dict[str, Any] | None:
            return await claim_next(client, auth, "ship")

        item = await _eventually(claimed)
        payload = item["payload"]
        assert payload["task"] == "ship"
        assert payload["flow"]["parents"] == {"quote": {"price": 12.5, "parcel": {"kg": 2}}}
        response = await finish(client, auth, item["execution_id"], output={"tracking": "T1"})
        assert response.status_code == 200, response.text
        done = await run.result(timeout=RESULT_TIMEOUT)
    assert done.status == RunStatus.SUCCEEDED
    assert done.outputs == {
        "quote": {"price": 12.5, "parcel": {"kg": 2}},
        "ship": {"tracking": "T1"},
        "notify": "T1 for 12.5",
    }


async def test_the_definition_is_stored_once_and_updated_only_when_the_code_changed(
    database_url: str, clock: FakeClock
) -> None:
    def declare(engine: Engine, *, strict: bool) -> None:
        flow = engine.flow("billing", owner=OWNER, description="Monthly billing")

        @flow.step(
            retry=Retry(2, backoff_minutes=[1]),
            output_schema={"type": "object", "required": ["total"] if strict else []},
        )
        async def total(ctx: StepContext) -> dict[str, Any]:
            return {"total": 1}

        flow.wait_step("approved", event="approved", timeout_seconds=3600, needs=[total])

    async def stored(engine: Engine) -> cueflow.Principal:
        return await engine.account(OWNER)

    first = engine_for(database_url, clock)
    declare(first, strict=False)
    async with first:
        me = await stored(first)
        [created], total = await first.list_flows(me)
        run = await first.run_flow("billing")

    clock.advance(3600)  # a write now would move updated_at
    second = engine_for(database_url, clock)
    declare(second, strict=False)
    async with second:
        [again], total = await second.list_flows(me)
    assert total == 1 and again == created, "an unchanged definition is not written again"

    clock.advance(3600)
    third = engine_for(database_url, clock)
    declare(third, strict=True)
    async with third:
        [updated], total = await third.list_flows(me)
        old_run, _ = await third.get_flow_run(me, run.id)
        # the run started under the first definition keeps it
        assert old_run.steps[0]["output_schema"] == {"type": "object", "required": []}
        await third.cancel_flow_run(me, run.id)
    assert total == 1 and updated.id == created.id
    assert updated.updated_at == clock.now()
    # only the contract and the attempt count changed, not how the step is delivered: the
    # step keeps its hidden cue
    assert updated.step_cues == created.step_cues
    assert updated.steps[0]["output_schema"] == {"type": "object", "required": ["total"]}
    assert updated.steps[0]["retry"] == {"max_attempts": 2, "backoff_minutes": [1]}
    assert updated.description == "Monthly billing"

    fourth = engine_for(database_url, clock)
    declare(fourth, strict=True)
    async with fourth:
        [same], _ = await fourth.list_flows(me)
    assert same == updated


async def test_two_processes_starting_at_once_store_one_flow(
    database_url: str, clock: FakeClock
) -> None:
    engines = [engine_for(database_url, clock) for _ in range(2)]
    for engine in engines:
        flow = engine.flow("nightly", owner=OWNER)
        flow.worker_step("export", payload={"task": "export"})
    for engine in engines:
        await engine.open()  # migrate once, then race the stores
    try:
        stored = await asyncio.gather(*(engine.sync_flows() for engine in engines))
        [first], [second] = stored
        assert first.id == second.id
        me = await engines[0].account(OWNER)
        assert (await engines[0].list_flows(me))[1] == 1
    finally:
        for engine in engines:
            await engine.close()


async def test_an_output_contract_failure_is_retried_and_the_retry_sees_why(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    payments = engine.flow("payments", owner=OWNER)
    failures: list[StepFailure | None] = []

    @payments.step(
        output_schema={"type": "object", "required": ["receipt"]},
        retry=Retry(3, backoff_minutes=[]),
    )
    async def charge(ctx: StepContext) -> dict[str, Any]:
        failures.append(ctx.previous_failure)
        if ctx.attempt == 1:
            return {"recipt": "typo"}
        return {"receipt": f"r{ctx.attempt}"}

    async with engine:
        run = await engine.run_flow("payments")
        done = await engine.wait_for_flow_run(
            await engine.account(OWNER), run.id, timeout=RESULT_TIMEOUT
        )
    assert done.status == RunStatus.SUCCEEDED
    assert done.steps["charge"].output == {"receipt": "r2"}
    assert done.steps["charge"].attempts == 2
    first, second = failures
    assert first is None and second is not None
    assert second.type == FailureType.OUTPUT_CONTRACT and second.attempt == 1
    assert second.output == {"recipt": "typo"} and "receipt" in second.reason


async def test_a_failing_step_fails_the_run_which_the_result_answers_with_the_error(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    flow = engine.flow("fragile", owner=OWNER)

    @flow.step()
    async def odd(ctx: StepContext) -> object:
        return {1, 2}  # a set is not JSON

    @flow.step(needs=[odd], when="failure")
    async def compensate(ctx: StepContext) -> str:
        return "undone"

    async with engine:
        done = await (await engine.run_flow("fragile")).result(timeout=RESULT_TIMEOUT)
    assert done.status == RunStatus.FAILED
    error = done.steps["odd"].error
    assert error is not None and error.type == FailureType.REPORTED_FAILURE
    assert "returned a value that is not JSON" in error.reason
    assert done.steps["compensate"].output == "undone"


async def test_a_wait_is_resumed_by_an_event_and_a_result_wait_is_bounded(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    flow = engine.flow("approvals", owner=OWNER)
    asked = flow.wait_step("approval", event="approved", timeout_seconds=3600)

    @flow.step(needs=[asked])
    async def record(ctx: StepContext) -> dict[str, Any]:
        return {"by": ctx.parents["approval"]["by"]}

    async with engine:
        run = await engine.run_flow("approvals")
        with pytest.raises(TimeoutError):
            await run.result(timeout=0.3)
        me = await engine.account(OWNER)
        _, resumed = await engine.send_flow_event(me, run.id, "approved", {"by": "ana"})
        assert resumed == ["approval"]
        done = await run.result(timeout=RESULT_TIMEOUT)

        other = await engine.run_flow("approvals")
        waiting = asyncio.ensure_future(other.result(timeout=RESULT_TIMEOUT))
        await engine.cancel_flow_run(me, other.id)
        cancelled = await waiting  # a cancelled run is answered, not raised
        with pytest.raises(NotFound):
            await engine.wait_for_flow_run(me, "run_nope", timeout=1)
    assert done.outputs == {"approval": {"by": "ana"}, "record": {"by": "ana"}}
    assert cancelled.status == RunStatus.CANCELLED and cancelled.outputs == {}
    assert cancelled.steps["approval"].status == StepStatus.CANCELLED
    assert cancelled.steps["record"].status == StepStatus.PENDING


async def test_a_plain_handler_serving_a_step_hands_on_its_return_value_as_json(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)

    @engine.handler("totals")
    def totals(payload: dict[str, Any]) -> dict[str, Any]:
        return {"sum": sum(payload["flow"]["input"]), "when": clock.now()}

    @engine.handler("odd")
    def odd(payload: dict[str, Any]) -> set[int]:
        return {1}

    steps = [
        {"id": "totals", "transport": "inprocess", "payload": {"task": "totals"}},
        {"id": "odd", "transport": "inprocess", "payload": {"task": "odd"}},
    ]
    async with engine:
        me = await engine.account(OWNER)
        flow = await engine.create_flow(me, {"name": "rest-defined", "steps": steps})
        run, _, _ = await engine.start_flow_run(me, flow.id, {"input": [1, 2, 3]})
        done = await engine.wait_for_flow_run(me, run.id, timeout=RESULT_TIMEOUT)
    assert done.status == RunStatus.SUCCEEDED
    assert done.outputs == {
        "totals": {"sum": 6, "when": clock.now().isoformat()},  # a dict, not its text
        "odd": "{1}",  # what JSON cannot hold: its text, as in outcome.result
    }


async def test_declarations_are_checked_where_they_are_written(
    database_url: str, clock: FakeClock
) -> None:
    engine = engine_for(database_url, clock)
    flow = engine.flow("checked", owner=OWNER)
    with pytest.raises(ValueError, match="already"):
        engine.flow("checked", owner=OWNER)

    async def stray(ctx: StepContext) -> None: ...

    with pytest.raises(ValueError, match="stray is not a step of flow 'checked'"):
        flow.step(needs=[stray])(stray)
    flow.worker_step("a", needs=["nowhere"])
    with pytest.raises(ValueError, match="has a step 'a' already"):
        flow.worker_step("a")
    try:
        with pytest.raises(InvalidFlow, match="Step 'a' needs 'nowhere'"):
            await engine.start()
        with pytest.raises(CueflowError, match="No flow named 'other'"):
            await engine.run_flow("other")
    finally:
        await engine.close()


async def test_the_docs_example_runs(tmp_path: Path) -> None:
    example, more_steps = _docs_examples()
    module = types.ModuleType("docs_flows_in_python")
    exec(compile(example, "docs/flows.md:Flows in Python", "exec"), module.__dict__)
    done = await asyncio.wait_for(module.main(), RESULT_TIMEOUT)
    assert done.status == RunStatus.SUCCEEDED
    assert done.outputs["charge"] == {"receipt": "r-7"}
    assert done.outputs["label"] == ["book for r-7", "pen for r-7"]
    assert done.steps["refund"].status == StepStatus.SKIPPED
    # the second listing adds worker, wait and webhook steps to the same flow
    exec(compile(more_steps, "docs/flows.md:Flows in Python", "exec"), module.__dict__)
    steps = module.orders.definition().steps
    assert [(s.id, s.transport, s.type) for s in steps[-3:]] == [
        ("ship", "worker", "task"),
        ("approval", "worker", "wait"),
        ("notify", "webhook", "task"),
    ]


def _docs_examples() -> list[str]:
    """The Python blocks of ``docs/flows.md``'s "Flows in Python" section."""
    text = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    section = text[text.index("## Flows in Python") :]
    return re.findall(r"^```python\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


async def _eventually(check: Any, timeout: float = RESULT_TIMEOUT) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (found := await check()) is None:
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return found
