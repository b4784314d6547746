"""The untyped REST client that came before :mod:`cueflow.client`, kept for callers that speak
in paths (``await api.get("/v1/cues")``) rather than operations; it sends through
:class:`cueflow.client.AsyncClient` (same errors, same URL checks) without retries, as it
always did.

The errors live in :mod:`cueflow.client.errors` and are re-exported here, so
``except cueflow.http_client.ApiError`` and ``except cueflow.client.ApiError`` are one and the
same.
"""

from __future__ import annotations

from typing import Any

import httpx

from cueflow.client import DEFAULT_API_URL, AsyncClient, BadServerUrl, Retries, check_server_url
from cueflow.client.errors import MESSAGE_LIMIT, ApiError, Unreachable, api_error

__all__ = [
    "DEFAULT_API_URL",
    "MESSAGE_LIMIT",
    "ApiClient",
    "ApiError",
    "BadServerUrl",
    "Unreachable",
    "api_error",
    "check_server_url",
]

NO_RETRIES = Retries(attempts=0)


class ApiClient:
    """The REST API of the server at ``base_url``, as the owner of ``api_key``
    (:class:`BadServerUrl` if ``base_url`` is not ``http(s)://host...``). ``transport`` lets
    tests route requests in process (an ASGI app, an ``httpx.MockTransport``). :attr:`typed`
    is the same connection as a :class:`cueflow.client.AsyncClient`."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.typed = AsyncClient(
            base_url, api_key, timeout=timeout, transport=transport, retries=NO_RETRIES
        )
        self.base_url = self.typed.base_url
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.typed.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        waits: float = 0,
    ) -> Any:
        """Send one request; returns the decoded JSON body (``None`` when empty). ``waits`` is
        how long the server may hold the answer (a long poll), added to the read timeout.

        Raises :class:`ApiError` for a 4xx/5xx answer (or a redirect: the URL is probably
        wrong, or a body that is not JSON) and :class:`Unreachable` when no answer came."""
        sent: dict[str, str | None] | None = dict(headers) if headers else None
        return await self.typed.request(
            method, path, body=json, params=params, headers=sent, waits=waits
        )

    async def get(self, path: str, *, waits: float = 0, **params: Any) -> Any:
        """``GET path?params`` (``waits``: as for :meth:`request`)."""
        return await self.request("GET", path, params=params, waits=waits)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """``POST path`` with a JSON ``body``."""
        return await self.request("POST", path, json=body, **kwargs)

    async def patch(self, path: str, body: Any) -> Any:
        """``PATCH path`` with a JSON ``body``."""
        return await self.request("PATCH", path, json=body)

    async def delete(self, path: str) -> Any:
        """``DELETE path``."""
        return await self.request("DELETE", path)
