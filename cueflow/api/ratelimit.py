"""Per-caller rate limiting with CueAPI's headers, kept in process (no Redis).

A request counts against the account whose API key authenticated it; a request nothing
authenticated (no key, a wrong key, or a route that takes no key, such as registration) counts
against the client address, under the anonymous limit. The limiter authenticates the key itself,
with the same :class:`~cueflow.authentication.Authenticator` the routes use (and hands them the
result), so no variant of a key, and no made-up key, gets a budget of its own. Every 401 also
counts against the client address, which is refused once it has failed as often as an
anonymous caller may ask. The client address is the connection's peer; ``X-Forwarded-For`` is
believed only from the proxies ``CUEFLOW_FORWARDED_ALLOW_IPS`` names (uvicorn applies it).

Requests nothing authenticated are also limited in number *at once*: at most
``CUEFLOW_MAX_ANONYMOUS_IN_FLIGHT`` in all and ``CUEFLOW_MAX_ANONYMOUS_IN_FLIGHT_PER_ADDRESS``
per address may be in progress (their bodies being read included); more answer 429 at once.
So keyless callers who send bodies slowly hold a bounded amount of memory.

A request that holds the server longer costs more: one more unit per
``CUEFLOW_RATE_LIMIT_WAIT_SECONDS`` it took (a long-poll of 60 s costs 1 + 60 / 10 units by
default), charged when it ends; a long-poll refused for the per-key cap of waits is charged
the wait it asked for (:data:`cueflow.longpoll.REFUSED_WAITS`). The window is a sliding
minute, estimated from the current and previous fixed minutes, so each caller costs three
numbers. Every limited response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset``; a refusal answers 429 ``rate_limit_exceeded`` with an integer
``Retry-After`` (the official clients parse it with ``int()``). The limiter runs before the
request body is read, so a refused request costs no body buffer. In a cluster each node
counts its own requests.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cueflow.api.deps import PRINCIPAL_STATE
from cueflow.api.errors import envelope
from cueflow.errors import CueflowError
from cueflow.longpoll import REFUSED_WAITS

if TYPE_CHECKING:
    from cueflow.config import Settings
    from cueflow.engine import Engine

WINDOW_SECONDS = 60.0
EXEMPT_PATHS = frozenset(
    {"/health", "/status", "/v1/info", "/metrics", "/docs", "/redoc", "/openapi.json"}
)
_MAX_KEYS = 100_000
REFUSED_KEY_STATE = "cueflow_refused_authorization"
"""Request-state key under which the worker fast path leaves an ``Authorization`` value the
engine refused just now, so the limiter does not look the same made-up key up again."""


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

    def charge(self, key: str, units: int) -> None:
        """Count ``units`` more for ``key`` without refusing anything (the cost of a request
        that already ran); later requests pay for it."""
        slot = int(self._clock() // WINDOW_SECONDS)
        start, current, previous = self._counts.get(key, (slot, 0, 0))
        if slot != start:
            previous = current if slot == start + 1 else 0
            current, start = 0, slot
        self._counts[key] = (start, current + units, previous)


def _authorization(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            return str(value.decode("latin-1"))  # as Starlette decodes it for the routes
    return None


_KEYLESS: dict[tuple[Any, ...], list[tuple[str, re.Pattern[str]]]] = {}
""":func:`_keyless_operations` by set of routes: building an app's OpenAPI schema costs far
more than a request, and every app of a process (a test suite makes one per test) has the
same routes."""


def _route_signature(route: Any) -> tuple[Any, ...]:
    """What tells one of an app's routes (or included routers) from another across apps: the
    objects themselves are made per app, their endpoints and routers are not."""
    endpoint = getattr(route, "endpoint", None)
    return (
        type(route).__qualname__,
        getattr(route, "path", None),
        tuple(sorted(getattr(route, "methods", None) or ())),
        getattr(endpoint, "__module__", None),
        getattr(endpoint, "__qualname__", None),
        id(getattr(route, "original_router", None) or getattr(route, "router", None)),
    )


def _keyless_operations(app: Any) -> list[tuple[str, re.Pattern[str]]]:
    """The (method, path pattern) of every documented operation that takes no API key (its
    OpenAPI operation names no security scheme): registration, the echo store, the probes."""
    routes = tuple(_route_signature(route) for route in getattr(app, "routes", ()))
    found = _KEYLESS.get(routes)
    if found is None:
        schema = app.openapi() if callable(getattr(app, "openapi", None)) else {}
        found = _KEYLESS[routes] = [
            (method.upper(), compile_path(path)[0])
            for path, operations in schema.get("paths", {}).items()
            for method, operation in operations.items()
            if not operation.get("security")
        ]
    return found


def client_address(scope: Scope) -> str:
    """The key a request counts against when no API key authenticated it: its client address."""
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


class Budgets:
    """One server's request budgets, from the engine's settings: shared by :class:`RateLimit`
    and the worker fast path (:mod:`cueflow.api.fastpath`), so a caller has one budget
    whichever way its requests are served."""

    def __init__(self, settings: Settings) -> None:
        self.keyed = SlidingWindow(settings.rate_limit_per_minute)
        self.anonymous = SlidingWindow(settings.rate_limit_anonymous_per_minute)
        self.failed_auth = SlidingWindow(settings.rate_limit_anonymous_per_minute)
        """401s per client address: a flood of made-up keys (each with a budget of its own)
        is refused once the address has failed as often as an anonymous caller may ask."""
        self.enabled = settings.rate_limit_per_minute > 0
        self.wait_seconds = settings.rate_limit_wait_seconds

    def charge_held(self, window: SlidingWindow, key: str, held: float) -> None:
        """Charge ``key`` one more unit per ``wait_seconds`` its request held the server."""
        if held >= self.wait_seconds:
            window.charge(key, int(held // self.wait_seconds))


def limit_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` for ``verdict``."""
    reset = str(int(time.time() + (verdict.retry_after or WINDOW_SECONDS))).encode()
    return [
        (b"x-ratelimit-limit", str(verdict.limit).encode()),
        (b"x-ratelimit-remaining", str(verdict.remaining).encode()),
        (b"x-ratelimit-reset", reset),
    ]


