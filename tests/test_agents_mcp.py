"""The MCP server (``build_mcp_server``, ``cueflow mcp``) exercised by an MCP client: in
process against a live engine, and once as a stdio subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from typer.testing import CliRunner

from cueflow import cli
from cueflow.agents import EngineWorkerClient
from cueflow.agents.mcp_server import build_mcp_server
from cueflow.agents.schemas import ReportOutcomeArgs
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state

WORKER_TOOLS = {
    "poll_executions",
    "claim_execution",
    "report_outcome",
    "release_execution",
    "get_execution",
}
MANAGEMENT_TOOLS = {
    "list_cues",
    "get_cue",
    "create_cue",
    "pause_cue",
    "resume_cue",
    "list_executions",
    "schedule_followup",
}


async def ok(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert result.structured_content == json.loads(result.content[0].text)
    return result.structured_content


async def error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.structured_content
    return result.content[0].text


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
    ]:
        async with Client(build_mcp_server(client, **flags)) as mcp:
            tools = {tool.name: tool for tool in (await mcp.list_tools()).tools}
        assert set(tools) == expected
    assert tools["poll_executions"].annotations.read_only_hint is True
    assert tools["delete_cue"].annotations.destructive_hint is True
    published = tools["report_outcome"].input_schema
    assert published["properties"] == ReportOutcomeArgs.model_json_schema()["properties"]
    assert published["required"] == ["success", "execution_id"]


async def test_an_mcp_client_schedules_a_cue_and_processes_its_execution(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    server = build_mcp_server(EngineWorkerClient(engine, user), include_management=True)
    async with Client(server) as mcp:
        at = (clock.now() + timedelta(seconds=30)).isoformat()
        cue = await ok(mcp, "create_cue", name="nightly", at=at, payload={"task": "sum"})
        assert cue["transport"] == "worker"
        clock.advance(30)
        assert await engine.fire_due() == 1
        polled = await ok(mcp, "poll_executions")
        [item] = polled["executions"]
        claimed = await ok(mcp, "claim_execution", execution_id=item["execution_id"])
        assert claimed["payload"] == {"task": "sum"}
        assert not any("lease" in key for key in claimed)
        recorded = await ok(
            mcp, "report_outcome", execution_id=item["execution_id"], success=True, result="42"
        )
        assert recorded["recorded"] is True
        execution = await ok(mcp, "get_execution", execution_id=item["execution_id"])
        assert execution["status"] == "success"
        listed = await ok(mcp, "list_executions", cue_id=cue["id"])
        assert listed["total"] == 1


async def test_refusals_and_bad_arguments_are_error_results(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    await engine.claim(user, "someone-else", execution_id)
    async with Client(build_mcp_server(EngineWorkerClient(engine, user))) as mcp:
        assert "claim_failed" in await error(mcp, "claim_execution", execution_id=execution_id)
        assert "claim it first" in await error(
            mcp, "report_outcome", execution_id=execution_id, success=True
        )
        assert "limit" in await error(mcp, "poll_executions", limit=0)
        assert "Unknown tool" in await error(mcp, "delete_cue", cue_id="cue_x")
    assert (await state(engine, user, execution_id))["claimed_by_worker"] == "someone-else"


async def test_claims_left_when_the_client_goes_away_are_released(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "t"}])
    async with Client(build_mcp_server(EngineWorkerClient(engine, user))) as mcp:
        await ok(mcp, "claim_execution")
        assert (await state(engine, user, execution_id))["status"] == "delivering"
    row = await state(engine, user, execution_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)


async def test_cueflow_mcp_serves_over_stdio(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'mcp.db'}"
    command = ["-m", "cueflow", "mcp", "--database-url", database, "--manage",
               "--email", f"mcp-{uuid.uuid4().hex[:6]}@example.com"]  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=command, cwd=str(tmp_path))
    async with asyncio.timeout(60), Client(params) as mcp:
        names = {tool.name for tool in (await mcp.list_tools()).tools}
        assert names == WORKER_TOOLS | MANAGEMENT_TOOLS
        cue = await ok(mcp, "create_cue", name="every-minute", cron="* * * * *")
        assert (await ok(mcp, "list_cues"))["cues"][0]["id"] == cue["id"]
        assert (await ok(mcp, "poll_executions"))["executions"] == []


def test_cueflow_mcp_explains_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUEFLOW_API_KEY", raising=False)
    runner = CliRunner()
    for args, message in [
        (["mcp"], "give --url or --database-url"),
        (["mcp", "--url", "http://127.0.0.1:9"], "CUEFLOW_API_KEY"),
        (["mcp", "--database-url", "sqlite://"], "--email"),
    ]:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2
        assert message in result.output
