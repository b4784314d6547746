"""A small synchronous REST client for the command line: one method per HTTP verb, the base
URL and key from ``--api-url``/``--api-key``, and the error envelope turned into exceptions."""

from __future__ import annotations

from typing import Any

import httpx

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiError(Exception):
    """The server refused a request (4xx/5xx); carries the envelope's code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    """The server could not be reached (refused, timed out, bad address)."""


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


def api_error(response: httpx.Response) -> ApiError:
    """The :class:`ApiError` for a refused ``response``, from the contract's error envelope
    (``{"error": {"code", "message"}}``) when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return ApiError(
            response.status_code, str(error.get("code") or "error"), str(error["message"])
        )
    reason = response.reason_phrase or "error"
    return ApiError(response.status_code, "http_error", f"HTTP {response.status_code} {reason}")


class ApiClient:
    """The REST API of the cueflow (or CueAPI) server at ``base_url``, as the owner of
    ``api_key`` (:class:`BadServerUrl` if ``base_url`` is not ``http(s)://host...``).
    ``transport`` lets tests route requests in process."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = check_server_url(base_url)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one request; returns the decoded JSON body (``None`` when empty).

        Raises :class:`ApiError` for a 4xx/5xx answer (or a redirect: the URL is probably
        wrong) and :class:`Unreachable` when no answer came."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json, params=query, headers=headers)
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

    def get(self, path: str, **params: Any) -> Any:
        """``GET path?params``."""
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        """``POST path`` with a JSON ``body``."""
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any) -> Any:
        """``PATCH path`` with a JSON ``body``."""
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        """``DELETE path``."""
        return self.request("DELETE", path)