class RateLimit:
    """ASGI middleware applying :class:`SlidingWindow` limits from the engine's settings (or
    the ``budgets`` given)."""

    def __init__(self, app: ASGIApp, engine: Engine, budgets: Budgets | None = None) -> None:
        settings = engine.settings
        self.app = app
        self.engine = engine
        self.budgets = budgets or Budgets(settings)
        self.keyed = self.budgets.keyed
        self.anonymous = self.budgets.anonymous
        self.failed_auth = self.budgets.failed_auth
        self.enabled = self.budgets.enabled
        self.max_anonymous = settings.anonymous_in_flight
        self.max_anonymous_per_address = settings.anonymous_in_flight_per_address
        self._anonymous = Counter[str]()
        """Keyless requests in progress, by address (and in all under the key ``""``)."""
        self._keyless: list[tuple[str, re.Pattern[str]]] | None = None

    def _takes_no_key(self, scope: Scope) -> bool:
        """Whether the request goes to an operation that authenticates nobody (registration,
        the echo store): such requests count against the address whatever key they carry."""
        if self._keyless is None:
            self._keyless = _keyless_operations(scope.get("app"))
        method, path = scope["method"], scope["path"]
        return any(m == method and p.match(path) for m, p in self._keyless)

    async def _caller(self, scope: Scope) -> tuple[str, SlidingWindow]:
        """Whom the request counts against: the account its key authenticates, else its
        address. The principal found is left in the request state for the route."""
        authorization = _authorization(scope)
        refused = scope.get("state", {}).get(REFUSED_KEY_STATE)
        if authorization is not None and authorization != refused and not self._takes_no_key(scope):
            try:
                principal = await self.engine.authenticate(authorization)
            except CueflowError:
                pass  # unknown key, or the store is down: the route answers it
            else:
                scope.setdefault("state", {})[PRINCIPAL_STATE] = (authorization, principal)
                return "user:" + principal.user_id, self.keyed
        return client_address(scope), self.anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.enabled
            or scope["path"] in EXEMPT_PATHS
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        address = client_address(scope)
        key, window = address, self.anonymous
        verdict = self.failed_auth.hit(address, count=False)
        if verdict.allowed:
            key, window = await self._caller(scope)
            verdict = (
                self._too_many_at_once(address) if window is self.anonymous else None
            ) or window.hit(key)
        headers = limit_headers(verdict)
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

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
                if message["status"] == 401:
                    self.failed_auth.hit(address)
            await send(message)

        started = self.engine.clock.now()
        keyless = window is self.anonymous
        if keyless:
            self._anonymous[address] += 1
            self._anonymous[""] += 1
        refused: list[float] = []
        token = REFUSED_WAITS.set(refused)
        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            REFUSED_WAITS.reset(token)
            if keyless:
                for counted in (address, ""):
                    self._anonymous[counted] -= 1
                    if not self._anonymous[counted]:
                        del self._anonymous[counted]
            held = (self.engine.clock.now() - started).total_seconds() + sum(refused)
            self.budgets.charge_held(window, key, held)

    def _too_many_at_once(self, address: str) -> Verdict | None:
        """A refusal when keyless requests in progress are at their cap (in all, or from
        ``address``), else ``None``."""
        if (
            self._anonymous[""] >= self.max_anonymous
            or self._anonymous[address] >= self.max_anonymous_per_address
        ):
            return Verdict(False, self.anonymous.limit, 0, 1)
        return None
