"""Connection limits for ``cueflow serve``: what a client may hold open, and for how long.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that
never completes a request: a connection that sends nothing, or trickles its headers, or stops
half-way through its body, would stay open for ever, and enough of them exhaust the process's
file descriptors. :class:`GuardedHttpProtocol` (uvicorn's httptools protocol with limits) adds:

* a **request head deadline**: the request line and headers must be complete within
  ``CUEFLOW_HEADER_TIMEOUT_SECONDS`` of the connection opening or of the previous response;
  a **body deadline**: the body within ``CUEFLOW_BODY_TIMEOUT_SECONDS`` of the head. Past
  either, the connection is closed;
* a **head size limit**: more than ``CUEFLOW_MAX_HEADER_COUNT`` headers or
  ``CUEFLOW_MAX_HEADER_BYTES`` of head answers 431 and closes;
* a **cap on open connections**: ``CUEFLOW_MAX_CONNECTIONS`` in all (never more than the file
  descriptors allow) and ``CUEFLOW_MAX_CONNECTIONS_PER_ADDRESS`` per client address (the
  configured proxies, ``CUEFLOW_FORWARDED_ALLOW_IPS``, are exempt). A connection past the
  per-address cap is answered 503 ``too_many_connections`` and closed; when the total is
  reached, an idle connection is closed to make room: the oldest of those that never sent a
  request, else the oldest idle keep-alive connection; only when none is idle is the new one
  refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import resource
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cueflow.api.errors import envelope
from cueflow.config import Settings

RESERVED_DESCRIPTORS = 128
"""File descriptors kept for the database pool, webhooks, logs and the listening socket."""


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits, from the settings."""

    max_connections: int
    max_per_address: int
    header_timeout: float
    body_timeout: float
    max_header_count: int
    max_header_bytes: int
    exempt: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    exempt_all: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        """The settings' limits; the total is lowered to fit the descriptors the process may
        open (a flood must meet the cap before it meets the descriptor limit)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        total = settings.max_connections
        if soft != resource.RLIM_INFINITY:
            total = max(1, min(total, soft - RESERVED_DESCRIPTORS))
        proxies = [p.strip() for p in settings.forwarded_allow_ips.split(",") if p.strip()]
        return cls(
            max_connections=total,
            max_per_address=settings.max_connections_per_address,
            header_timeout=settings.header_timeout_seconds,
            body_timeout=settings.body_timeout_seconds,
            max_header_count=settings.max_header_count,
            max_header_bytes=settings.max_header_bytes,
            exempt=tuple(ipaddress.ip_network(p, strict=False) for p in proxies if p != "*"),
            exempt_all="*" in proxies,
        )

    def capped(self, address: str) -> bool:
        """Whether ``address`` is held to the per-address cap (proxies are not)."""
        if self.exempt_all:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return True
        return not any(ip in network for network in self.exempt)


@dataclass
class ConnectionTable:
    """The open connections of one server: how many, per address, and those idle (waiting for
    a request head), oldest first: ``fresh`` ones never sent a request, ``idle`` ones are kept
    alive after a response."""

    total: int = 0
    per_address: Counter[str] = field(default_factory=Counter)
    fresh: dict[GuardedHttpProtocol, None] = field(default_factory=dict)
    idle: dict[GuardedHttpProtocol, None] = field(default_factory=dict)

    def forget(self, connection: GuardedHttpProtocol) -> None:
        """``connection`` is no longer idle."""
        self.fresh.pop(connection, None)
        self.idle.pop(connection, None)


def _raw_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = orjson.dumps(envelope(code, message, status))
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n"
    )
    if status == 503:
        head += "retry-after: 1\r\n"
    return head.encode() + b"\r\n" + body


def _refuse(transport: asyncio.Transport, message: str) -> None:
    """Answer a connection over a cap with 503 ``too_many_connections`` and close it."""
    transport.write(_raw_response(503, "Service Unavailable", "too_many_connections", message))
    transport.close()


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of this module (one subclass per server,
    made by :func:`guarded_protocol`, carries its ``limits`` and ``table``)."""

    limits: ClassVar[ConnectionLimits]
    table: ClassVar[ConnectionTable]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._address = ""
        self._admitted = False
        self._refused = False
        self._awaiting_head = False
        self._in_body = False
        self._head_bytes = 0
        self._header_count = 0
        self._deadline: asyncio.TimerHandle | None = None

    # admission ----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if peer else ""
        limits, table = self.limits, self.table
        if (
            limits.capped(self._address)
            and table.per_address[self._address] >= limits.max_per_address
        ):
            _refuse(transport, "Too many connections from this address")
            return
        if table.total >= limits.max_connections:
            if not table.fresh and not table.idle:
                _refuse(transport, "Too many connections")
                return
            next(iter(table.fresh or table.idle))._close()  # the oldest idle makes room
        self._admitted = True
        table.total += 1
        table.per_address[self._address] += 1
        super().connection_made(transport)
        self._await_head(first=True)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        table = self.table
        table.total -= 1
        table.per_address[self._address] -= 1
        if not table.per_address[self._address]:
            del table.per_address[self._address]
        table.forget(self)
        self._disarm()
        super().connection_lost(exc)

    # deadlines ----------------------------------------------------------------------------------
    def _await_head(self, first: bool = False) -> None:
        """A request head is due: within the header timeout, and the connection is idle."""
        self._awaiting_head = True
        self._head_bytes = 0
        (self.table.fresh if first else self.table.idle)[self] = None
        self._arm(self.limits.header_timeout)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._close)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _close(self) -> None:
        self.table.forget(self)
        if not self.transport.is_closing():
            self.transport.close()

    def _refuse_head(self) -> None:
        self._refused = True
        self.table.forget(self)
        self._disarm()
        if not self.transport.is_closing():
            message = (
                f"Request head exceeds {self.limits.max_header_count} headers "
                f"or {self.limits.max_header_bytes} bytes"
            )
            self.transport.write(
                _raw_response(
                    431, "Request Header Fields Too Large", "request_header_too_large", message
                )
            )
            self.transport.close()

    # parsing ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._refuse_head()
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._awaiting_head = False
        self._in_body = True
        self.table.forget(self)
        self._arm(self.limits.body_timeout)
        super().on_headers_complete()
        cycle = getattr(self, "cycle", None)
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = ResponseWriter(self.transport, cycle, self.loop)

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_body = False
        answered = self.cycle is not None and self.cycle.response_complete
        super().on_message_complete()
        if answered and not self.pipeline and not self.transport.is_closing():
            self._await_head()  # answered before its body was in (a 429): next request due
        else:
            self._disarm()  # the request is in: the app takes the time it needs

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)
        super().on_response_complete()
        # while the rest of an unread body still arrives, its deadline stays
        if not pipelined and not self._in_body and not self.transport.is_closing():
            self._await_head()


class ResponseWriter:
    """The connection's transport as one response sees it: the response's head is held back
    until its first body chunk and both are written together, one ``write`` (one system call,
    one TCP segment on a small answer) where uvicorn makes two. A head that no body follows in
    the same turn of the event loop (a stream that waits for its first event) goes out at the
    next turn; what is written before the response starts (``100 Continue``) goes out at once.
    Everything else is the transport's."""

    __slots__ = ("_cycle", "_head_seen", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._cycle = cycle
        self._loop = loop
        self._held: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        """Write ``data``, holding a response head back for its body (see the class)."""
        if self._held is not None:
            data, self._held = self._held + data, None
        elif self._cycle.response_started and not self._head_seen:
            # the first write once the response has started is its head
            self._head_seen = True
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Write a held head now."""
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        """Write a held head, then close."""
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def guarded_protocol(settings: Settings) -> type[GuardedHttpProtocol]:
    """A protocol class for one server, with the settings' limits and its own table."""
    attributes = {"limits": ConnectionLimits.from_settings(settings), "table": ConnectionTable()}
    return type("CueflowHttpProtocol", (GuardedHttpProtocol,), attributes)
