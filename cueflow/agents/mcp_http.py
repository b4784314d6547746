"""The MCP server over streamable HTTP: ``cueflow mcp --http``.

Every request authenticates with its caller's API key as a bearer token
(``Authorization: Bearer cue_sk_...``); a missing or unknown key gets a 401 with the contract's
error envelope. Each key has one :class:`~cueflow.agents.session.WorkerSession` in the server
process, opened on the key's first request and shared by all of that key's MCP sessions: a
claim made through one MCP session is held (its lease kept alive) until it is reported or
released through any other, so clients that open a session per call (as
``langchain-mcp-adapters`` does by default) keep their claims. Sessions are closed, and
unfinished claims given back, when the server stops. Keys are kept in memory only, as SHA-256
digests, and never logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from cueflow.agents.client import ClientError, WorkerClient
from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.mcp_compat import prepare_http
from cueflow.agents.mcp_server import SESSION_STATE, CueflowMCPServer, ToolNames, mcp_tools
from cueflow.agents.session import WorkerSession
from cueflow.engine import open_engine
from cueflow.errors import CueflowError

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

    from cueflow.engine import Engine


class _EndedStreamNoise(logging.Filter):
    """Drops the traceback mcp 1.x logs as an error when a client ends its MCP session while
    its standalone SSE stream (the GET one) is open: the stream was closed on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, anyio.ClosedResourceError)


logging.getLogger("mcp.server.streamable_http").addFilter(_EndedStreamNoise())


class KeyRefused(Exception):
    """The bearer token is not a valid API key."""


class Accounts(Protocol):
    """Where the accounts behind API keys live."""

    async def check(self, api_key: str) -> None:
        """Raise :class:`KeyRefused` unless ``api_key`` is valid now."""
        ...

    async def client(self, api_key: str, worker_id: str | None) -> WorkerClient:
        """A worker client acting for ``api_key``'s account (the key was checked)."""
        ...


class EngineAccounts:
    """Keys of an embedded engine's accounts, checked on every request (a revoked key stops
    working at once)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def check(self, api_key: str) -> None:
        """Refuse a key the engine does not know."""
        try:
            await self.engine.principal(api_key)
        except CueflowError as exc:
            raise KeyRefused from exc

    async def client(self, api_key: str, worker_id: str | None) -> WorkerClient:
        """An engine client for the key's account."""
        user = await self.engine.principal(api_key)
        return EngineWorkerClient(self.engine, user, worker_id=worker_id)


class ServerAccounts:
    """Keys of a remote cueflow or CueAPI server: checked there once, on the key's first
    request (the server checks it again on every call made with it)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def check(self, api_key: str) -> None:
        """Nothing here: :meth:`client` checks a new key."""

    async def client(self, api_key: str, worker_id: str | None) -> WorkerClient:
        """An HTTP client with the key, after one authenticated request succeeded (a claimable
        list, which a key of every scope may read: a worker key is enough for the tools)."""
        client = HttpWorkerClient(self.base_url, api_key, worker_id=worker_id)
        try:
            await client.claimable(limit=1)
        except ClientError as exc:
            await client.aclose()
            if exc.status in (401, 403):
                raise KeyRefused from exc
            raise
        return client


class KeySessions:
    """One open :class:`WorkerSession` per API key."""

    def __init__(
        self,
        accounts: Accounts,
        *,
        worker_id: str | None = None,
        task: str | None = None,
        max_claims: int = 1,
    ) -> None:
        self.accounts = accounts
        self.worker_id = worker_id
        self.task = task
        self.max_claims = max_claims
        self._sessions: dict[str, WorkerSession] = {}
        self._lock = asyncio.Lock()

    async def session(self, api_key: str) -> WorkerSession:
        """The session of ``api_key``, opened on first use; :class:`KeyRefused` for a key
        that is not valid."""
        await self.accounts.check(api_key)
        digest = hashlib.sha256(api_key.encode()).hexdigest()
        async with self._lock:  # two first requests of one key open one session
            session = self._sessions.get(digest)
            if session is None:
                client = await self.accounts.client(api_key, self.worker_id)
                session = WorkerSession(client, task=self.task, max_claims=self.max_claims)
                await session.__aenter__()
                self._sessions[digest] = session
        return session

    async def aclose(self) -> None:
        """Close every session: unfinished claims are given back."""
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.__aexit__(None, None, None)
            await session.client.aclose()


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


async def _unauthorized(send: Send, message: str) -> None:
    body = json.dumps({"error": {"code": "invalid_api_key", "message": message, "status": 401}})
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="cueflow"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


class _McpEndpoint:
    """The MCP endpoint: authenticate, attach the key's session, hand over to the SDK."""

    def __init__(self, manager: StreamableHTTPSessionManager, sessions: KeySessions) -> None:
        self.manager = manager
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        api_key = _bearer(scope)
        if api_key is None:
            await _unauthorized(send, "send your API key: Authorization: Bearer cue_sk_...")
            return
        try:
            session = await self.sessions.session(api_key)
        except KeyRefused:
            await _unauthorized(send, "invalid API key")
            return
        scope.setdefault("state", {})[SESSION_STATE] = session
        await self.manager.handle_request(scope, receive, send)


