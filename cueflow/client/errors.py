"""The contract's errors as exceptions: one base, :class:`ApiError`, and a subclass per kind of
refusal, each carrying the HTTP ``status``, the envelope's ``code`` and ``message``
(``{"error": {"code", "message", "status"}}``) and ``retry_after`` (seconds, from the
``Retry-After`` header) when the server said when to come back.

``except ApiError`` catches every refusal; ``except NotFound`` only a 404, ``except RateLimited``
only a 429. :class:`Unreachable` is the :class:`ApiError` for a server that gave no answer.
"""

from __future__ import annotations

from typing import Any

import httpx

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


class BadRequest(ApiError):
    """400: the request is malformed or breaks a rule (``invalid_schedule``, ...)."""


class Unauthorized(ApiError):
    """401: no key, or a key the server does not know (``invalid_api_key``)."""


class PermissionDenied(ApiError):
    """403: the key may not do this (``insufficient_scope``, a lease held by another worker)."""


class NotFound(ApiError):
    """404: no such cue, execution, flow, ... in this account."""


class Conflict(ApiError):
    """409: the state forbids it now (already claimed, outcome already reported, ...)."""


class PayloadTooLarge(ApiError):
    """413: the body is over the server's limit."""


class ValidationFailed(ApiError):
    """422: the body or query does not fit the schema."""


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` says when to come back."""


class ServerError(ApiError):
    """5xx: the server failed."""


class ServiceUnavailable(ServerError):
    """503: the server cannot do the work now (``database_unavailable``); retry after
    ``retry_after`` seconds."""


class Unreachable(ServiceUnavailable):
    """No answer came: the server refused the connection, timed out or has a bad address."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "unreachable", message)

    def __str__(self) -> str:
        return self.message


BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}
"""The exception raised for each status (other 5xx: :class:`ServerError`, other: the base)."""


def error_class(status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass for an HTTP ``status``."""
    if status in BY_STATUS:
        return BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def retry_after(response: httpx.Response) -> float | None:
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
        body: Any = response.json()
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
    kind = error_class(response.status_code)
    return kind(response.status_code, code, message[:MESSAGE_LIMIT], retry_after(response))
