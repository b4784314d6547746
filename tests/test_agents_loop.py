"""``run_agent_worker`` driven by tool-calling fake chat models against a live engine: batches,
recoverable tool errors, model failures, timeouts, step limits, heartbeats during long model
calls (on the fake clock), concurrency, stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from cueflow.agents import EngineWorkerClient, HttpWorkerClient, WorkerSession, run_agent_worker
from cueflow.agents.testing import ScriptedChatModel, answer, calls, task_of, tool_results
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state
from tests.conftest import eventually, register


def adder(messages: list[BaseMessage]) -> AIMessage:
    """A reactive model: adds the payload's ``a`` and ``b``; ``a`` must be a number."""
    payload = task_of(messages)["payload"]
    if not isinstance(payload.get("a"), int):
        return answer(success=False, error=f"cannot add {payload.get('a')!r}")
    return answer(success=True, result=str(payload["a"] + payload["b"]), summary="added")


async def test_a_batch_of_executions_is_processed_with_the_expected_outcomes(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    payloads = [{"task": "add", "a": i, "b": 10} for i in range(4)] + [{"task": "add", "a": "x"}]
    ids = await due_executions(engine, clock, user, payloads)
    lines: list[str] = []
    runs = await run_agent_worker(
        ScriptedChatModel(policy=adder),
        EngineWorkerClient(engine, user),
        until_idle=True,
        say=lines.append,
    )
    # Due at the same moment, the five are handed out in an order the queue leaves open (ties
    # of priority and time): each is processed once, with its own outcome.
    assert len(runs) == 5
    assert {r.execution_id: (r.status, r.detail) for r in runs} == {
        **{ids[i]: ("succeeded", str(i + 10)) for i in range(4)},
        ids[4]: ("failed", "cannot add 'x'"),
    }
    for i, execution_id in enumerate(ids):
        row = await state(engine, user, execution_id)
        assert row["status"] == ("success" if i < 4 else "failed")
        assert row["outcome_result"] == (str(i + 10) if i < 4 else None)
    assert (await state(engine, user, ids[0]))["evidence"] == {"summary": "added"}
    assert any("claimed" in line for line in lines)


async def test_invalid_tool_calls_are_answered_with_errors_and_the_loop_continues(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    seen: list[list[ToolMessage]] = []

    def report(messages: list[BaseMessage], **args: Any) -> AIMessage:
        seen.append(tool_results(messages))
        return calls(
            ("report_outcome", {"execution_id": task_of(messages)["execution_id"], **args})
        )

    malformed = AIMessage(
        content="",
        invalid_tool_calls=[
            {"name": "report_outcome", "args": "{oops", "id": "bad-1", "error": None,
             "type": "invalid_tool_call"},
        ],
    )  # fmt: skip

    def noting(reply: AIMessage) -> Any:
        def step(messages: list[BaseMessage]) -> AIMessage:
            seen.append(tool_results(messages))
            return reply

        return step

    model = ScriptedChatModel(
        steps=[
            lambda m: report(m, success="perhaps", result_url="ftp://SECRET"),
            noting(malformed),
            noting(calls(("launch_rockets", {}))),
            noting(calls(("get_execution", {"execution_id": "x"}))),
            lambda m: report(m, success=True, result="fixed", external_id="ticket-9"),
        ]
    )
    runs = await run_agent_worker(model, EngineWorkerClient(engine, user), until_idle=True)
    assert [(r.status, r.detail, r.steps) for r in runs] == [("succeeded", "fixed", 5)]
    errors = [replies[0] for replies in seen[1:]]
    assert all(reply.status == "error" for reply in errors)
    assert errors[0].text.startswith("invalid arguments:")
    assert "success" in errors[0].text and "result_url" in errors[0].text
    assert "SECRET" not in errors[0].text
    assert errors[1].text.startswith("invalid tool call")
    assert "unknown tool 'launch_rockets'" in errors[2].text
    assert f"this task is execution {execution_id}" in errors[3].text
    row = await state(engine, user, execution_id)
    assert (row["status"], row["outcome_result"]) == ("success", "fixed")
    assert row["evidence"] == {"external_id": "ticket-9"}
    assert model.bound_tools == ["report_outcome", "release_execution", "get_execution"]


async def test_a_model_exception_is_reported_as_a_failure_and_the_next_one_is_processed(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "t"}, {"task": "t"}])
    model = ScriptedChatModel(
        steps=[RuntimeError("provider overloaded"), answer(success=True, result="all good")]
    )
    runs = await run_agent_worker(model, EngineWorkerClient(engine, user), until_idle=True)
    assert [(r.status, r.detail) for r in runs] == [
        ("failed", "model error: RuntimeError: provider overloaded"),
        ("succeeded", "all good"),
    ]
    first = await state(engine, user, ids[0])
    assert (first["status"], first["outcome_error"]) == (
        "failed",
        "model error: RuntimeError: provider overloaded",
    )
    assert (await state(engine, user, ids[1]))["outcome_result"] == "all good"


