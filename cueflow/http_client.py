"""One client for the REST wire of a cueflow (or CueAPI) server, used by the command line, the
worker daemon and the agents' HTTP backend.

:class:`ApiClient` shapes requests (base URL, bearer key, query without ``None`` values) and
parses answers: a JSON body, or one exception type, :class:`ApiError`, carrying the HTTP status,
the error envelope's ``code`` and ``message`` (``{"error": {"code", "message", "status"}}``) and
the ``Retry-After`` the server asked for. :class:`Unreachable` is the :class:`ApiError` for a
server that gave no answer at all.
"""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"
MESSAGE_LIMIT = 500
"""Longest server message kept in an :class:`ApiError` (a proxy may answer with a page)."""


class ApiError(Exception):
    """A refused request: the HTTP status, the envelope's ``code`` and ``message``, and
    ``retry_after`` (seconds, from ``Retry-After``) when the server said when to come back."""

    def __init__(
        self, status: int, code: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class Unreachable(ApiError):
    """No answer came: the server refused the connection, timed out or has a bad address."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "unreachable", message)

    def __str__(self) -> str:
        return self.message


class BadServerUrl(ValueError):
    """The server URL cannot be used (not ``http(s)://host[:port]``)."""


def check_server_url(url: str) -> str:
    """``url`` without a trailing slash; :class:`BadServerUrl` unless it is
    ``http(s)://host...``."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadServerUrl(f"{url!r} is not an http(s):// server URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadServerUrl(f"{url!r} is not an http(s):// server URL")
    return url.rstrip("/")


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when given as a number (an HTTP date is left to the caller's
    own backoff)."""
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def api_error(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` for a refused ``response``: from the contract's error envelope when
    it has one, from a framework's ``{"detail": "..."}`` otherwise, else from the status line."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code, message = str(error.get("code") or "error"), str(error["message"])
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        code, message = "http_error", body["detail"]
    else:
        reason = response.reason_phrase or "error"
        code, message = "http_error", f"HTTP {response.status_code} {reason}"
    return ApiError(response.status_code, code, message[:MESSAGE_LIMIT], _retry_after(response))


class ApiClient:
    """The REST API of the server at ``base_url``, as the owner of ``api_key``
    (:class:`BadServerUrl` if ``base_url`` is not ``http(s)://host...``). ``transport`` lets
    tests route requests in process (an ASGI app, an ``httpx.MockTransport``)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = check_server_url(base_url)
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r})"

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

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
        query = {k: v for k, v in (params or {}).items() if v is not None}
        timeout = httpx.Timeout(self.timeout, read=self.timeout + waits) if waits else None
        try:
            response = await self._http.request(
                method,
                path,
                json=json,
                params=query,
                headers=headers,
                timeout=timeout or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {exc or type(exc).__name__}") from exc
        if response.is_redirect:
            where = response.headers.get("location", "elsewhere")
            message = f"the server redirects to {where}; check the server URL"
            raise ApiError(response.status_code, "redirect", message)
        if response.status_code >= 400:
            raise api_error(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ApiError(
                response.status_code, "invalid_response", "the server's answer is not JSON"
            ) from exc

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
