"""The few parts of the MCP Python SDK cueflow's server uses, for both of its major versions.

``mcp`` 1.x (``FastMCP`` in ``mcp.server.fastmcp``) is what ``langchain-mcp-adapters`` needs;
2.x renamed it ``MCPServer`` (``mcp.server.mcpserver``). cueflow serves its own tool list and
runs its own validation (:mod:`cueflow.agents.mcp_server` overrides ``list_tools`` and
``call_tool``, which both majors route every request through), so what differs is small: the
base class, where a tool call finds its HTTP request, and how the streamable HTTP app is made.
The wire types (``mcp.types``) accept the same camelCase field names in both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # checked against 1.x, the major the dev extras install beside the adapters
    from mcp.server.fastmcp import FastMCP as ServerBase
    from mcp.server.fastmcp.exceptions import ToolError
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.requests import Request

    MCP_MAJOR: int
else:
    try:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as ServerBase
        from mcp.server.mcpserver.exceptions import ToolError

        MCP_MAJOR = 2
    except ImportError:  # mcp 1.x
        from mcp.server.fastmcp import FastMCP as ServerBase
        from mcp.server.fastmcp.exceptions import ToolError

        MCP_MAJOR = 1

__all__ = [
    "MCP_MAJOR",
    "ServerBase",
    "ToolError",
    "current_request",
    "host_options",
    "prepare_http",
]


def host_options(host: str) -> dict[str, Any]:
    """Constructor options for serving HTTP on ``host``: on a loopback host both majors accept
    only loopback ``Host`` headers (DNS rebinding protection). 2.x takes the host later, in
    :func:`prepare_http`."""
    return {"host": host} if MCP_MAJOR == 1 else {}


def current_request(server: ServerBase, context: object) -> Request | None:
    """The HTTP request (a Starlette ``Request``) of the tool call being handled, or ``None``
    (stdio, in process)."""
    if MCP_MAJOR == 2:
        request_context = getattr(context, "request_context", None)
    else:
        try:
            request_context = server.get_context().request_context
        except ValueError:  # outside a request
            request_context = None
    request: Request | None = getattr(request_context, "request", None)
    return request


def prepare_http(server: Any, *, path: str, host: str) -> StreamableHTTPSessionManager:
    """Create ``server``'s streamable HTTP session manager (stateful sessions, SSE answers)
    and return it; run it with ``manager.run()`` and hand it requests with
    ``manager.handle_request(scope, receive, send)``."""
    if MCP_MAJOR == 2:
        server.streamable_http_app(streamable_http_path=path, host=host)
    else:
        server.settings.streamable_http_path = path
        server.streamable_http_app()
    manager: StreamableHTTPSessionManager = server.session_manager
    return manager
