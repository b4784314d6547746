"""The agent integration as an agent builder uses it: the real ``langchain_openai.ChatOpenAI``
against a scripted OpenAI-compatible server (:mod:`tests.openai_stub`, a real HTTP server on
loopback) replaying tool calls, malformed and made-up ones, rate limits and 5xx; with
``run_agent_worker`` and the toolkit's tools."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow.agents import CueflowToolkit, EngineWorkerClient, run_agent_worker
from cueflow.agents.answers import outcome_from_answer
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state
from tests.conftest import eventually
from tests.openai_stub import Reply, call, fail, openai_stub, say, strict_problems
from tests.server import cueflow_server


def execution_of(body: dict[str, Any]) -> str:
    """The execution id of the task a request's conversation is about."""
    task = next(m["content"] for m in body["messages"] if m["role"] == "user")
    found = re.search(r"Work on execution (\S+) ", task)
    assert found, task
    return found.group(1)


def task_of(body: dict[str, Any]) -> dict[str, Any]:
    """The task object handed to the model."""
    task = next(m["content"] for m in body["messages"] if m["role"] == "user")
    return dict(json.loads(task.split("```json\n", 1)[1].rsplit("\n```", 1)[0]))


def reporting(**outcome: Any) -> Any:
    """A step calling ``report_outcome`` for the execution at hand."""
    return lambda body: call("report_outcome", {"execution_id": execution_of(body), **outcome})


# 1. a failure is never recorded as a success -----------------------------------------------------
FENCED_FAILURE = (
    "I tried to send the invoice but the mail server refused it.\n\n"
    '```json\n{"success": false, "error": "SMTP 550: mailbox unavailable"}\n```\n'
    "Let me know if I should try another address."
)


@pytest.mark.parametrize(
    ("final", "error"),
    [
        (FENCED_FAILURE, "SMTP 550: mailbox unavailable"),
        ('Done: {"success": false, "result_url": "n/a"} (no result)', "without saying why"),
        ('{"success": false, "error": "quota", "result_url": "n/a"}', "quota"),
    ],
)
async def test_a_failure_answer_is_recorded_as_a_failure(
    engine: Engine, clock: FakeClock, final: str, error: str
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "invoice"}])
    with openai_stub([say(final)]) as stub:
        runs = await run_agent_worker(
            stub.model(), EngineWorkerClient(engine, user), until_idle=True
        )
    assert [r.status for r in runs] == ["failed"]
    row = await state(engine, user, execution_id)
    assert row["status"] == "failed"
    assert error in row["outcome_error"]
    assert row["outcome_success"] is False


async def test_an_answer_stating_no_outcome_is_asked_again_with_report_outcome_required(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "a"}, {"task": "b"}])
    steps: list[Any] = [
        say('{"success": "false"}'),  # a string, not a boolean: not an outcome
        reporting(success=False, error="could not reach the API"),
        say("All done, everything went great!"),  # prose: not an outcome either
        say("I really did it."),
    ]
    with openai_stub(steps) as stub:
        runs = await run_agent_worker(
            stub.model(), EngineWorkerClient(engine, user), until_idle=True
        )
        requests = stub.requests
    assert [(r.status, r.detail) for r in runs] == [
        ("failed", "could not reach the API"),
        ("failed", runs[1].detail),
    ]
    assert "states no outcome" in (runs[1].detail or "")
    asked = requests[1]
    assert asked["tool_choice"] == {"type": "function", "function": {"name": "report_outcome"}}
    assert '"success" must be true or false' in asked["messages"][-1]["content"]
    assert "tool_choice" not in requests[0]
    rows = [await state(engine, user, i) for i in ids]
    assert [r["status"] for r in rows] == ["failed", "failed"]


def test_answers_are_read_field_by_field() -> None:
    report, dropped = outcome_from_answer(
        'Here:\n```json\n{"success": true, "result": "sent", "result_url": "n/a", '
        '"external_id": "INV-1", "colour": "red"}\n```'
    )
    assert report == {"success": True, "result": "sent", "external_id": "INV-1"}
    assert sorted(dropped) == ["colour", "result_url"]


