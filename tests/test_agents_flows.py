"""Agents and flows, on both stores: the flow tools (start a run, read it, send it an event)
through langchain-core, over HTTP and through an MCP client; an agent working a flow step sees
its parents' outputs, the output contract and the previous attempt's failure, and its final JSON
answer becomes the step's output."""

from __future__ import annotations

import json
from typing import Any

import httpx
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from cueflow.agents import (
    CueflowToolkit,
    EngineWorkerClient,
    HttpWorkerClient,
    WorkerSession,
    run_agent_worker,
)
from cueflow.agents.answers import outcome_from_answer, task_from_text, task_text
from cueflow.agents.mcp_server import build_mcp_server
from cueflow.agents.testing import ScriptedChatModel, answer, calls, task_of
from cueflow.api import create_app
from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user
from tests.conftest import register
from tests.flows_support import task
from tests.mcp_support import in_process
from tests.test_agents_tools import Kit

APPROVAL = {"id": "approval", "needs": ["draft"], "type": "wait", "event": "approved",
            "timeout_seconds": 3600}  # fmt: skip
REVIEW = {"name": "review", "steps": [task("draft"), APPROVAL, task("publish", "approval")]}
CONTRACT = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "words": {"type": "integer"}},
    "required": ["title", "words"],
}


async def _work(engine: Engine, user: Principal, step: str, **outcome: Any) -> dict[str, Any]:
    """Claim the due execution of ``step`` as worker ``w1`` and report ``outcome``; its
    payload."""
    batch = await engine.claim_batch(user, "w1", limit=1, task=step)
    [row] = batch.claimed
    await engine.report_outcome(user, row.id, {"success": True, **outcome}, "w1")
    payload: dict[str, Any] = row.payload_override
    return payload


async def test_an_agent_starts_a_run_follows_it_and_resumes_its_wait_with_an_event(
    engine: Engine,
) -> None:
    user = await new_user(engine)
    flow = await engine.create_flow(user, REVIEW)
    kit = Kit(CueflowToolkit.for_engine(engine, user, include_management=True))
    assert [f["id"] for f in (await kit.ok("list_flows"))["flows"]] == [flow.id]
    started = {"flow_id": flow.id, "input": '{"doc": "d1"}', "idempotency_key": "k1"}
    run = await kit.ok("start_flow_run", **started)
    assert (run["status"], run["input"]) == ("running", {"doc": "d1"})
    assert run["steps"]["draft"]["status"] == "running"
    assert (await kit.ok("start_flow_run", **started))["id"] == run["id"]

    await _work(engine, user, "draft", output={"text": "hello"})
    shown = await kit.ok("get_flow_run", run_id=run["id"])
    assert shown["status"] == "waiting"
    assert shown["steps"]["draft"]["output"] == {"text": "hello"}
    assert shown["steps"]["approval"]["status"] == "waiting"

    sent = await kit.ok("send_flow_event", run_id=run["id"], event="approved", data='{"by": "ann"}')
    assert (sent["resumed"], sent["status"]) == (["approval"], "running")
    publish = await _work(engine, user, "publish")
    assert publish["flow"]["parents"] == {"approval": {"by": "ann"}}
    assert (await kit.ok("get_flow_run", run_id=run["id"]))["status"] == "succeeded"
    ended = await kit.error("send_flow_event", run_id=run["id"], event="approved")
    assert "flow_run_finished" in ended


async def test_flow_tool_refusals_are_tool_errors_the_model_can_act_on(engine: Engine) -> None:
    user = await new_user(engine)
    kit = Kit(CueflowToolkit.for_engine(engine, user, include_management=True))
    assert "flow_run_not_found" in await kit.error("get_flow_run", run_id="run_nope")
    assert "flow_not_found" in await kit.error("start_flow_run", flow_id="flw_nope")
    assert "run_id" in await kit.error("get_flow_run", run_id="../v1/cues")
    flow = await engine.create_flow(user, REVIEW)
    assert "input must be JSON text" in await kit.error(
        "start_flow_run", flow_id=flow.id, input="{not json"
    )