async def test_a_timeout_or_running_out_of_steps_is_reported_as_a_failure(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "t"}, {"task": "t"}])

    async def hang(messages: Sequence[BaseMessage]) -> AIMessage:
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    def look(messages: list[BaseMessage]) -> AIMessage:
        return calls(("get_execution", {"execution_id": task_of(messages)["execution_id"]}))

    client = EngineWorkerClient(engine, user)
    runs = await run_agent_worker(
        ScriptedChatModel(steps=[hang]), client, max_executions=1, execution_timeout=0.2
    )
    runs += await run_agent_worker(
        ScriptedChatModel(policy=look), client, until_idle=True, max_steps=3
    )
    assert [(r.status, r.detail) for r in runs] == [
        ("failed", "timed out after 0.2 s"),
        ("failed", "ran out of steps (3) without a final answer"),
    ]
    assert (await state(engine, user, ids[1]))["outcome_error"] == runs[1].detail


async def test_heartbeats_keep_a_long_model_call_alive_past_the_lease(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "slow"}])
    lease = engine.settings.worker_claim_timeout_seconds
    during: list[dict[str, Any]] = []

    async def extended() -> bool:
        # the beat that this advance made due has landed (not merely a lease not yet run out:
        # checking only that let the next advance overtake a beat still on its way, which then
        # found its lease gone on a loaded machine)
        row = await state(engine, user, execution_id)
        return row["last_heartbeat_at"] == clock.now() and row["lease_expires_at"] > clock.now()

    async def think(messages: Sequence[BaseMessage]) -> AIMessage:
        for _ in range(4):  # two whole leases pass while the model thinks
            clock.advance(lease / 2)
            await eventually(extended, timeout=30)
        assert await engine.sweep() == 0
        during.append(await state(engine, user, execution_id))
        return answer(success=True, result="thought hard")

    runs = await run_agent_worker(
        ScriptedChatModel(steps=[think]), EngineWorkerClient(engine, user), until_idle=True
    )
    assert during[0]["status"] == "delivering"
    assert during[0]["last_heartbeat_at"] == clock.now()
    assert [(r.status, r.detail) for r in runs] == [("succeeded", "thought hard")]
    assert (await state(engine, user, execution_id))["attempts"] == 1


async def test_without_heartbeats_past_max_hold_the_lease_runs_out(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "slow"}])
    lease = engine.settings.worker_claim_timeout_seconds
    swept: list[int] = []

    async def think(messages: Sequence[BaseMessage]) -> AIMessage:
        clock.advance(lease + 1)
        swept.append(await engine.sweep())
        await engine.claim(user, "another-worker", execution_id)
        return answer("too late")

    session = WorkerSession(EngineWorkerClient(engine, user), max_hold_seconds=lease / 2)
    runs = await run_agent_worker(ScriptedChatModel(steps=[think]), session, until_idle=True)
    assert swept == [1]
    assert [r.status for r in runs] == ["lost"]
    row = await state(engine, user, execution_id)
    assert (row["claimed_by_worker"], row["outcome_recorded_at"]) == ("another-worker", None)