# 2. releases and transient model errors follow the backoff; the next attempt hears why ----------
async def test_rate_limits_5xx_and_releases_follow_the_backoff_with_the_failure_passed_on(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    retry = {"retry": {"max_attempts": 4, "backoff_minutes": [1, 5, 15]}}
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}], **retry)
    client = EngineWorkerClient(engine, user)
    give_back = lambda body: call(  # noqa: E731
        "release_execution", {"execution_id": execution_of(body), "reason": "API down"}
    )
    steps: list[Any] = [fail(429, retry_after=20), fail(500), give_back, reporting(success=True)]
    with openai_stub(steps) as stub:
        first = await run_agent_worker(stub.model(), client, until_idle=True)
        assert [r.status for r in first] == ["released"]  # and not claimed again at once
        row = await state(engine, user, execution_id)
        assert (row["status"], row["attempts"]) == ("pending", 1)
        assert row["next_retry"] == clock.now() + timedelta(seconds=20)  # Retry-After
        clock.advance(20)
        second = await run_agent_worker(stub.model(), client, until_idle=True)
        assert [r.status for r in second] == ["released"]
        assert (await state(engine, user, execution_id))["next_retry"] == clock.now() + timedelta(
            minutes=5
        )  # the cue's backoff for attempt 2
        clock.advance(300)
        third = await run_agent_worker(stub.model(), client, until_idle=True)
        assert [r.status for r in third] == ["released"]
        assert await run_agent_worker(stub.model(), client, until_idle=True) == []
        clock.advance(900)
        fourth = await run_agent_worker(stub.model(), client, until_idle=True)
        tasks = [task_of(body) for body in stub.requests]
    assert [r.status for r in fourth] == ["succeeded"]
    assert [t["attempt"] for t in tasks] == [1, 2, 3, 4]
    assert "previous_attempt" not in tasks[0]
    assert tasks[1]["previous_attempt"]["attempt"] == 1
    assert "RateLimitError" in tasks[1]["previous_attempt"]["failure"]
    assert "after 0 model call(s); tools called: none" in tasks[1]["previous_attempt"]["failure"]
    assert "Error code: 500" in tasks[2]["previous_attempt"]["failure"]
    assert "API down" in tasks[3]["previous_attempt"]["failure"]
    assert (await state(engine, user, execution_id))["attempts"] == 4


