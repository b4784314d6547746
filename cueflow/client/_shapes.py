"""What the asynchronous and the blocking clients share: the server URL check, the retry
policy, how answers become models and how path segments are quoted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from cueflow.client.errors import ApiError
from cueflow.client.models import Model

M = TypeVar("M", bound=Model)

DEFAULT_API_URL = "http://127.0.0.1:8000"


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


RETRIED_STATUSES = frozenset({429, 503})
"""Refusals that say "come back later": the request was not done, so sending it again is safe."""


@dataclass(frozen=True)
class Retries:
    """How a client retries a 429 or 503: up to ``attempts`` more times, waiting what the
    server's ``Retry-After`` asks (or ``backoff`` seconds, doubled each time, when it gives no
    number), but never longer than ``max_wait`` seconds for one wait: a server asking for more
    gets its refusal raised at once. ``Retries(attempts=0)`` never retries."""

    attempts: int = 3
    max_wait: float = 60.0
    backoff: float = 0.5

    def wait(self, error: ApiError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error`` on try ``attempt`` (0 first), or
        ``None`` when it must be raised."""
        if error.status not in RETRIED_STATUSES or attempt >= self.attempts:
            return None
        if error.code == "unreachable":
            return None
        seconds = error.retry_after
        if seconds is None:
            seconds = self.backoff * 2**attempt
        return seconds if seconds <= self.max_wait else None


def _parse(kind: type[M], answer: Any) -> M:
    """``answer`` (decoded JSON) as ``kind``, which keeps it for :meth:`Model.wire`;
    :class:`ApiError` ``invalid_response`` when it does not fit."""
    try:
        parsed = kind.model_validate(answer)
    except ValidationError as exc:
        message = f"the server's answer does not fit {kind.__name__}: {exc}"
        raise ApiError(200, "invalid_response", message[:500]) from exc
    parsed._wire = answer
    return parsed


def _segment(value: str) -> str:
    """``value`` quoted as one path segment: a ``/``, ``.`` or ``..`` in an id (or a name a
    user typed) cannot change the route."""
    text = str(value)
    return quote(text, safe="") if text not in (".", "..") else text.replace(".", "%2E")


def _body(body: Any) -> Any:
    """A request body as JSON: a model's set fields (by wire name), a mapping as it is."""
    dump = getattr(body, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True, exclude_unset=True)
    return body


def _waits(body: Any) -> float:
    """The seconds a long-polling body asks the server to wait (its ``wait``), 0 if none."""
    wait = body.get("wait") if isinstance(body, Mapping) else getattr(body, "wait", None)
    return float(wait) if isinstance(wait, int | float) else 0.0


def _query(params: dict[str, Any] | None) -> dict[str, Any]:
    """Query parameters without ``None`` values (booleans as the server reads them)."""
    query: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        query[key] = value
    return query
