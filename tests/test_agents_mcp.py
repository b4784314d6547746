"""The MCP server (``build_mcp_server``, ``cueflow mcp``) exercised by real MCP clients: in
process against a live engine, as a stdio subprocess, and as a streamable HTTP server shared by
several clients (the ``mcp`` SDK's client and ``langchain-mcp-adapters``). Runs on whichever
``mcp`` major is installed (``tests/mcp_support.py``)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage
from mcp import StdioServerParameters
from typer.testing import CliRunner

from cueflow import cli
from cueflow.agents import CueflowToolkit, EngineWorkerClient
from cueflow.agents.mcp_server import build_mcp_server
from cueflow.agents.schemas import ReportOutcomeArgs
from cueflow.clock import FakeClock
from cueflow.engine import Engine, open_engine
from tests.agents_support import due_executions, new_user, state
from tests.mcp_support import in_process, over_http, over_stdio
from tests.server import cueflow_server, free_port

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
CUEAPI_WORKER_TOOLS = {
    "cueapi_list_claimable_executions",
    "cueapi_claim_execution",
    "cueapi_claim_next_execution",
    "cueapi_execution_heartbeat",
    "cueapi_report_outcome",
    "cueapi_get_execution",
}
CUEAPI_MANAGEMENT_TOOLS = {
    "cueapi_create_cue",
    "cueapi_list_cues",
    "cueapi_get_cue",
    "cueapi_update_cue",
    "cueapi_pause_cue",
    "cueapi_resume_cue",
    "cueapi_fire_cue",
    "cueapi_list_executions",
}
SECRET = "cue_sk_live_5ecret5ecret5ecret5ecret"


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
            "cueapi_fire_cue", cue_id=cue["id"], merge_strategy="merge"
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


async def test_cueflow_mcp_serves_over_stdio(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'mcp.db'}"
    command = ["-m", "cueflow", "mcp", "--database-url", database, "--manage",
               "--email", f"mcp-{uuid.uuid4().hex[:6]}@example.com"]  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=command, cwd=str(tmp_path))
    async with asyncio.timeout(60), over_stdio(params) as mcp:
        assert set(await mcp.tools()) == WORKER_TOOLS | MANAGEMENT_TOOLS
        cue = await mcp.ok("create_cue", name="every-minute", cron="* * * * *")
        assert (await mcp.ok("list_cues"))["cues"][0]["id"] == cue["id"]
        assert (await mcp.ok("poll_executions"))["executions"] == []


def test_cueflow_mcp_explains_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUEFLOW_API_KEY", raising=False)
    runner = CliRunner()
    for args, message in [
        (["mcp"], "give --url or --database-url"),
        (["mcp", "--url", "http://127.0.0.1:9"], "CUEFLOW_API_KEY"),
        (["mcp", "--database-url", "sqlite://"], "--email"),
        (["mcp", "--http", "--port", "55459"], "give --url or --database-url"),
        (["mcp", "--tool-names", "cue"], "cueflow, cueapi or both"),
        (["mcp", "--http", "--database-url", "sqlite://", "--email", "a@b.c"], "API key"),
    ]:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2
        assert message in result.output


# streamable HTTP ---------------------------------------------------------------------------------
@dataclass
class HttpServer:
    url: str
    database_url: str
    keys: dict[str, str]


async def _register(database_url: str, names: list[str]) -> dict[str, str]:
    engine = open_engine(database_url)
    await engine.open()
    try:
        return {
            name: (await engine.register(f"{name}-{uuid.uuid4().hex[:6]}@example.com"))["api_key"]
            for name in names
        }
    finally:
        await engine.close()


@contextmanager
def cueflow_command(cwd: Path, *args: str) -> Iterator[str]:
    """``cueflow *args --port P`` (a server) on a port of this suite; yields its MCP URL
    (``http://127.0.0.1:P/mcp``) once it answers."""
    port = free_port()
    command = [sys.executable, "-m", "cueflow", *args, "--port", str(port)]
    process = subprocess.Popen(command, cwd=cwd)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"cueflow exited with {process.returncode}"
            try:
                httpx.post(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "cueflow did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def mcp_http(cwd: Path, *args: str) -> Any:
    """``cueflow mcp --http *args``; yields its MCP URL."""
    return cueflow_command(cwd, "mcp", "--http", *args)


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """``cueflow mcp --http`` on an embedded engine (sqlite), with an API key per test."""
    workdir = tmp_path_factory.mktemp("mcp-http")
    database_url = f"sqlite:///{workdir / 'cueflow.db'}"
    keys = asyncio.run(_register(database_url, ["a", "b", "c", "d"]))
    options = ["--database-url", database_url, "--manage", "--tool-names", "both"]
    with mcp_http(workdir, *options) as url:
        yield HttpServer(url, database_url, keys)


def test_http_refuses_requests_without_a_valid_key(http_server: HttpServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for headers in [{}, {"Authorization": f"Bearer {SECRET}"}, {"Authorization": "Basic x"}]:
        response = httpx.post(http_server.url, json=body, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert SECRET[:12] not in response.text


async def test_http_claims_outlive_the_mcp_session_that_made_them(
    http_server: HttpServer,
) -> None:
    key = http_server.keys["a"]
    async with asyncio.timeout(30):
        async with over_http(http_server.url, key) as mcp:
            cue = await mcp.ok("cueapi_create_cue", name="job", cron="0 0 1 1 *", worker=True)
            fired = await mcp.ok("cueapi_fire_cue", cue_id=cue["id"])
        async with over_http(http_server.url, key) as mcp:
            claimed = await mcp.ok("claim_execution", execution_id=fired["id"])
            assert claimed["attempt"] == 1
        async with over_http(http_server.url, key) as mcp:  # another client, same key
            execution = await mcp.ok("get_execution", execution_id=fired["id"])
            assert execution["status"] == "delivering"  # not released when the session ended
            assert "already holds 1 claim" in await mcp.error("cueapi_claim_next_execution")
            await mcp.ok("cueapi_report_outcome", execution_id=fired["id"], success=True)
        async with over_http(http_server.url, http_server.keys["b"]) as other:
            assert "execution_not_found" in await other.error(
                "get_execution", execution_id=fired["id"]
            )
        async with over_http(http_server.url, key) as mcp:
            execution = await mcp.ok("get_execution", execution_id=fired["id"])
            assert (execution["status"], execution["attempts"]) == ("success", 1)


async def test_http_keeps_claims_apart_by_key(http_server: HttpServer) -> None:
    async with asyncio.timeout(30):
        async with (
            over_http(http_server.url, http_server.keys["c"]) as mine,
            over_http(http_server.url, http_server.keys["d"]) as theirs,
        ):
            cue = await mine.ok("create_cue", name="job", cron="0 0 1 1 *")
            fired = await mine.ok("cueapi_fire_cue", cue_id=cue["id"])
            await mine.ok("claim_execution", execution_id=fired["id"])
            assert "claim it first" in await theirs.error(
                "report_outcome", execution_id=fired["id"], success=True
            )
            await mine.ok("release_execution", execution_id=fired["id"], reason="test over")


async def test_langchain_mcp_adapters_use_the_tools_over_http_and_stdio(
    http_server: HttpServer, tmp_path: Path
) -> None:
    adapters = pytest.importorskip("langchain_mcp_adapters.client")  # needs mcp 1.x
    from langchain_mcp_adapters.tools import load_mcp_tools

    MultiServerMCPClient = adapters.MultiServerMCPClient

    key = http_server.keys["b"]
    client = MultiServerMCPClient(
        {
            "cueflow": {
                "transport": "streamable_http",
                "url": http_server.url,
                "headers": {"Authorization": f"Bearer {key}"},
            },
        }
    )
    async with asyncio.timeout(60):
        tools = {tool.name: tool for tool in await client.get_tools()}  # a session per call
        assert {"claim_execution", "cueapi_claim_execution"} <= set(tools)

        async def call(tool: str, /, **args: Any) -> dict[str, Any]:
            reply = await tools[tool].ainvoke(
                {"name": tool, "args": args, "id": "c", "type": "tool_call"}
            )
            assert reply.status == "success", reply.content
            [block] = reply.content
            return json.loads(block["text"] if isinstance(block, dict) else block)

        cue = await call("cueapi_create_cue", name="adapted", cron="0 0 1 1 *", worker=True)
        fired = await call("cueapi_fire_cue", cue_id=cue["id"])
        await call("cueapi_claim_execution", execution_id=fired["id"], worker_id="lc")
        assert (await call("get_execution", execution_id=fired["id"]))["status"] == "delivering"
        await call("cueapi_report_outcome", execution_id=fired["id"], success=True)
        assert (await call("get_execution", execution_id=fired["id"]))["status"] == "success"
        reply = await tools["report_outcome"].ainvoke(
            {
                "name": "report_outcome",
                "args": {"execution_id": fired["id"], "success": True, "evidence": SECRET},
                "id": "c",
                "type": "tool_call",
            }
        )
        assert reply.status == "error"
        assert "evidence: Extra inputs are not permitted" in str(reply.content)
        assert SECRET[:12] not in str(reply.content)

        command = ["-m", "cueflow", "mcp", "--tool-names", "cueapi", "--email", "lc@example.com",
                   "--database-url", f"sqlite:///{tmp_path / 'stdio.db'}", "--manage"]  # fmt: skip
        stdio = MultiServerMCPClient(
            {"cueflow": {"transport": "stdio", "command": sys.executable, "args": command}}
        )
        async with stdio.session("cueflow") as session:  # one process for all the calls
            tools = {tool.name: tool for tool in await load_mcp_tools(session)}
            assert set(tools) == CUEAPI_WORKER_TOOLS | CUEAPI_MANAGEMENT_TOOLS
            cue = await call("cueapi_create_cue", name="stdio", cron="0 0 1 1 *", worker=True)
            fired = await call("cueapi_fire_cue", cue_id=cue["id"])
            await call("cueapi_claim_execution", execution_id=fired["id"])
            await call("cueapi_report_outcome", execution_id=fired["id"], success=True)
            execution = await call("cueapi_get_execution", execution_id=fired["id"])
            assert execution["status"] == "success"


async def test_http_in_front_of_a_cueflow_server_acts_with_each_callers_key(
    tmp_path: Path,
) -> None:
    with cueflow_server(f"sqlite:///{tmp_path / 'rest.db'}", tmp_path) as base:
        keys = []
        for name in ("x", "y"):
            email = f"{name}-{uuid.uuid4().hex[:6]}@example.com"
            response = httpx.post(f"{base}/v1/auth/register", json={"email": email})
            keys.append(response.json()["api_key"])
        with mcp_http(tmp_path, "--url", base, "--manage", "--tool-names", "cueapi") as url:
            refused = httpx.post(url, json={}, headers={"Authorization": f"Bearer {SECRET}"})
            assert refused.status_code == 401
            async with asyncio.timeout(30):
                async with over_http(url, keys[0]) as mcp:
                    cue = await mcp.ok("cueapi_create_cue", name="r", cron="0 0 1 1 *")
                    fired = await mcp.ok("cueapi_fire_cue", cue_id=cue["id"])
                    await mcp.ok("cueapi_claim_execution", execution_id=fired["id"])
                async with over_http(url, keys[1]) as other:
                    assert (await other.ok("cueapi_list_cues"))["cues"] == []
                async with over_http(url, keys[0]) as mcp:
                    await mcp.ok("cueapi_report_outcome", execution_id=fired["id"], success=True)
                    execution = await mcp.ok("cueapi_get_execution", execution_id=fired["id"])
                    assert (execution["status"], execution["attempts"]) == ("success", 1)
                    left = await mcp.ok("cueapi_fire_cue", cue_id=cue["id"])
                    await mcp.ok("cueapi_claim_execution", execution_id=left["id"])
        # the MCP server stopped: what it still held was given back
        headers = {"Authorization": f"Bearer {keys[0]}"}
        execution = httpx.get(f"{base}/v1/executions/{left['id']}", headers=headers).json()
        assert (execution["status"], execution["attempts"]) == ("pending", 1)


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


async def test_cueflow_serve_mcp_serves_the_tools_beside_the_rest_api(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'serve.db'}"
    [key] = (await _register(database_url, ["s"])).values()
    with cueflow_command(tmp_path, "serve", "--mcp", "--database-url", database_url) as url:
        base = url.removesuffix("/mcp")
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.post(url, json={}).status_code == 401
        async with asyncio.timeout(30):
            async with over_http(url, key) as mcp:
                cue = await mcp.ok("create_cue", name="served", cron="0 0 1 1 *")
                fired = await mcp.ok("cueapi_fire_cue", cue_id=cue["id"])
                await mcp.ok("claim_execution", execution_id=fired["id"])
            rest = httpx.get(f"{base}/v1/executions/{fired['id']}", headers=headers).json()
            assert rest["status"] == "delivering"
            async with over_http(url, key) as mcp:
                await mcp.ok("report_outcome", execution_id=fired["id"], success=True)
            rest = httpx.get(f"{base}/v1/executions/{fired['id']}", headers=headers).json()
            assert (rest["status"], rest["attempts"]) == ("success", 1)


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
