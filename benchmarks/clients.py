"""The two HTTP clients a benchmark can drive the server with, behind one small interface.

``lite`` (:class:`benchmarks.lite.LiteClient`) costs the benchmark a few tens of microseconds
per request; ``httpx`` is what a Python worker typically uses and costs about 1.6 ms. Figures
are always reported with the client that produced them and the client's CPU time.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
import orjson

from benchmarks.lite import LiteClient


class Client(Protocol):
    """What a scenario needs from an HTTP client."""

    async def json(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send a request; ``(status, parsed JSON body)``."""

    async def close(self) -> None:
        """Release the connection."""


class HttpxClient:
    """:class:`Client` over ``httpx.AsyncClient`` (keep-alive, one connection)."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=1),
        )

    async def json(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send a request; ``(status, parsed JSON body)``."""
        resp = await self._client.request(method, path, json=json, headers=headers)
        return resp.status_code, (orjson.loads(resp.content) if resp.content else None)

    async def close(self) -> None:
        """Close the client."""
        await self._client.aclose()


def make_client(kind: str, base_url: str, token: str | None) -> Client:
    """A ``lite`` or ``httpx`` client for ``base_url``."""
    if kind == "lite":
        return LiteClient(base_url, token)
    if kind == "httpx":
        return HttpxClient(base_url, token)
    raise ValueError(f"unknown client {kind!r}")
