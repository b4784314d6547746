"""MCP clients for the tests, whichever major of the ``mcp`` SDK is installed (the dev extras
pin 1.x, which ``langchain-mcp-adapters`` needs; 2.x renamed most of the client API): connect in
process, to a stdio subprocess or to a streamable HTTP URL, and call tools through one small
interface."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from mcp import StdioServerParameters

from cueflow.agents.mcp_compat import MCP_MAJOR

WORKER_TOOLS = {
    "poll_executions",
    "claim_execution",
    "report_outcome",
    "release_execution",
    "get_execution",
}
"""The worker tools ``build_mcp_server`` always serves (cueflow names)."""

MANAGEMENT_TOOLS = {
    "list_cues",
    "get_cue",
    "create_cue",
    "pause_cue",
    "resume_cue",
    "list_executions",
    "schedule_followup",
    "list_flows",
    "start_flow_run",
    "get_flow_run",
    "send_flow_event",
}
"""The management tools ``include_management`` adds (``delete_cue`` needs ``allow_destructive``)."""

CUEAPI_WORKER_TOOLS = {
    "cueapi_list_claimable_executions",
    "cueapi_claim_execution",
    "cueapi_claim_next_execution",
    "cueapi_execution_heartbeat",
    "cueapi_report_outcome",
    "cueapi_get_execution",
}
"""The worker tools under CueAPI's names (``tool_names="cueapi"``)."""

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
"""The management tools under CueAPI's names."""

SECRET = "cue_sk_live_5ecret5ecret5ecret5ecret"
"""A key-shaped secret: no error result or answer may show it."""


def _field(value: Any, camel: str, snake: str) -> Any:
    """A result field: camelCase attributes in 1.x, snake_case in 2.x."""
    return getattr(value, snake) if MCP_MAJOR == 2 else getattr(value, camel)


@dataclass
class Listed:
    name: str
    input_schema: dict[str, Any]
    read_only: bool | None
    destructive: bool | None


class McpClient:
    """A connected MCP client session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def tools(self) -> dict[str, Listed]:
        """The listed tools by name."""
        listed = {}
        for tool in (await self.session.list_tools()).tools:
            notes = tool.annotations
            listed[tool.name] = Listed(
                tool.name,
                _field(tool, "inputSchema", "input_schema"),
                _field(notes, "readOnlyHint", "read_only_hint") if notes else None,
                _field(notes, "destructiveHint", "destructive_hint") if notes else None,
            )
        return listed

    async def call(self, tool: str, args: dict[str, Any]) -> tuple[bool, str, Any]:
        """``(is_error, text, structured content)`` of one call."""
        result = await self.session.call_tool(tool, args)
        text = result.content[0].text
        structured = _field(result, "structuredContent", "structured_content")
        return bool(_field(result, "isError", "is_error")), text, structured

    async def ok(self, tool: str, **args: Any) -> dict[str, Any]:
        """The JSON result of a call that must succeed."""
        is_error, text, structured = await self.call(tool, args)
        assert not is_error, text
        assert structured == json.loads(text)
        return structured

    async def error(self, tool: str, **args: Any) -> str:
        """The text of a call that must fail."""
        is_error, text, _ = await self.call(tool, args)
        assert is_error, text
        return text


if MCP_MAJOR == 2:
    import httpx2  # type: ignore[import-not-found]
    from mcp import Client  # type: ignore[attr-defined]
    from mcp.client.streamable_http import streamable_http_client  # type: ignore[attr-defined]

    @asynccontextmanager
    async def in_process(server: Any) -> AsyncIterator[McpClient]:
        """A client connected to ``server`` in this process."""
        async with Client(server) as client:
            yield McpClient(client)

    @asynccontextmanager
    async def over_stdio(params: StdioServerParameters) -> AsyncIterator[McpClient]:
        """A client of a stdio server subprocess."""
        async with Client(params) as client:
            yield McpClient(client)

    @asynccontextmanager
    async def over_http(url: str, api_key: str) -> AsyncIterator[McpClient]:
        """A client session over streamable HTTP with ``api_key`` as its bearer token."""
        headers = {"Authorization": f"Bearer {api_key}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            yield McpClient(client)

else:
    import httpx
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.memory import create_connected_server_and_client_session

    @asynccontextmanager
    async def in_process(server: Any) -> AsyncIterator[McpClient]:
        """A client connected to ``server`` in this process."""
        async with create_connected_server_and_client_session(server) as session:
            yield McpClient(session)

    @asynccontextmanager
    async def over_stdio(params: StdioServerParameters) -> AsyncIterator[McpClient]:
        """A client of a stdio server subprocess."""
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield McpClient(session)

    @asynccontextmanager
    async def over_http(url: str, api_key: str) -> AsyncIterator[McpClient]:
        """A client session over streamable HTTP with ``api_key`` as its bearer token."""
        headers = {"Authorization": f"Bearer {api_key}"}
        async with (
            httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300)) as http,
            streamable_http_client(url, http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield McpClient(session)