async def test_webhook_step_header_values_never_reach_the_model(engine: Engine) -> None:
    user = await new_user(engine)
    callback = {"url": "https://93.184.216.34/hook", "headers": {"Authorization": "Bearer s3cr3t"}}
    hook = {"id": "notify", "transport": "webhook", "callback": callback}
    await engine.create_flow(user, {"name": "hooked", "steps": [hook]})
    kit = Kit(CueflowToolkit.for_engine(engine, user, include_management=True))
    listed = await kit.call("list_flows")
    assert "s3cr3t" not in listed.text
    step = json.loads(listed.text)["flows"][0]["steps"][0]
    assert step["callback"]["headers"] == {"Authorization": "***"}


async def test_the_flow_tools_work_over_http(engine: Engine) -> None:
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as plain:
        key = (await register(plain))["Authorization"].removeprefix("Bearer ")
    user = await engine.principal(key)
    steps = [task("draft"), {**APPROVAL, "event": "signed off"}]
    flow = await engine.create_flow(user, {"name": "review", "steps": steps})
    client = HttpWorkerClient("http://cueflow.test", key, transport=transport)
    async with CueflowToolkit(session=WorkerSession(client), include_management=True) as toolkit:
        kit = Kit(toolkit)
        run = await kit.ok("start_flow_run", flow_id=flow.id, input='"doc"')
        assert run["input"] == "doc"
        await _work(engine, user, "draft", output="text")
        assert (await kit.ok("get_flow_run", run_id=run["id"]))["status"] == "waiting"
        sent = await kit.ok("send_flow_event", run_id=run["id"], event="signed off", data="true")
        assert sent["resumed"] == ["approval"]
        shown = await kit.ok("get_flow_run", run_id=run["id"])
        assert (shown["status"], shown["steps"]["approval"]["output"]) == ("succeeded", True)
        assert "flow_run_not_found" in await kit.error("get_flow_run", run_id="run_nope")


async def test_an_mcp_client_starts_follows_and_resumes_a_run(engine: Engine) -> None:
    user = await new_user(engine)
    flow = await engine.create_flow(user, REVIEW)
    server = build_mcp_server(EngineWorkerClient(engine, user), include_management=True)
    async with in_process(server) as mcp:
        tools = await mcp.tools()
        assert tools["get_flow_run"].read_only is True
        assert tools["send_flow_event"].read_only is False
        run = await mcp.ok("start_flow_run", flow_id=flow.id, input={"doc": "d2"})
        await _work(engine, user, "draft", output={"text": "hi"})
        assert (await mcp.ok("get_flow_run", run_id=run["id"]))["status"] == "waiting"
        sent = await mcp.ok("send_flow_event", run_id=run["id"], event="approved", data={"ok": 1})
        assert sent["resumed"] == ["approval"]
        assert "flow_run_not_found" in await mcp.error("get_flow_run", run_id="run_nope")


def _summarizer(seen: list[str]) -> Any:
    """A model that keeps each task text it is handed, and answers the contract's ``words``
    as text until it is told that broke the contract, then as an integer (bare JSON)."""

    def policy(messages: list[BaseMessage]) -> AIMessage:
        prompt = next(m for m in messages if isinstance(m, HumanMessage)).text
        seen.append(prompt)
        text = task_of(messages)["payload"]["flow"]["parents"]["fetch"]["text"]
        if "FAILED [output_contract]" not in prompt:
            return answer(success=True, output={"title": "News", "words": "three"})
        return answer(json.dumps({"title": "News", "words": len(text.split())}))

    return policy


