"""The MCP server over streamable HTTP (``cueflow mcp --http``, ``cueflow serve --mcp``), shared
by several clients (the ``mcp`` SDK's client and ``langchain-mcp-adapters``), each acting with
its own API key: on an embedded engine and in front of a cueflow server. Runs on whichever
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
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow.engine import open_engine
from tests.mcp_support import CUEAPI_MANAGEMENT_TOOLS, CUEAPI_WORKER_TOOLS, SECRET, over_http
from tests.server import cueflow_server, free_port


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
