"""The agent tools as an MCP server (``mcp`` 2.x, ``cueflow[mcp]``); ``cueflow mcp`` serves it
over stdio.

The server has one :class:`~cueflow.agents.session.WorkerSession` (one worker per server
process): its lifespan runs the lease keepalive and gives back unfinished claims when the client
goes away. Tools have the same names, argument schemas and JSON results as the langchain-core
ones; a refusal is an error result (``is_error``) with a message the model can act on.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from cueflow.agents.client import WorkerClient
from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.agents.tools import ToolSpec, invoke, select_tools
from cueflow.engine import open_engine

INSTRUCTIONS = """\
cueflow schedules work. As a worker: poll_executions lists due work, claim_execution takes one \
(its payload is the work), report_outcome records how it went (once), release_execution gives \
it back for a later retry. Claims are kept alive while this server runs and given back when it \
stops. Management tools (when enabled) create, list, pause and resume cues."""


def _signature(spec: ToolSpec) -> inspect.Signature:
    """The keyword parameters of ``spec.args``, so MCP publishes the same input schema."""
    parameters = []
    for name, field in spec.args.model_fields.items():
        annotation: Any = Annotated[
            (field.annotation, *field.metadata, Field(description=field.description))
        ]
        default = (
            inspect.Parameter.empty
            if field.is_required()
            else field.get_default(call_default_factory=True)
        )
        parameters.append(
            inspect.Parameter(
                name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
            )
        )
    return inspect.Signature(parameters, return_annotation=dict[str, Any])


def _mcp_function(spec: ToolSpec, session: WorkerSession) -> Any:
    async def call(**arguments: Any) -> dict[str, Any]:
        try:
            return await invoke(spec, session, arguments)
        except ToolFailure as exc:
            raise ToolError(str(exc)) from exc

    call.__signature__ = _signature(spec)  # type: ignore[attr-defined]
    call.__name__ = spec.name
    return call


def build_mcp_server(
    worker: WorkerClient | WorkerSession,
    *,
    include_management: bool = False,
    allow_destructive: bool = False,
) -> MCPServer:
    """An MCP server exposing the agent tools for ``worker`` (a client, or a session); the
    management tools when ``include_management``, and ``delete_cue`` when also
    ``allow_destructive``. Test it in process with ``async with mcp.Client(server)``."""
    session = worker if isinstance(worker, WorkerSession) else WorkerSession(worker)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        async with session:
            yield {}

    server = MCPServer("cueflow", instructions=INSTRUCTIONS, lifespan=lifespan)
    specs = select_tools(include_management=include_management, allow_destructive=allow_destructive)
    for spec in specs:
        annotations = ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=spec.group == "destructive",
            open_world_hint=False,
        )
        server.add_tool(
            _mcp_function(spec, session),
            name=spec.name,
            description=spec.description,
            annotations=annotations,
        )
    return server


async def serve_stdio(
    *,
    url: str | None = None,
    database_url: str | None = None,
    api_key: str | None = None,
    email: str | None = None,
    worker_id: str | None = None,
    task: str | None = None,
    include_management: bool = False,
    allow_destructive: bool = False,
) -> None:
    """Serve the tools over stdio until the client closes it: against the server at ``url``
    (with ``api_key``), or an embedded engine on ``database_url`` (started here, so it also
    fires cues) acting for ``api_key``'s account or the account of ``email``."""
    options = {"include_management": include_management, "allow_destructive": allow_destructive}
    if url is not None:
        if not api_key:
            raise ValueError("an API key is needed for --url: set CUEFLOW_API_KEY")
        client = HttpWorkerClient(url, api_key, worker_id=worker_id)
        try:
            await build_mcp_server(WorkerSession(client, task=task), **options).run_stdio_async()
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
        session = WorkerSession(EngineWorkerClient(engine, user, worker_id=worker_id), task=task)
        await build_mcp_server(session, **options).run_stdio_async()