# 4. leases are kept alive without ``async with`` -------------------------------------------------
async def test_tools_used_without_async_with_keep_their_leases_alive(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    tools = {t.name: t for t in CueflowToolkit.for_engine(engine, user).get_tools()}
    claimed = await tools["claim_execution"].ainvoke({"execution_id": execution_id})
    assert json.loads(claimed)["claimed"] is True
    lease = engine.settings.worker_claim_timeout_seconds
    for _ in range(3):  # a lease and a half pass while the model thinks
        clock.advance(lease / 2)

        async def extended() -> bool:
            row = await state(engine, user, execution_id)
            return bool(row["last_heartbeat_at"] == clock.now())

        await eventually(extended)
    assert await engine.sweep() == 0
    assert (await state(engine, user, execution_id))["claimed_by_worker"] is not None
    done = await tools["report_outcome"].ainvoke({"execution_id": execution_id, "success": True})
    assert json.loads(done)["recorded"] is True


# agents are workers ------------------------------------------------------------------------------
async def test_an_agent_worker_registers_and_is_listed_with_its_task(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    await due_executions(engine, clock, user, [{"task": "summarise"}], task="summarise")
    client = EngineWorkerClient(engine, user, worker_id="agent-summariser")
    with openai_stub([reporting(success=True, result="ok")]) as stub:
        runs = await run_agent_worker(stub.model(), client, task="summarise", until_idle=True)
    assert [r.status for r in runs] == ["succeeded"]
    [worker] = await engine.list_workers(user)
    assert worker.worker_id == "agent-summariser"
    assert worker.handlers == ["summarise"]
    assert worker.heartbeat_status == "active"


# 8. strict tool schemas, short names -------------------------------------------------------------
async def test_tool_schemas_pass_strict_mode_and_strict_calls_work(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    toolkit = CueflowToolkit.for_engine(
        engine, user, include_management=True, allow_destructive=True
    )
    tools = {t.name: t for t in toolkit.get_tools()}
    strict_report = {
        "execution_id": execution_id, "success": True, "result": "done", "error": None,
        "summary": None, "external_id": None, "result_url": None, "result_ref": None,
        "result_type": None, "artifacts": json.dumps([{"name": "report.pdf"}]),
        "metadata": json.dumps({"pages": 3}),
    }  # fmt: skip
    steps = [
        call("claim_execution", {"execution_id": execution_id}),
        call("report_outcome", strict_report),
        say("finished"),
    ]
    async with toolkit:
        with openai_stub(steps) as stub:
            llm = stub.model().bind_tools(list(tools.values()), strict=True)
            messages: list[Any] = [("user", "work")]
            for _ in range(3):
                reply = await llm.ainvoke(messages)
                messages.append(reply)
                for tool_call in reply.tool_calls:
                    messages.append(await tools[tool_call["name"]].ainvoke(tool_call))
            sent = stub.requests[0]["tools"]
    assert {t["function"]["name"] for t in sent} == set(tools)
    for tool in sent:
        assert tool["function"]["strict"] is True
        assert strict_problems(tool["function"]["parameters"]) == [], tool["function"]["name"]
    replies = [m for m in messages[1:] if m.type == "tool"]
    assert [m.status for m in replies] == ["success", "success"], replies
    row = await state(engine, user, execution_id)
    assert (row["status"], row["outcome_result"]) == ("success", "done")
    assert row["outcome_metadata"] == {"pages": 3}


async def test_a_name_prefix_that_makes_names_too_long_is_refused(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    toolkit = CueflowToolkit.for_engine(engine, user, name_prefix="acme_")
    assert all(len(t.name) <= 64 for t in toolkit.get_tools())
    with pytest.raises(ValueError, match="64"):
        CueflowToolkit.for_engine(engine, user, name_prefix="x" * 50)
    with pytest.raises(ValueError, match="letters"):
        CueflowToolkit.for_engine(engine, user, name_prefix="my tools.")


# resume after a crash ----------------------------------------------------------------------------
async def test_a_checkpointer_resumes_an_interrupted_conversation(
    engine: Engine, clock: FakeClock
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    saver = InMemorySaver()
    client = EngineWorkerClient(engine, user)

    def look(body: dict[str, Any]) -> Reply:
        return call("get_execution", {"execution_id": execution_of(body)})

    def crash_here(body: dict[str, Any]) -> Reply:
        stub.delay = 1.0  # the model thinks; the worker is stopped meanwhile
        return fail(500)

    with openai_stub([look, crash_here, reporting(success=True, result="resumed")]) as stub:
        loop = asyncio.create_task(run_agent_worker(stub.model(), client, checkpointer=saver))
        await eventually(lambda: _asked(stub, 2))
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        stub.delay = 0.0
        clock.advance(60)  # the release's backoff
        runs = await run_agent_worker(stub.model(), client, checkpointer=saver, until_idle=True)
        resumed = stub.requests[-1]["messages"]
    assert [(r.status, r.detail) for r in runs] == [("succeeded", "resumed")]
    assert [m["role"] for m in resumed] == ["system", "user", "assistant", "tool", "user"]
    assert "attempt 2" in resumed[-1]["content"]
    assert await saver.aget_tuple({"configurable": {"thread_id": execution_id}}) is None


async def _asked(stub: Any, n: int) -> bool:
    return len(stub.requests) >= n


# 3. tools work sync, in LangGraph's and langchain's agents --------------------------------------
def _server_with_work(base: str, n: int) -> tuple[str, list[str]]:
    """An account on the server at ``base`` with ``n`` due worker executions; its API key and
    the execution ids."""
    key = httpx.post(f"{base}/v1/auth/register", json={"email": "agent@example.com"}).json()
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    cue = httpx.post(
        f"{base}/v1/cues",
        headers=headers,
        json={
            "name": "job",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "0 0 1 1 *"},
            "payload": {"task": "t"},
        },
    ).json()
    ids = [
        httpx.post(f"{base}/v1/cues/{cue['id']}/fire", headers=headers).json()["id"]
        for _ in range(n)
    ]
    return key["api_key"], ids


def _steps_for(execution_id: str, final: str) -> list[Any]:
    """Claim, a made-up tool, a bad argument, report, final answer."""
    return [
        call("claim_execution", {"execution_id": execution_id}),
        call("launch_rockets", {"count": 3}),
        call("report_outcome", {"execution_id": execution_id, "success": "perhaps"}),
        call("report_outcome", {"execution_id": execution_id, "success": True, "result": final}),
        say(final),
    ]


def test_tools_work_sync_in_langgraph_and_langchain_agents(tmp_path: Path) -> None:
    from langchain.agents import create_agent
    from langgraph.prebuilt import create_react_agent

    with cueflow_server(f"sqlite:///{tmp_path / 'agents.db'}", tmp_path) as base:
        key, ids = _server_with_work(base, 2)
        toolkit = CueflowToolkit.for_url(base, key, worker_id="sync-agent")
        tools = toolkit.get_tools()
        by_name = {t.name: t for t in tools}
        polled = json.loads(by_name["poll_executions"].invoke({}))
        assert sorted(item["execution_id"] for item in polled["executions"]) == sorted(ids)
        steps = [*_steps_for(ids[0], "first"), *_steps_for(ids[1], "second")]
        with openai_stub(steps) as stub:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                graph = create_react_agent(stub.model(), tools)
            graph.invoke({"messages": [("user", "Process the due work.")]})
            agent = create_agent(model=stub.model(), tools=tools, system_prompt="Work.")
            result = agent.invoke({"messages": [("user", "Process the due work.")]})
            tool_replies = [m for m in stub.tool_results(2)] + [m for m in stub.tool_results(7)]
        toolkit.close()
        headers = {"Authorization": f"Bearer {key}"}
        rows = [httpx.get(f"{base}/v1/executions/{i}", headers=headers).json() for i in ids]
        workers = httpx.get(f"{base}/v1/workers", headers=headers).json()["workers"]
    assert result["messages"][-1].text == "second"
    assert [(r["status"], r["outcome"]["result"]) for r in rows] == [
        ("success", "first"),
        ("success", "second"),
    ]
    assert all("launch_rockets" in m["content"] for m in tool_replies)
    assert [w["worker_id"] for w in workers] == ["sync-agent"]


# 6. the toolkit example survives the ordinary mistakes of models --------------------------------
def _example(name: str) -> Any:
    path = Path(__file__).resolve().parents[1] / "examples" / "agents" / name
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_toolkit_example_survives_made_up_tools_and_malformed_calls(
    engine: Engine, clock: FakeClock
) -> None:
    example = _example("toolkit_agent.py")
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "invoice"}])
    steps = [
        call("claim_execution", {"execution_id": execution_id}),
        call("send_invoice", {"customer": "acme"}),  # made up
        call("report_outcome", '{"execution_id": "' + execution_id + '", "success": tru'),
        call("report_outcome", {"execution_id": execution_id, "success": True, "result": "sent"}),
        say("All invoices are sent."),
    ]
    with openai_stub(steps) as stub:
        async with CueflowToolkit.for_engine(engine, user) as toolkit:
            final = await example.agent(stub.model(), toolkit.get_tools(), "Send the invoices.")
        replies = [stub.tool_results(i) for i in (2, 3)]
    assert final == "All invoices are sent."
    assert "unknown tool 'send_invoice'" in replies[0][0]["content"]
    assert "invalid tool call" in replies[1][0]["content"]
    row = await state(engine, user, execution_id)
    assert (row["status"], row["outcome_result"]) == ("success", "sent")


async def test_the_toolkit_example_gives_back_a_claim_the_model_never_reports(
    engine: Engine, clock: FakeClock
) -> None:
    example = _example("toolkit_agent.py")
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "invoice"}])
    steps = [
        call("claim_execution", {"execution_id": execution_id}),
        call("report_outcome", "{not json"),
        say(""),
    ]
    with openai_stub(steps) as stub:
        async with CueflowToolkit.for_engine(engine, user) as toolkit:
            await example.agent(stub.model(), toolkit.get_tools(), "Send the invoices.")
    row = await state(engine, user, execution_id)
    assert (row["status"], row["claimed_by_worker"]) == ("pending", None)
    assert "worker stopped" in row["error_message"]


