"""Per-key rate limiting with CueAPI's headers, kept in process (no Redis).

Requests carrying a ``cue_sk_`` key count against that key (valid or not); others count against
the client address; and every 401 counts against the client address too, which is refused
once it has failed as often as an anonymous caller may ask (a flood of made-up keys cannot
dodge the limit by changing key each time). The window is a sliding minute, estimated from
the current and previous fixed minutes, so each key costs three numbers. Every limited
response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset``; a
refusal answers 429 ``rate_limit_exceeded`` with an integer ``Retry-After`` (the official
clients parse it with ``int()``). In a cluster each node counts its own requests.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from cueflow.api.errors import envelope
from cueflow.config import Settings

WINDOW_SECONDS = 60.0
EXEMPT_PATHS = frozenset(
    {"/health", "/status", "/v1/info", "/metrics", "/docs", "/redoc", "/openapi.json"}
)
_MAX_KEYS = 100_000


@dataclass
class Verdict:
    """The outcome of counting one request."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class SlidingWindow:
    """Counts hits per key over a sliding minute."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._counts: dict[str, tuple[int, int, int]] = {}

    def hit(self, key: str, *, count: bool = True) -> Verdict:
        """Count a request for ``key`` unless that would pass the limit (refusals don't count);
        with ``count=False`` only tell whether it would be allowed."""
        now = self._clock()
        slot = int(now // WINDOW_SECONDS)
        start, current, previous = self._counts.get(key, (slot, 0, 0))
        if slot != start:
            previous = current if slot == start + 1 else 0
            current, start = 0, slot
        weight = 1.0 - (now - slot * WINDOW_SECONDS) / WINDOW_SECONDS
        used = previous * weight + current
        if used + 1 > self.limit:
            wait = WINDOW_SECONDS - (now - slot * WINDOW_SECONDS)
            if previous and current < self.limit:
                # the previous minute's weight decays linearly: wait until enough has gone
                wait = (used + 1 - self.limit) / previous * WINDOW_SECONDS
            return Verdict(False, self.limit, 0, max(1, min(60, math.ceil(wait))))
        if not count:
            return Verdict(True, self.limit, max(0, math.floor(self.limit - used)), 0)
        if len(self._counts) >= _MAX_KEYS and key not in self._counts:
            self._counts.clear()
        self._counts[key] = (start, current + 1, previous)
        remaining = max(0, math.floor(self.limit - used - 1))
        return Verdict(True, self.limit, remaining, 0)


def _key(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and b"cue_sk_" in value:
            return "key:" + hashlib.sha256(value.split(b" ", 1)[-1].strip()).hexdigest()
    return _address(scope)


def _address(scope: dict[str, Any]) -> str:
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


class RateLimit:
    """ASGI middleware applying :class:`SlidingWindow` limits from the settings."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.keyed = SlidingWindow(settings.rate_limit_per_minute)
        self.anonymous = SlidingWindow(settings.rate_limit_anonymous_per_minute)
        self.failed_auth = SlidingWindow(settings.rate_limit_anonymous_per_minute)
        """401s per client address: a flood of made-up keys (each with a budget of its own)
        is refused once the address has failed as often as an anonymous caller may ask."""
        self.enabled = settings.rate_limit_per_minute > 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or not self.enabled
            or scope["path"] in EXEMPT_PATHS
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        key, address = _key(scope), _address(scope)
        window = self.keyed if key.startswith("key:") else self.anonymous
        verdict = self.failed_auth.hit(address, count=False)
        if verdict.allowed:
            verdict = window.hit(key)
        reset = str(int(time.time() + (verdict.retry_after or WINDOW_SECONDS))).encode()
        headers = [
            (b"x-ratelimit-limit", str(verdict.limit).encode()),
            (b"x-ratelimit-remaining", str(verdict.remaining).encode()),
            (b"x-ratelimit-reset", reset),
        ]
        if not verdict.allowed:
            message = f"Too many requests. Retry after {verdict.retry_after} seconds."
            body = orjson.dumps(envelope("rate_limit_exceeded", message, 429))
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(verdict.retry_after).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        scope.setdefault("state", {})["rate_limit"] = verdict  # read by GET /v1/usage

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
                if message["status"] == 401:
                    self.failed_auth.hit(address)
            await send(message)

        await self.app(scope, receive, send_with_headers)
