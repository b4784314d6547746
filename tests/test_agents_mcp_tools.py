"""The MCP server's tools (``build_mcp_server``) exercised by a real MCP client in process
against a live engine: which tools each flag serves, the worker and management tools at work,
refusals and bad arguments as error results, claims given back when the client goes away.
Runs on whichever ``mcp`` major is installed (``tests/mcp_support.py``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from cueflow.agents import CueflowToolkit, EngineWorkerClient
from cueflow.agents.mcp_server import build_mcp_server
from cueflow.agents.schemas import ReportOutcomeArgs
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state
from tests.mcp_support import (
    CUEAPI_MANAGEMENT_TOOLS,
    CUEAPI_WORKER_TOOLS,
    MANAGEMENT_TOOLS,
    SECRET,
    WORKER_TOOLS,
    in_process,
)


async def test_tool_sets_follow_the_flags(engine: Engine) -> None:
    client = EngineWorkerClient(engine, await new_user(engine))
    for flags, expected in [
        ({}, WORKER_TOOLS),
        ({"allow_destructive": True}, WORKER_TOOLS),
        ({"include_management": True}, WORKER_TOOLS | MANAGEMENT_TOOLS),
        (
            {"include_management": True, "allow_destructive": True},
            WORKER_TOOLS | MANAGEMENT_TOOLS | {"delete_cue"},
        ),
        ({"tool_names": "cueapi"}, CUEAPI_WORKER_TOOLS),
        (
            {"tool_names": "both", "include_management": True, "allow_destructive": True},
            WORKER_TOOLS
            | MANAGEMENT_TOOLS
            | {"delete_cue"}
            | CUEAPI_WORKER_TOOLS
            | CUEAPI_MANAGEMENT_TOOLS
            | {"cueapi_delete_cue"},
        ),
    ]:
        async with in_process(build_mcp_server(client, **flags)) as mcp:
            tools = await mcp.tools()
        assert set(tools) == expected
    assert tools["poll_executions"].read_only is True
    assert tools["delete_cue"].destructive is True
    assert tools["cueapi_delete_cue"].destructive is True
    published = tools["report_outcome"].input_schema
    assert published["properties"] == ReportOutcomeArgs.model_json_schema()["properties"]
    assert published["required"] == ["success", "execution_id"]
    assert published["additionalProperties"] is False


async def test_an_mcp_client_schedules_a_cue_and_processes_its_execution(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    server = build_mcp_server(EngineWorkerClient(engine, user), include_management=True)
    async with in_process(server) as mcp:
        at = (clock.now() + timedelta(seconds=30)).isoformat()
        cue = await mcp.ok("create_cue", name="nightly", at=at, payload={"task": "sum"})
        assert cue["transport"] == "worker"
        clock.advance(30)
        assert await engine.fire_due() == 1
        polled = await mcp.ok("poll_executions")
        [item] = polled["executions"]
        claimed = await mcp.ok("claim_execution", execution_id=item["execution_id"])
        assert claimed["payload"] == {"task": "sum"}
        assert not any("lease" in key for key in claimed)
        recorded = await mcp.ok(
            "report_outcome", execution_id=item["execution_id"], success=True, result="42"
        )
        assert recorded["recorded"] is True
        execution = await mcp.ok("get_execution", execution_id=item["execution_id"])
        assert execution["status"] == "success"
        listed = await mcp.ok("list_executions", cue_id=cue["id"])
        assert listed["total"] == 1


async def test_refusals_and_bad_arguments_are_error_results(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    await engine.claim(user, "someone-else", execution_id)
    async with in_process(build_mcp_server(EngineWorkerClient(engine, user))) as mcp:
        assert "claim_failed" in await mcp.error("claim_execution", execution_id=execution_id)
        assert "claim it first" in await mcp.error(
            "report_outcome", execution_id=execution_id, success=True
        )
        assert "limit" in await mcp.error("poll_executions", limit=0)
        assert "Unknown tool" in await mcp.error("delete_cue", cue_id="cue_x")
    assert (await state(engine, user, execution_id))["claimed_by_worker"] == "someone-else"


BAD_REPORTS: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"success": True, "evidence": {"token": SECRET}}, "evidence"),
    ("wrong type", {"success": SECRET}, "success"),
    ("too long", {"success": True, "summary": SECRET * 20}, "summary"),
]


@pytest.mark.parametrize(("case", "args", "field"), BAD_REPORTS, ids=[c[0] for c in BAD_REPORTS])
async def test_bad_arguments_are_refused_alike_over_mcp_and_langchain(
    engine: Engine, clock: FakeClock, case: str, args: dict[str, Any], field: str
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    session_args = {**args, "execution_id": execution_id}
    toolkit = CueflowToolkit.for_engine(engine, user, worker_id="agent-1")
    async with toolkit:
        await toolkit.session.claim(execution_id)
        [tool] = [t for t in toolkit.get_tools() if t.name == "report_outcome"]
        call = {"name": tool.name, "args": session_args, "id": "c1", "type": "tool_call"}
        reply = await tool.ainvoke(call)
        assert isinstance(reply, ToolMessage)
        assert reply.status == "error"
        async with in_process(build_mcp_server(toolkit.session)) as mcp:
            text = await mcp.error("report_outcome", **session_args)
        assert text == reply.text
        assert text.startswith(f"invalid arguments: {field}")
        assert SECRET[:12] not in text
        row = await state(engine, user, execution_id)
        assert (row["status"], row["claimed_by_worker"]) == ("delivering", "agent-1")


async def test_claims_left_when_the_client_goes_away_are_released(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    async with in_process(build_mcp_server(EngineWorkerClient(engine, user))) as mcp:
        await mcp.ok("claim_execution")
        assert (await state(engine, user, execution_id))["status"] == "delivering"
    row = await state(engine, user, execution_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)


async def test_cueapi_named_tools_take_cueapi_arguments(engine: Engine) -> None:
    user = await new_user(engine)
    server = build_mcp_server(
        EngineWorkerClient(engine, user, worker_id="server-worker"),
        include_management=True,
        tool_names="cueapi",
    )
    async with in_process(server) as mcp:
        cue = await mcp.ok(
            "cueapi_create_cue", name="digest", cron="0 9 * * *", worker=True,
            payload={"task": "digest"},
        )  # fmt: skip
        assert (cue["transport"], cue["schedule"]["cron"]) == ("worker", "0 9 * * *")
        updated = await mcp.ok("cueapi_update_cue", cue_id=cue["id"], description="morning")
        assert updated["description"] == "morning"
        updated = await mcp.ok(
            "cueapi_update_cue", cue_id=cue["id"], cron="0 10 * * *", timezone="Europe/Paris"
        )
        assert (updated["schedule"]["cron"], updated["schedule"]["timezone"]) == (
            "0 10 * * *",
            "Europe/Paris",
        )
        assert "give cron or at too" in await mcp.error(
            "cueapi_update_cue", cue_id=cue["id"], timezone="UTC"
        )
        assert "merge_strategy" in await mcp.error(
            "cueapi_fire_cue", cue_id=cue["id"], merge_strategy="deep"
        )
        fired = await mcp.ok(
            "cueapi_fire_cue", cue_id=cue["id"], payload_override={"task": "digest", "day": 2}
        )
        assert fired["triggered_by"] == "manual_fire"
        claimable = await mcp.ok("cueapi_list_claimable_executions", task_name="digest")
        assert [e["execution_id"] for e in claimable["executions"]] == [fired["id"]]
        assert claimable["executions"][0]["payload"] == {"task": "digest", "day": 2}
        claimed = await mcp.ok("cueapi_claim_next_execution", worker_id="my-agent")
        assert (claimed["execution_id"], claimed["worker_id"]) == (fired["id"], "server-worker")
        beat = await mcp.ok("cueapi_execution_heartbeat", execution_id=fired["id"])
        assert beat["held"] is True
        await mcp.ok(
            "cueapi_report_outcome", execution_id=fired["id"], success=True,
            external_id="msg-1", summary="sent",
        )  # fmt: skip
        execution = await mcp.ok("cueapi_get_execution", execution_id=fired["id"])
        assert execution["status"] == "success"
        assert "claim it first" in await mcp.error(
            "cueapi_execution_heartbeat", execution_id=fired["id"]
        )
        replaced = await mcp.ok(
            "cueapi_fire_cue", cue_id=cue["id"], payload_override={"day": 3},
            merge_strategy="replace",
        )  # fmt: skip
        merged = await mcp.ok("cueapi_fire_cue", cue_id=cue["id"], payload_override={"day": 4})
        assert (replaced["payload"], merged["payload"]) == (
            {"day": 3},
            {"task": "digest", "day": 4},
        )


async def test_concurrent_calls_of_one_worker_do_not_exceed_its_claim_limit(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    ids = await due_executions(engine, clock, user, [{"task": "t"}, {"task": "t"}])
    async with in_process(build_mcp_server(EngineWorkerClient(engine, user))) as mcp:
        results = await asyncio.gather(
            mcp.call("claim_execution", {"execution_id": ids[0]}),
            mcp.call("claim_execution", {"execution_id": ids[1]}),
        )
        assert sorted(is_error for is_error, _, _ in results) == [False, True]
        [refusal] = [text for is_error, text, _ in results if is_error]
        assert "already holds 1 claim" in refusal


async def test_a_fault_inside_a_tool_is_an_error_result_without_its_details(
    engine: Engine,
) -> None:
    class Broken(EngineWorkerClient):
        async def get_execution(self, execution_id: str) -> dict[str, Any]:
            raise RuntimeError(f"connection to postgresql://app:{SECRET}@db failed")

    server = build_mcp_server(Broken(engine, await new_user(engine)))
    async with in_process(server) as mcp:
        text = await mcp.error("get_execution", execution_id="x")
    assert text == "Error executing tool get_execution"
