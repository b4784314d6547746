"""cueflow over MCP: start ``cueflow mcp`` as a stdio server and use its tools from an MCP client
to schedule a cue, then claim and report the execution it fires.

Runs offline as is: the server embeds an engine on a throw-away SQLite file, and this script
plays the MCP client (``python examples/agents/mcp_client.py``; needs
``pip install 'cueflow[mcp]'``). An LLM host uses the same server. For Claude Desktop, say,
add to ``claude_desktop_config.json``::

    {"mcpServers": {"cueflow": {"command": "cueflow",
        "args": ["mcp", "--url", "http://127.0.0.1:8000", "--manage"],
        "env": {"CUEFLOW_API_KEY": "cue_sk_..."}}}}

(``--database-url sqlite:///cueflow.db --email me@example.com`` embeds the engine instead of
``--url``.)
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters


async def call(client: Client, tool: str, **args: Any) -> dict[str, Any]:
    """Call a tool; print and return its JSON result."""
    result = await client.call_tool(tool, args)
    if result.is_error:
        print(f"{tool}({args}) -> error: {result.content[0].text}")
        return {}
    print(f"{tool}({args}) -> {json.dumps(result.structured_content)[:110]}")
    return result.structured_content or {}


async def main() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        database = f"sqlite:///{Path(workdir) / 'cueflow.db'}"
        server = StdioServerParameters(
            command=sys.executable,  # the `cueflow` command, run with this Python
            args=["-m", "cueflow", "mcp", "--database-url", database, "--manage",
                  "--email", "me@example.com"],
        )  # fmt: skip
        async with Client(server) as client:
            tools = (await client.list_tools()).tools
            print("tools:", ", ".join(tool.name for tool in tools))
            at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            await call(client, "create_cue", name="backup", at=at, payload={"task": "backup"})
            due: dict[str, Any] = {"executions": []}
            for _ in range(50):  # the server's scheduler fires the cue at `at`
                due = (await client.call_tool("poll_executions", {})).structured_content or due
                if due["executions"]:
                    break
                await asyncio.sleep(0.2)
            execution_id = due["executions"][0]["execution_id"]
            await call(client, "claim_execution", execution_id=execution_id)
            await call(client, "claim_execution")  # one claim at a time: an error result
            await call(client, "report_outcome", execution_id=execution_id, success=True,
                       result="backed up 3 files", external_id="snap-001")  # fmt: skip
            execution = await call(client, "get_execution", execution_id=execution_id)
            print(f"execution {execution_id[:8]} is {execution['status']}")


if __name__ == "__main__":
    asyncio.run(main())
