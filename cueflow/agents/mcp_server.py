"""The agent tools as an MCP server (``cueflow[mcp]``, ``mcp`` 1.x or 2.x); ``cueflow mcp``
serves it over stdio, and with ``--http`` over streamable HTTP (:mod:`cueflow.agents.mcp_http`).

Tools have the same names, argument schemas, validation and JSON results as the langchain-core
ones (:mod:`cueflow.agents.tools`), optionally also (or only) under the names of CueAPI's own
MCP server (:mod:`cueflow.agents.cueapi_tools`). Arguments are validated by cueflow, not by the
SDK, so both paths refuse the same input with the same text: unknown fields are errors, and no
error echoes a value the caller sent. A refusal is an error result (``isError``) with a message
the model can act on.

Over stdio the server has one :class:`~cueflow.agents.session.WorkerSession` (one worker per
process): its lifespan runs the lease keepalive and gives back unfinished claims when the
client goes away. Over HTTP each call acts through the session of its caller's API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Literal
from weakref import WeakKeyDictionary

import anyio
from mcp.types import CallToolResult, TextContent, Tool, ToolAnnotations

from cueflow.agents.client import WorkerClient
from cueflow.agents.cueapi_tools import CUEAPI_TOOLS
from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.mcp_compat import ServerBase, ToolError, current_request, host_options
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.agents.tools import TOOLS, ToolSpec, invoke
from cueflow.engine import open_engine

log = logging.getLogger(__name__)

ToolNames = Literal["cueflow", "cueapi", "both"]
"""Which names the tools are served under: cueflow's, CueAPI's MCP server's, or both."""

RELEASE_SECONDS = 10.0
"""How long a closing server may take to give back the claims it still holds."""

SESSION_STATE = "cueflow_session"
"""The request state key under which the HTTP app leaves the caller's session."""

INSTRUCTIONS = """\
cueflow schedules work. As a worker: poll_executions (cueapi_list_claimable_executions) lists \
due work, claim_execution (cueapi_claim_execution, cueapi_claim_next_execution) takes one (its \
payload is the work), report_outcome (cueapi_report_outcome) records how it went (once), \
release_execution gives it back for a later retry. Claims are kept alive while this server runs \
and given back when it stops. Management tools (when enabled) create, list, pause and resume \
cues, and start flow runs, read them and send them events."""


def mcp_tools(
    *,
    tool_names: ToolNames = "cueflow",
    include_management: bool = False,
    allow_destructive: bool = False,
) -> list[ToolSpec]:
    """The tools an MCP server offers: the worker tools, plus the management tools when asked
    for, and the destructive one (delete) when also allowed; under ``tool_names``."""
    groups = {"worker"}
    if include_management:
        groups.add("manage")
        if allow_destructive:
            groups.add("destructive")
    specs: Iterable[ToolSpec] = {
        "cueflow": TOOLS,
        "cueapi": CUEAPI_TOOLS,
        "both": (*TOOLS, *CUEAPI_TOOLS),
    }[tool_names]
    return [spec for spec in specs if spec.group in groups]


def _describe(spec: ToolSpec) -> Tool:
    annotations = ToolAnnotations(
        readOnlyHint=spec.read_only,
        destructiveHint=spec.group == "destructive",
        openWorldHint=False,
    )
    return Tool(
        name=spec.name,
        description=spec.description,
        inputSchema=spec.args.model_json_schema(),
        annotations=annotations,
    )


