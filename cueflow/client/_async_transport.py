"""The asynchronous client's connection: one :class:`httpx.AsyncClient`, the bearer key, the
error mapping and the retries. ``_sync_transport.py`` is generated from this module
(``scripts/generate_client.py``): edit this one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from cueflow.client._shapes import Retries, _body, _query, check_server_url
from cueflow.client.errors import ApiError, Unreachable, api_error


class AsyncTransport:
    """Requests to the server at ``base_url`` as the owner of ``api_key``: JSON in and out,
    refusals raised as :class:`~cueflow.client.errors.ApiError` subclasses, 429 and 503 retried
    as ``retries`` says (``sleep`` waits; tests pass their own)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float,
        retries: Retries,
        transport: httpx.AsyncBaseTransport | None,
        headers: dict[str, str] | None,
        sleep: Callable[[float], Any],
    ) -> None:
        self.base_url = check_server_url(base_url)
        self.timeout = timeout
        self.retries = retries
        self._sleep = sleep
        sent = {**(headers or {})}
        if api_key:
            sent["Authorization"] = f"Bearer {api_key}"
        self.http = httpx.AsyncClient(
            base_url=self.base_url, headers=sent, timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str | None] | None = None,
        waits: float = 0,
    ) -> httpx.Response:
        """Send one request, retried on 429/503 as :attr:`retries` says; the accepted answer.

        ``waits`` is how long the server may hold the answer (a long poll), added to the read
        timeout. Raises an :class:`ApiError` subclass for a 4xx/5xx answer (or a redirect: the
        URL is probably wrong) and :class:`Unreachable` when no answer came."""
        sent = {key: value for key, value in (headers or {}).items() if value is not None}
        timeout = httpx.Timeout(self.timeout, read=self.timeout + waits) if waits else None
        attempt = 0
        while True:
            try:
                response = await self.http.request(
                    method,
                    path,
                    json=_body(body),
                    params=_query(params),
                    headers=sent,
                    timeout=timeout or httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                reason = exc or type(exc).__name__
                raise Unreachable(f"cannot reach {self.base_url}: {reason}") from exc
            if response.is_redirect:
                where = response.headers.get("location", "elsewhere")
                message = f"the server redirects to {where}; check the server URL"
                raise ApiError(response.status_code, "redirect", message)
            if response.status_code < 400:
                return response
            error = api_error(response)
            wait = self.retries.wait(error, attempt)
            if wait is None:
                raise error
            attempt += 1
            await self._sleep(wait)

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
        """:meth:`send`, then the decoded JSON answer (``None`` when empty)."""
        response = await self.send(
            method, path, body=body, params=params, headers=headers, waits=waits
        )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code, "invalid_response", "the server's answer is not JSON"
            ) from exc

    async def text(self, method: str, path: str, *, params: dict[str, Any] | None = None) -> str:
        """:meth:`send`, then the answer as text (for the few answers that are not JSON)."""
        return (await self.send(method, path, params=params)).text
