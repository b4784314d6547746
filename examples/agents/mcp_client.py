"""cueflow over MCP with LangChain's MCP adapters: start ``cueflow mcp --http`` (streamable
HTTP), load its tools with ``langchain-mcp-adapters``, and schedule a cue, claim the execution it
fires and report its outcome.

The adapters open a new MCP session for every tool call; the claim still holds between calls
because the HTTP server keeps one worker session per API key in its process. Runs offline as is:
the server embeds an engine on a throw-away SQLite file, and this script plays the agent
(``python examples/agents/mcp_client.py``; needs
``pip install 'cueflow[agents,mcp]' langchain-mcp-adapters``, which picks mcp 1.x).

An LLM host uses the same server. Over stdio (one worker per process; claims are given back
when the host closes it), for Claude Desktop, say, in ``claude_desktop_config.json``::

    {"mcpServers": {"cueflow": {"command": "cueflow",
        "args": ["mcp", "--url", "http://127.0.0.1:8000", "--manage"],
        "env": {"CUEFLOW_API_KEY": "cue_sk_..."}}}}

Over HTTP, run ``cueflow mcp --http --port 8765 --url http://127.0.0.1:8000 --manage`` once and
point any number of clients at ``http://127.0.0.1:8765/mcp`` with their API key as a bearer
token. ``--tool-names cueapi`` (or ``both``) serves the tools under the names of CueAPI's own MCP
server (``cueapi_claim_execution`` ...), so prompts written for it carry over.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient

from cueflow import open_engine


async def call(tools: dict[str, BaseTool], tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool as a model's tool call would; print and return its JSON result."""
    reply = await tools[tool].ainvoke({"name": tool, "args": args, "id": "1", "type": "tool_call"})
    text = "".join(b["text"] if isinstance(b, dict) else b for b in reply.content)
    if reply.status == "error":
        print(f"{tool}({args}) -> error: {text}")
        return {}
    print(f"{tool}({args}) -> {text[:110]}")
    return dict(json.loads(text))


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(port: int, server: subprocess.Popen[bytes]) -> None:
    """Until the server accepts connections."""
    for _ in range(300):
        if server.poll() is not None:
            raise SystemExit(f"cueflow mcp exited with {server.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise SystemExit("cueflow mcp did not start")


async def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        database = f"sqlite:///{Path(workdir) / 'cueflow.db'}"
        engine = open_engine(database)
        await engine.open()
        api_key = (await engine.register("me@example.com"))["api_key"]
        await engine.close()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "cueflow",  # the `cueflow` command, run with this Python
             "mcp", "--http", "--port", str(port), "--database-url", database,
             "--manage", "--tool-names", "both"]
        )  # fmt: skip
        try:
            await wait_for(port, server)
            client = MultiServerMCPClient(
                {
                    "cueflow": {
                        "transport": "streamable_http",
                        "url": f"http://127.0.0.1:{port}/mcp",
                        "headers": {"Authorization": f"Bearer {api_key}"},
                    }
                }
            )
            tools = {tool.name: tool for tool in await client.get_tools()}
            print("tools:", ", ".join(sorted(tools)))
            cue = await call(tools, "cueapi_create_cue", name="backup", cron="0 3 * * *",
                             worker=True, payload={"task": "backup"})  # fmt: skip
            fired = await call(tools, "cueapi_fire_cue", cue_id=cue["id"])  # run it now
            await call(tools, "claim_execution", execution_id=fired["id"])
            await call(tools, "claim_execution")  # one claim at a time: an error result
            await call(tools, "report_outcome", execution_id=fired["id"], success=True,
                       result="backed up 3 files", external_id="snap-001")  # fmt: skip
            execution = await call(tools, "get_execution", execution_id=fired["id"])
            print(f"execution {fired['id'][:8]} is {execution['status']}")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