async def test_an_agent_step_sees_its_contract_fails_it_and_corrects_itself_on_the_retry(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    summarize = task("summarize", "fetch", output_schema=CONTRACT, retry={"max_attempts": 2})
    flow = await engine.create_flow(user, {"name": "news", "steps": [task("fetch"), summarize]})
    run, _, _ = await engine.start_flow_run(user, flow.id, {"input": {"url": "u"}})
    await _work(engine, user, "fetch", output={"text": "one two three"})
    seen: list[str] = []
    model = ScriptedChatModel(policy=_summarizer(seen))
    client = EngineWorkerClient(engine, user)
    runs = await run_agent_worker(model, client, task="summarize", until_idle=True)
    clock.advance(minutes=1)  # the retry's backoff (retry's default: 1 minute first)
    runs += await run_agent_worker(model, client, task="summarize", until_idle=True)
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    first, second = seen
    assert "step 'summarize' of flow run" in first and "(attempt 1)" in first
    assert '"text": "one two three"' in first.split("payload.flow.parents")[1]
    assert '"required": [' in first  # the contract is shown
    assert "FAILED" not in first
    assert "(attempt 2)" in second and "FAILED [output_contract]" in second
    assert '"words": "three"' in second.split("FAILED")[1]  # the output that broke it
    _, steps = await engine.get_flow_run(user, run.id)
    [done] = [s for s in steps if s.step_id == "summarize"]
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert done.output == {"title": "News", "words": 3}


async def test_report_outcome_carries_a_step_output_given_as_json_text(engine: Engine) -> None:
    user = await new_user(engine)
    flow = await engine.create_flow(user, {"name": "one", "steps": [task("a")]})
    run, _, _ = await engine.start_flow_run(user, flow.id, {})

    def report(messages: list[BaseMessage]) -> AIMessage:
        execution_id = task_of(messages)["execution_id"]
        output = '{"rows": [1, 2]}'
        return calls(("report_outcome", {"execution_id": execution_id, "success": True,
                                         "output": output}))  # fmt: skip

    runs = await run_agent_worker(
        ScriptedChatModel(steps=[report]), EngineWorkerClient(engine, user), until_idle=True
    )
    assert [(r.status, r.detail) for r in runs] == [("succeeded", 'output {"rows": [1, 2]}')]
    _, steps = await engine.get_flow_run(user, run.id)
    assert steps[0].output == {"rows": [1, 2]}


async def test_outside_a_flow_a_json_answer_without_success_is_still_not_an_outcome(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    await due_executions(engine, clock, user, [{"task": "t"}])
    model = ScriptedChatModel(steps=[answer('{"title": "x"}'), answer('{"title": "x"}')])
    runs = await run_agent_worker(model, EngineWorkerClient(engine, user), until_idle=True)
    assert [r.status for r in runs] == ["failed"]
    assert "states no outcome" in str(runs[0].detail)


def test_a_retried_item_prompt_names_the_item_and_the_failure_without_a_contract() -> None:
    flow = {
        "run_id": "run_1", "flow_id": "flw_1", "step": "pack", "input": None, "parents": {},
        "attempt": 2, "item": {"sku": "a"}, "item_index": 3,
        "previous_failure": {"type": "reported_failure", "reason": "printer offline",
                             "attempt": 1, "output": None},
    }  # fmt: skip
    task = {"execution_id": "e1", "cue_name": "step", "payload": {"task": "pack", "flow": flow}}
    text = task_text(task)
    assert "step 'pack' of flow run run_1 (attempt 2)" in text
    assert "item 3" in text and '"sku": "a"' in text
    assert "FAILED [reported_failure]: printer offline" in text
    assert "Avoid the same failure" in text
    assert "JSON Schema" not in text
    assert task_from_text(text) == task


def test_a_final_answer_output_is_taken_as_the_json_it_is() -> None:
    assert outcome_from_answer('{"success": true, "output": "42"}') == (
        {"success": True, "output": "42"},
        [],
    )
    assert outcome_from_answer('{"success": true, "output": "plain"}')[0]["output"] == "plain"
    bare = outcome_from_answer('Done: {"title": "t"}', step_output=True)
    assert bare == ({"success": True, "output": {"title": "t"}}, [])