def mcp_http_app(
    server: CueflowMCPServer, sessions: KeySessions, *, path: str = "/mcp", host: str = "127.0.0.1"
) -> Starlette:
    """An ASGI app serving ``server`` at ``path`` over streamable HTTP, each request acting
    through its API key's session in ``sessions`` (closed when the app stops)."""
    manager = prepare_http(server, path=path, host=host)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            try:
                yield
            finally:
                await sessions.aclose()

    return Starlette(routes=[Route(path, _McpEndpoint(manager, sessions))], lifespan=lifespan)


def mount_mcp(
    app: Starlette,
    engine: Engine,
    *,
    path: str = "/mcp",
    host: str = "127.0.0.1",
    tool_names: ToolNames = "both",
    max_claims: int = 1,
) -> None:
    """Serve the tools (worker and management ones, no delete) at ``path`` of ``app`` (the
    REST app of ``engine``, ``cueflow serve --mcp``) over streamable HTTP, for the accounts of
    ``engine``; the MCP sessions run, and the key sessions close, with the app's lifespan."""
    specs = mcp_tools(tool_names=tool_names, include_management=True)
    sessions = KeySessions(EngineAccounts(engine), max_claims=max_claims)
    manager = prepare_http(CueflowMCPServer(specs, host=host), path=path, host=host)
    app.router.routes.insert(0, Route(path, _McpEndpoint(manager, sessions)))
    app_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: Starlette) -> AsyncIterator[Any]:
        async with app_lifespan(running) as state, manager.run():
            try:
                yield state
            finally:
                await sessions.aclose()

    app.router.lifespan_context = lifespan


async def serve_http(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    url: str | None = None,
    database_url: str | None = None,
    worker_id: str | None = None,
    task: str | None = None,
    max_claims: int = 1,
    include_management: bool = False,
    allow_destructive: bool = False,
    tool_names: ToolNames = "cueflow",
) -> None:
    """Serve the tools over streamable HTTP at ``http://host:port/path`` until stopped, for
    the accounts of the server at ``url`` or of an embedded engine on ``database_url``
    (started here, so it also fires cues)."""
    import uvicorn

    from cueflow.api.connections import guarded_protocol
    from cueflow.config import Settings

    specs = mcp_tools(
        tool_names=tool_names,
        include_management=include_management,
        allow_destructive=allow_destructive,
    )

    async def run(accounts: Accounts) -> None:
        sessions = KeySessions(accounts, worker_id=worker_id, task=task, max_claims=max_claims)
        app = mcp_http_app(CueflowMCPServer(specs, host=host), sessions, path=path, host=host)
        settings = Settings()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            # the same connection deadlines and caps as cueflow serve (cueflow.api.connections)
            http=guarded_protocol(settings),
            ws="none",
            timeout_keep_alive=settings.keep_alive_seconds,
        )
        await uvicorn.Server(config).serve()

    if url is not None:
        await run(ServerAccounts(url))
        return
    if database_url is None:
        raise ValueError("give --url or --database-url")
    engine = open_engine(database_url)
    async with engine:
        await run(EngineAccounts(engine))
