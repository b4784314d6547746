"""Helpers for the webhook tests: a recording HTTP receiver on 127.0.0.1, the official SDK's
verifier, and engines whose SSRF guard lets them reach the receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from cueflow_webhook import WebhookTransport

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import make_settings, register
from tests.official_clients import sdk


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: bytes


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server that records every request and answers with the status
    configured for its path (200 by default), optionally after a delay, or (``trickle``) as a
    body that never ends, one byte every ``trickle`` seconds."""

    delay: float = 0.0
    trickle: float | None = None
    requests: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    answers: dict[str, bytes] = field(default_factory=dict)
    """A JSON body to answer requests to a path with (``ok`` as plain text otherwise)."""
    in_flight: int = 0
    most_in_flight: int = 0
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        """The URL of ``path`` on this receiver."""
        return f"http://{host}:{self.port}{path}"

    def reply(self, path: str, *statuses: int) -> None:
        """Answer requests to ``path`` with ``statuses`` in turn (the last one repeats)."""
        self.statuses[path] = list(statuses)

    def to(self, path: str) -> list[Received]:
        """The requests received on ``path``."""
        return [r for r in self.requests if r.path == path]

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    def _status(self, path: str) -> int:
        queue = self.statuses.get(path)
        if not queue:
            return 200
        return queue.pop(0) if len(queue) > 1 else queue[0]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            line = await reader.readline()
            if not line:
                return
            method, target, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            self.requests.append(Received(method, target, headers, body))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(self.delay)
            finally:
                self.in_flight -= 1
            status = self._status(target)
            if self.trickle is not None:
                head = f"HTTP/1.1 {status} Status\r\nContent-Length: 1000000\r\n\r\n"
                writer.write(head.encode())
                while True:
                    await writer.drain()
                    await asyncio.sleep(self.trickle)
                    writer.write(b".")
            answer = self.answers.get(target)
            kind = "Content-Type: application/json\r\n" if answer is not None else ""
            answer = b"ok" if answer is None else answer
            head = f"HTTP/1.1 {status} Status\r\nContent-Length: {len(answer)}\r\n{kind}"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._handlers.discard(task)


def load_verifier() -> Callable[..., bool]:
    """``cueapi.verify_webhook`` from the pinned official SDK (see ``tests/official_clients``)."""
    verify: Callable[..., bool] = sdk().verify_webhook
    return verify


def verifies(request: Received, secret: str, body: bytes | None = None) -> bool:
    """Whether the official verifier accepts ``request`` (or ``body`` with its headers)."""
    return load_verifier()(
        body if body is not None else request.body,
        request.headers["x-cueapi-signature"],
        secret,
        request.headers["x-cueapi-timestamp"],
    )


@asynccontextmanager
async def open_engine(
    database_url: str, clock: FakeClock, **settings: Any
) -> AsyncIterator[Engine]:
    """An opened engine (no background tasks) that may reach 127.0.0.1 unless told otherwise."""
    settings.setdefault("allow_private_webhooks", True)
    engine = Engine(make_settings(database_url, **settings), clock=clock)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


@asynccontextmanager
async def api(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTP client on ``engine``'s app."""
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as client:
        yield client


def webhook(engine: Engine) -> WebhookTransport:
    """The engine's webhook transport."""
    transport = engine.transports["webhook"]
    assert isinstance(transport, WebhookTransport)
    return transport


async def new_user(client: httpx.AsyncClient) -> dict[str, str]:
    """Auth headers of a fresh user."""
    return await register(client)


async def create_cue(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    clock: FakeClock,
    url: str,
    **fields: Any,
) -> dict[str, Any]:
    """A one-time webhook cue due one minute from now (unless ``schedule`` is given)."""
    body: dict[str, Any] = {
        "name": f"cue-{uuid.uuid4().hex[:8]}",
        "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
        "callback": {"url": url},
        "payload": {"task": "report"},
        **fields,
    }
    response = await client.post("/v1/cues", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def fire(engine: Engine, clock: FakeClock, seconds: float = 60) -> int:
    """Move the clock on, fire what is due and deliver it; returns the attempts made."""
    clock.advance(seconds)
    await engine.fire_due()
    return await engine.deliver_due()


async def executions_of(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str
) -> list[dict[str, Any]]:
    """The cue's executions, newest first."""
    response = await client.get("/v1/executions", params={"cue_id": cue_id}, headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json()["executions"])
