""":class:`AsyncClient`, the asynchronous client of the REST API. ``_sync_client.py``
(:class:`Client`) is generated from this module (``scripts/generate_client.py``): edit this
one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from cueflow.client._async_api import AsyncApi
from cueflow.client._async_transport import AsyncTransport
from cueflow.client._shapes import DEFAULT_API_URL, Retries


class AsyncClient(AsyncApi):
    """The REST API of the cueflow (or CueAPI) server at ``base_url``, as the owner of
    ``api_key``; one attribute per resource, one method per operation, named after the
    OpenAPI document's operation ids::

        async with AsyncClient("http://127.0.0.1:8000", api_key) as client:
            cue = await client.cues.create({"name": "nightly", ...})
            async for execution in client.executions.iterate(cue_id=cue.id):
                ...

    Answers are :mod:`cueflow.client.models`; refusals raise
    :class:`~cueflow.client.errors.ApiError` subclasses. A 429 or 503 is retried as
    ``retries`` says (:class:`~cueflow.client.Retries`: ``Retry-After`` honoured, bounded).
    ``transport`` routes requests elsewhere (an ASGI app, an ``httpx.MockTransport``);
    ``sleep`` is how retries wait (tests pass their own)."""

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retries: Retries | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: dict[str, str] | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.transport = AsyncTransport(
            base_url,
            api_key,
            timeout=timeout,
            retries=retries or Retries(),
            transport=transport,
            headers=headers,
            sleep=sleep,
        )
        self.base_url = self.transport.base_url
        super().__init__(self.transport)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.transport.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str | None] | None = None,
        waits: float = 0,
    ) -> Any:
        """Any request, answered with its decoded JSON (``None`` when empty): for routes of a
        newer server than this client knows. Errors and retries as for the typed methods."""
        return await self.transport.request(
            method, path, body=body, params=params, headers=headers, waits=waits
        )
