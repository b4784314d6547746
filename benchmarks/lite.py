"""A lightweight HTTP/1.1 client for benchmarks: one keep-alive connection, no pooling, no
redirects, no cookies, bytes in and bytes out.

A Python httpx client spends about 1.6 ms of CPU per request, several times what the server
spends on a claim; on a 2-core machine a benchmark driven by it measures the client. This one
spends a few tens of microseconds, so the figures it produces are the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import orjson


class HttpError(RuntimeError):
    """The connection broke or the response could not be read."""


class LiteClient:
    """One persistent HTTP/1.1 connection to ``base_url`` (``http://`` only)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError("the lightweight client speaks plain http:// only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._fixed = f"Host: {self.host}:{self.port}\r\n{auth}".encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.requests = 0

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None

    async def request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Send one request; returns ``(status, body)``. Reconnects once if the server had
        closed the idle connection."""
        body = b"" if json is None else orjson.dumps(json)
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self._fixed
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        if json is not None:
            head += b"Content-Type: application/json\r\n"
        head += b"Content-Length: %d\r\n\r\n" % len(body)
        for attempt in (0, 1):
            if self._writer is None:
                await self._connect()
            assert self._writer is not None
            try:
                self._writer.write(head + body)
                result = await asyncio.wait_for(self._read(), self.timeout)
                self.requests += 1
                return result
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if attempt:
                    raise HttpError(f"{method} {path}: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def json(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Like :meth:`request`, with the body parsed as JSON (``None`` when empty)."""
        status, body = await self.request(method, path, json, headers)
        return status, (orjson.loads(body) if body else None)

    async def _read(self) -> tuple[int, bytes]:
        reader = self._reader
        assert reader is not None
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = -1
        chunked = False
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif name == b"connection" and b"close" in value.lower():
                close = True
        if chunked:
            body = await self._read_chunked(reader)
        elif length >= 0:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            close = True
        if close:
            await self.close()
        return status, body

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
