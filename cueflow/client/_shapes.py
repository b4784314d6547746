"""What the asynchronous and the blocking clients share: the retry policy, how answers become
models and how path segments are quoted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from cueflow.client.errors import ApiError

M = TypeVar("M", bound=BaseModel)

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
    """``answer`` (decoded JSON) as ``kind``; :class:`ApiError` ``invalid_response`` when it
    does not fit."""
    try:
        return kind.model_validate(answer)
    except ValidationError as exc:
        message = f"the server's answer does not fit {kind.__name__}: {exc}"
        raise ApiError(200, "invalid_response", message[:500]) from exc


def _segment(value: str) -> str:
    """``value`` quoted for one path segment (a ``/`` in an id cannot change the route)."""
    return quote(str(value), safe="")


def _body(body: Any) -> Any:
    """A request body as JSON: a model's set fields (by wire name), a mapping as it is."""
    dump = getattr(body, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True, exclude_unset=True)
    return body


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