async def test_two_agent_loops_never_process_the_same_execution(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "t", "i": i} for i in range(8)])
    seen: dict[str, list[str]] = {"one": [], "two": []}
    working = {"one": asyncio.Event(), "two": asyncio.Event()}

    def worker(name: str) -> Any:
        async def policy(messages: list[BaseMessage]) -> AIMessage:
            seen[name].append(task_of(messages)["execution_id"])
            working[name].set()
            for event in working.values():  # both loops hold a claim before either finishes
                await asyncio.wait_for(event.wait(), 10)
            return answer(success=True, result=name)

        return run_agent_worker(
            ScriptedChatModel(policy=policy),
            EngineWorkerClient(engine, user, worker_id=f"agent-{name}"),
            until_idle=True,
        )

    one, two = await asyncio.gather(worker("one"), worker("two"))
    assert one and two
    assert set(seen["one"]).isdisjoint(seen["two"])
    assert sorted(seen["one"] + seen["two"]) == sorted(ids)
    assert all(r.status == "succeeded" for r in one + two)
    for execution_id in ids:
        row = await state(engine, user, execution_id)
        assert row["attempts"] == 1
        assert row["outcome_result"] == ("one" if execution_id in seen["one"] else "two")


async def test_concurrency_runs_several_executions_at_once(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "t"} for _ in range(4)])
    active, peak = 0, 0
    pair = asyncio.Event()

    async def policy(messages: list[BaseMessage]) -> AIMessage:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        if active == 2:
            pair.set()
        await asyncio.wait_for(pair.wait(), 10)  # the first two run side by side
        active -= 1
        return answer(success=True, result="done")

    runs = await run_agent_worker(
        ScriptedChatModel(policy=policy),
        EngineWorkerClient(engine, user),
        until_idle=True,
        concurrency=2,
    )
    assert peak == 2
    assert sorted(r.execution_id for r in runs) == sorted(ids)


async def test_the_model_may_release_the_execution_for_a_later_retry(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])

    def give_back(messages: list[BaseMessage]) -> AIMessage:
        args = {"execution_id": task_of(messages)["execution_id"], "reason": "API down"}
        return calls(("release_execution", args))

    runs = await run_agent_worker(
        ScriptedChatModel(steps=[give_back]),
        EngineWorkerClient(engine, user),
        max_executions=1,
    )
    assert [r.status for r in runs] == ["released"]
    row = await state(engine, user, execution_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "API down" in row["error_message"]


async def test_a_stopped_loop_releases_what_it_holds(engine: Engine, clock: FakeClock) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    thinking = asyncio.Event()

    async def forever(messages: Sequence[BaseMessage]) -> AIMessage:
        thinking.set()
        await asyncio.Event().wait()
        raise AssertionError("not reached")

    loop = asyncio.create_task(
        run_agent_worker(ScriptedChatModel(steps=[forever]), EngineWorkerClient(engine, user))
    )
    await asyncio.wait_for(thinking.wait(), 10)
    assert (await state(engine, user, execution_id))["status"] == "delivering"
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    row = await state(engine, user, execution_id)
    assert row["status"] == "pending"
    assert "worker stopped" in row["error_message"]


async def test_the_loop_works_over_http_too(engine: Engine, clock: FakeClock) -> None:
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as plain:
        key = (await register(plain))["Authorization"].removeprefix("Bearer ")
    user = await engine.principal(key)
    ids = await due_executions(engine, clock, user, [{"task": "add", "a": 1, "b": 2}])
    client = HttpWorkerClient("http://cueflow.test", key, transport=transport)
    try:
        runs = await run_agent_worker(ScriptedChatModel(policy=adder), client, until_idle=True)
    finally:
        await client.aclose()
    assert [(r.execution_id, r.status, r.detail) for r in runs] == [(ids[0], "succeeded", "3")]
