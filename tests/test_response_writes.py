"""A response leaves the server in one write: its head with its body (uvicorn writes them
apart, two system calls and two TCP segments for every small answer). Driven through
``cueflow serve``'s real protocol class (uvicorn's httptools protocol with cueflow's limits) on
a transport that records its writes."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from cueflow.api.connections import guarded_protocol
from tests.conftest import make_settings

REQUEST = b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """A connection whose writes are kept, one entry per ``write``."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _serve_one(app: Any, request: bytes = REQUEST) -> RecordingTransport:
    """Feed ``request`` to a fresh connection of the server's protocol running ``app``; the
    transport, once the response is complete (bounded)."""
    protocol_class = guarded_protocol(make_settings("sqlite://"))
    config = uvicorn.Config(app, http=protocol_class, lifespan="off", log_config=None)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)

    async def complete() -> None:
        while protocol.cycle is None or not protocol.cycle.response_complete:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)  # a held head's turn

    await asyncio.wait_for(complete(), timeout=5)
    protocol.connection_lost(None)
    return transport


async def test_a_plain_response_is_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    transport = await _serve_one(app)
    assert len(transport.writes) == 1
    head, _, body = transport.writes[0].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and body == b'{"ok":true}'


async def test_a_stream_shows_its_head_before_its_first_event() -> None:
    """A head no body follows at once is not held until the body: a client waiting for the
    headers of an event stream gets them at the next turn of the event loop."""
    first_event = asyncio.Event()
    head_seen: list[list[bytes]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await first_event.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    async def release_after_head(transport_box: list[RecordingTransport]) -> None:
        await asyncio.sleep(0.05)
        head_seen.append(list(transport_box[0].writes))
        first_event.set()

    box: list[RecordingTransport] = []
    original = RecordingTransport.__init__

    def capture(self: RecordingTransport) -> None:
        original(self)
        box.append(self)

    RecordingTransport.__init__ = capture  # type: ignore[method-assign]
    try:
        waiter = asyncio.create_task(release_after_head(box))
        transport = await _serve_one(app)
        await waiter
    finally:
        RecordingTransport.__init__ = original  # type: ignore[method-assign]
    (before_event,) = head_seen
    assert len(before_event) == 1 and before_event[0].startswith(b"HTTP/1.1 200 OK")
    assert b"".join(transport.writes[1:]) == b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"


async def test_continue_is_sent_before_the_body_is_read() -> None:
    """``Expect: 100-continue`` is answered at once when the app reads the body (it comes
    before the response starts, so nothing holds it)."""
    request = b"POST /x HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    continued: list[list[bytes]] = []
    box: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reading = asyncio.create_task(receive())
        await asyncio.sleep(0.01)
        continued.append(list(box[0].writes))
        box[1].data_received(b"{}")
        message = await reading
        assert message["body"] == b"{}"
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    protocol_class = guarded_protocol(make_settings("sqlite://"))
    config = uvicorn.Config(app, http=protocol_class, lifespan="off", log_config=None)
    config.load()
    protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    box.extend([transport, protocol])
    protocol.connection_made(transport)
    protocol.data_received(request)

    async def complete() -> None:
        while protocol.cycle is None or not protocol.cycle.response_complete:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(complete(), timeout=5)
    protocol.connection_lost(None)
    assert continued == [[b"HTTP/1.1 100 Continue\r\n\r\n"]]
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"\r\n\r\nok")
