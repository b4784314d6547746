"""Connections cannot deny service without a key: idle, trickling and half-sent connections are
closed on deadlines, one address can hold only so many, heads are bounded, and a normal client
is served meanwhile. Each test runs a real ``cueflow serve`` and opens raw sockets from another
loopback address (127.0.0.2) than the normal client's (127.0.0.1)."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.server import cueflow_server

FLOODER = "127.0.0.2"
SHORT = {
    "CUEFLOW_HEADER_TIMEOUT_SECONDS": "1",
    "CUEFLOW_BODY_TIMEOUT_SECONDS": "2",
    "CUEFLOW_MAX_CONNECTIONS_PER_ADDRESS": "50",
}


@contextmanager
def server(tmp_path: Path, nofile: int | None = None, **env: str) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    with cueflow_server(url, tmp_path, nofile=nofile, **{**SHORT, **env}) as base:
        yield base


def connect(base: str, source: str = FLOODER) -> socket.socket:
    parts = urlsplit(base)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    return socket.create_connection(address, timeout=5, source_address=(source, 0))


def outcome(sockets: list[socket.socket], within: float) -> list[bytes | None]:
    """What each socket received until the server closed it (``None``: still open after
    ``within`` seconds)."""
    received: dict[socket.socket, bytes] = {s: b"" for s in sockets}
    closed: set[socket.socket] = set()
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + within
        while len(closed) < len(sockets) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b"" if sock not in closed else None  # type: ignore[assignment]
                if data:
                    received[sock] += data
                else:
                    closed.add(sock)
                    selector.unregister(sock)
    for sock in sockets:
        sock.close()
    return [received[s] if s in closed else None for s in sockets]


def served(base: str) -> int:
    """A normal client's ``/health`` (from 127.0.0.1, on a new connection)."""
    transport = httpx.HTTPTransport(local_address="127.0.0.1")
    with httpx.Client(transport=transport, timeout=5) as client:
        return client.get(f"{base}/health").status_code


def test_idle_connections_are_closed_and_one_address_can_hold_only_so_many(
    tmp_path: Path,
) -> None:
    with server(tmp_path) as base:
        idle = [connect(base) for _ in range(200)]
        assert served(base) == 200  # while they are open
        results = outcome(idle, within=6)  # the header timeout is 1 s
        assert served(base) == 200
    assert None not in results  # every one closed
    refused = [r for r in results if r and r.startswith(b"HTTP/1.1 503")]
    assert len(refused) == 150  # past the 50 one address may hold: at once
    assert b"too_many_connections" in refused[0]
    assert results.count(b"") == 50  # the others: closed silently after the header timeout


def test_a_head_trickled_byte_by_byte_is_cut_at_the_header_timeout(tmp_path: Path) -> None:
    with server(tmp_path) as base:
        slow = [connect(base) for _ in range(20)]
        for sock in slow:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        alive = list(slow)
        started = time.monotonic()
        while alive and time.monotonic() - started < 6:
            for sock in list(alive):
                try:
                    sock.sendall(b"X-Trickle: 1\r\n")
                except OSError:
                    alive.remove(sock)  # the server closed it
            time.sleep(0.2)
        assert served(base) == 200
        results = outcome(slow, within=1)
    assert not alive  # cut (at the 1 s header timeout) although bytes kept coming
    assert None not in results


def test_a_refused_request_costs_no_body_and_a_stalled_body_is_cut(tmp_path: Path) -> None:
    env = {"CUEFLOW_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "5"}
    head = (
        b"POST /v1/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    with server(tmp_path, **env) as base:
        stalled = []
        for _ in range(10):
            sock = connect(base)
            sock.sendall(head + b" " * 1000)  # and never the rest
            stalled.append(sock)
            time.sleep(0.05)
        results = outcome(stalled, within=6)
        assert served(base) == 200
    assert None not in results
    # past the address's 5 requests a minute: 429 without waiting for the body
    assert sum(1 for r in results if r and r.startswith(b"HTTP/1.1 429")) == 5
    assert results.count(b"") == 5  # the others: closed at the body timeout


def test_keyless_callers_can_hold_only_so_many_bodies_at_once(tmp_path: Path) -> None:
    env = {"CUEFLOW_MAX_ANONYMOUS_IN_FLIGHT_PER_ADDRESS": "4"}
    head = (
        b"POST /v1/echo/held HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000\r\n\r\n"
    )
    with server(tmp_path, **env) as base:
        stalled = []
        for _ in range(10):
            sock = connect(base)
            sock.sendall(head + b" " * 999_999)  # all but the last byte
            stalled.append(sock)
            time.sleep(0.05)
        results = outcome(stalled, within=6)
        assert served(base) == 200
    assert None not in results
    assert sum(1 for r in results if r and r.startswith(b"HTTP/1.1 429")) == 6  # at once
    assert results.count(b"") == 4  # held until the body timeout


def test_too_many_headers_are_refused_with_431(tmp_path: Path) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % n for n in range(150))
    with server(tmp_path) as base:
        sock = connect(base)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        (answer,) = outcome([sock], within=3)
        flood = connect(base)
        try:
            flood.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            flood.sendall(b"".join(b"X-H%d: v\r\n" % n for n in range(200_000)))
        except OSError:
            pass  # closed while sending: refused
        (flooded,) = outcome([flood], within=3)
        assert served(base) == 200
    assert answer is not None and answer.startswith(b"HTTP/1.1 431")
    assert b"request_header_too_large" in answer
    assert flooded is not None and not flooded.startswith(b"HTTP/1.1 200")


def test_a_descriptor_flood_leaves_room_for_a_normal_client(tmp_path: Path) -> None:
    # 256 descriptors: 300 idle connections would exhaust them; the cap (256 - 128) is met
    # first, and the longest idle connection makes room for a new one
    env = {"CUEFLOW_HEADER_TIMEOUT_SECONDS": "30", "CUEFLOW_MAX_CONNECTIONS_PER_ADDRESS": "1000"}
    with server(tmp_path, nofile=256, **env) as base:
        idle = [connect(base) for _ in range(300)]
        time.sleep(0.5)  # let the server accept them all
        codes = [served(base) for _ in range(3)]
        results = outcome(idle, within=1)
    assert codes == [200, 200, 200]
    assert sum(r is not None for r in results) >= 300 - 128  # evicted to stay under the cap