# follow-up work from inside the agent ------------------------------------------------------------
async def test_an_agent_schedules_a_follow_up_run_with_its_own_payload(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "poll", "page": 1}])
    cue_id = (await state(engine, user, execution_id))["cue_id"]
    assert "schedule_followup" not in {
        t.name for t in CueflowToolkit.for_engine(engine, user).get_tools()
    }
    later = (clock.now() + timedelta(minutes=10)).isoformat()
    follow_up = {"cue_id": cue_id, "payload": json.dumps({"task": "poll", "page": 2}),
                 "send_at": later}  # fmt: skip
    steps = [
        call("claim_execution", {"execution_id": execution_id}),
        call("schedule_followup", follow_up),
        call("schedule_followup", {**follow_up, "payload": '{"task": "poll", "page": '}),
        call("report_outcome", {"execution_id": execution_id, "success": True, "result": "p1"}),
        say("done"),
    ]
    toolkit = CueflowToolkit.for_engine(engine, user, include_management=True)
    async with toolkit:
        tools = {t.name: t for t in toolkit.get_tools()}
        with openai_stub(steps) as stub:
            llm = stub.model().bind_tools(list(tools.values()), strict=True)
            messages: list[Any] = [("user", "work")]
            for _ in range(5):
                reply = await llm.ainvoke(messages)
                messages.append(reply)
                for tool_call in reply.tool_calls:
                    messages.append(await tools[tool_call["name"]].ainvoke(tool_call))
    replies = [m for m in messages[1:] if m.type == "tool"]
    assert [m.status for m in replies] == ["success", "success", "error", "success"]
    assert "payload must be JSON text" in replies[2].text
    scheduled = json.loads(replies[1].text)
    assert scheduled["scheduled_for"].startswith(later[:19])
    assert await engine.claimable(user) == []
    clock.advance(600)
    [item] = await engine.claimable(user)
    assert item.id == scheduled["execution_id"]
    assert item.payload_override == {"task": "poll", "page": 2}