class CueflowMCPServer(ServerBase):
    """An MCP server serving ``specs``. With a ``session`` every call acts through it (stdio,
    in process), and the server's lifespan holds it open; without one, each call acts through
    the session its HTTP request carries (:mod:`cueflow.agents.mcp_http`). Calls acting through
    one session run one at a time, whichever MCP sessions they come from."""

    def __init__(
        self,
        specs: Iterable[ToolSpec],
        session: WorkerSession | None = None,
        *,
        host: str = "127.0.0.1",
    ) -> None:
        lifespan = None
        if session is not None:

            @asynccontextmanager
            async def lifespan(_: Any) -> AsyncIterator[dict[str, Any]]:
                await session.__aenter__()
                try:
                    yield {}
                finally:
                    # The SDK cancels the server when its client goes away: give the claims
                    # back all the same, within a bound.
                    with anyio.move_on_after(RELEASE_SECONDS, shield=True):
                        await session.__aexit__(None, None, None)

        super().__init__(
            "cueflow",
            instructions=INSTRUCTIONS,
            lifespan=lifespan,
            log_level="WARNING",  # not a line per request
            **host_options(host),
        )
        self.specs = {spec.name: spec for spec in specs}
        self.session = session
        self._locks: WeakKeyDictionary[WorkerSession, asyncio.Lock] = WeakKeyDictionary()

    async def list_tools(self) -> list[Tool]:
        """The served tools, their input schemas being the argument models' JSON schemas."""
        return [_describe(spec) for spec in self.specs.values()]

    # Both majors route tools/call through call_tool; this one also takes the request context
    # (2.x passes it) and answers a whole CallToolResult (1.x declares content blocks or a dict).
    async def call_tool(  # type: ignore[override]
        self, name: str, arguments: dict[str, Any] | None, context: Any = None
    ) -> CallToolResult:
        """Validate ``arguments`` and run tool ``name``; a refusal raises ``ToolError`` (an
        error result to the client)."""
        spec = self.specs.get(name)
        if spec is None:
            raise ToolError(f"Unknown tool: {name}")
        session = self._session_for(context)
        lock = self._locks.setdefault(session, asyncio.Lock())
        try:
            async with lock:  # one call at a time per worker: its claim limit holds
                result = await invoke(spec, session, arguments or {})
        except ToolFailure as exc:
            raise ToolError(str(exc)) from exc
        except Exception as exc:  # a fault, not a refusal: details stay in the server's log
            log.exception("MCP tool %s failed", name)
            raise ToolError(f"Error executing tool {name}") from exc
        text = json.dumps(result, ensure_ascii=False, default=str)
        return CallToolResult(
            content=[TextContent(type="text", text=text)], structuredContent=result
        )

    def _session_for(self, context: Any) -> WorkerSession:
        if self.session is not None:
            return self.session
        request = current_request(self, context)
        session: WorkerSession | None = (
            getattr(request.state, SESSION_STATE, None) if request is not None else None
        )
        if session is None:
            raise ToolError("not authenticated: send the API key as a bearer token")
        return session


def build_mcp_server(
    worker: WorkerClient | WorkerSession,
    *,
    include_management: bool = False,
    allow_destructive: bool = False,
    tool_names: ToolNames = "cueflow",
) -> CueflowMCPServer:
    """An MCP server exposing the agent tools for ``worker`` (a client, or a session); the
    management tools when ``include_management``, and the delete tool when also
    ``allow_destructive``; under cueflow's names, CueAPI's MCP server's, or both
    (``tool_names``)."""
    session = worker if isinstance(worker, WorkerSession) else WorkerSession(worker)
    specs = mcp_tools(
        tool_names=tool_names,
        include_management=include_management,
        allow_destructive=allow_destructive,
    )
    return CueflowMCPServer(specs, session)


async def serve_stdio(
    *,
    url: str | None = None,
    database_url: str | None = None,
    api_key: str | None = None,
    email: str | None = None,
    worker_id: str | None = None,
    task: str | None = None,
    max_claims: int = 1,
    include_management: bool = False,
    allow_destructive: bool = False,
    tool_names: ToolNames = "cueflow",
) -> None:
    """Serve the tools over stdio until the client closes it: against the server at ``url``
    (with ``api_key``), or an embedded engine on ``database_url`` (started here, so it also
    fires cues) acting for ``api_key``'s account or the account of ``email``."""
    options: dict[str, Any] = {
        "include_management": include_management,
        "allow_destructive": allow_destructive,
        "tool_names": tool_names,
    }
    if url is not None:
        if not api_key:
            raise ValueError("an API key is needed for --url: set CUEFLOW_API_KEY")
        client: WorkerClient = HttpWorkerClient(url, api_key, worker_id=worker_id)
        session = WorkerSession(client, task=task, max_claims=max_claims)
        try:
            await build_mcp_server(session, **options).run_stdio_async()
        finally:
            await client.aclose()
        return
    if database_url is None:
        raise ValueError("give --url or --database-url")
    if not api_key and not email:
        raise ValueError("give --email (or set CUEFLOW_API_KEY) to choose the account")
    engine = open_engine(database_url)
    async with engine:
        user = await (engine.principal(api_key) if api_key else engine.account(str(email)))
        client = EngineWorkerClient(engine, user, worker_id=worker_id)
        session = WorkerSession(client, task=task, max_claims=max_claims)
        await build_mcp_server(session, **options).run_stdio_async()