async def test_fire_takes_a_payload_override_for_one_run(
    engine: Engine, clock: FakeClock, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].removeprefix("Bearer "))
    [first] = await due_executions(engine, clock, user, [{"task": "t", "n": 1}])
    cue_id = (await state(engine, user, first))["cue_id"]
    fire = f"/v1/cues/{cue_id}/fire"
    bad = await client.post(fire, json={"payload_override": {"x": "a\u0000"}}, headers=auth)
    assert bad.status_code == 400, bad.text
    assert (
        await client.post(fire, json={"payload_override": [1]}, headers=auth)
    ).status_code == 422
    clock.advance(1)  # not at the scheduled run's instant
    run = await client.post(fire, json={"payload_override": {"task": "t", "n": 2}}, headers=auth)
    assert run.status_code == 200, run.text
    listed = (await client.get("/v1/executions/claimable", headers=auth)).json()["executions"]
    assert {i["execution_id"]: i["payload"] for i in listed} == {
        first: {"task": "t", "n": 1},
        run.json()["id"]: {"task": "t", "n": 2},
    }
    batch = await client.post(
        "/v1/executions/claims", json={"worker_id": "w", "limit": 5}, headers=auth
    )
    assert sorted(i["payload"]["n"] for i in batch.json()["claimed"]) == [1, 2]
