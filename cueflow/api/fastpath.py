"""The worker fast path: the worker protocol's hot routes served without FastAPI's machinery.

Busy fleets poll, claim, heartbeat and report thousands of times a second, and most of a
request's CPU went to what surrounds the engine call: five middlewares each wrapping ``send``,
the router trying routes one by one, dependency solving, body handling. This middleware, the
standalone server's outermost, answers these requests itself:

* ``GET /v1/executions/claimable``, ``POST /v1/executions/claim`` (the next),
  ``POST /v1/executions/{execution_id}/claim``, ``.../heartbeat``, ``.../outcome``, and the
  batches ``POST /v1/executions/claims`` and ``POST /v1/executions/outcomes``.

It does what the stack behind it does, in one place: the request id (``X-Request-Id``, the log
context), the latency metric and the tracing span (:mod:`cueflow.api.observability`), the
caller's authentication and key scope (:mod:`cueflow.scopes`), the rate limit and its headers
(sharing the :class:`~cueflow.api.ratelimit.Budgets` of :class:`~cueflow.api.ratelimit.RateLimit`),
the body checks (:mod:`cueflow.api.middleware`); then it calls the same answer functions as the
FastAPI routes (:mod:`cueflow.api.worker_answers`) and renders them, and domain errors, with the
same functions too (:func:`~cueflow.api.render.json_bytes`,
:func:`~cueflow.api.errors.domain_response`).

It serves only the plain, valid, authenticated request. Anything else (no key or a wrong one, a
scope that does not allow the route, a refused or spent budget, a body that is not valid for the
route, a non-JSON content type, CORS, verify-echo, duplicate headers, a query it does not
parse plainly) goes, untouched but for the body it read (replayed), to the full stack behind
it, which answers it as it always has. Before the engine is called nothing is changed, so
handing over is always safe. The FastAPI routes stay registered: they document the API and
serve what the fast path hands over.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import orjson
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import cueflow.api.worker_answers as answers
import cueflow.tracing as tracing
from cueflow import logs
from cueflow.api.errors import domain_response
from cueflow.api.middleware import MAX_BODY_BYTES, json_refusal
from cueflow.api.observability import client_request_id
from cueflow.api.ratelimit import REFUSED_KEY_STATE, Budgets, client_address, limit_headers
from cueflow.api.render import json_bytes
from cueflow.authentication import Principal
from cueflow.claims import CLAIMABLE_LIMIT, MAX_LIMIT, MAX_WAIT_SECONDS
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from cueflow.longpoll import REFUSED_WAITS
from cueflow.schemas import BatchClaimRequest, BatchOutcomeRequest, ClaimRequest, OutcomeReport
from cueflow.scopes import Scope as KeyScope
from cueflow.scopes import allows, route_key

PREFIX = "/v1/executions/"
_INT = re.compile(r"^[0-9]{1,6}$")
_FLOAT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,9})?$")
_JSON_HEADERS = (b"content-type", b"application/json")
_VARY = (b"vary", b"Origin")
"""What the CORS middleware adds to the answer of a request without ``Origin`` (those with one
go to the stack behind)."""


@dataclass
class Call:
    """One request's parsed inputs."""

    execution_id: str | None
    body: Any
    worker: str | None
    query: dict[str, str]


Serve = Callable[[Engine, Principal, Call], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    """A route the fast path serves: its template (as the FastAPI route declares it, for the
    scope check and the metrics), its body model (``None``: the body is not read by the
    route), and the call of its answer function."""

    template: str
    body: type[BaseModel] | None
    serve: Serve
    polls: bool = False
    """A poll: its ``X-Worker-Id`` is the worker's heartbeat, validated by the route."""


async def _claimable(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    query = call.query
    task = query.get("task")
    limit = int(query.get("limit", CLAIMABLE_LIMIT))
    wait = float(query.get("wait", 0))
    return await answers.claimable(engine, user, task, limit, wait, call.worker)


async def _claim(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    return await answers.claim(engine, user, call.body, call.execution_id)


async def _claim_batch(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    return await answers.claim_batch(engine, user, call.body)


async def _outcome_batch(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    return await answers.outcome_batch(engine, user, call.body, call.worker)


async def _heartbeat(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    assert call.execution_id is not None
    return await answers.heartbeat(engine, user, call.execution_id, call.worker)


async def _outcome(engine: Engine, user: Principal, call: Call) -> dict[str, Any]:
    assert call.execution_id is not None
    return await answers.outcome(engine, user, call.execution_id, call.body, call.worker)


FIXED: dict[tuple[str, str], Operation] = {
    ("GET", "/v1/executions/claimable"): Operation(
        "/v1/executions/claimable", None, _claimable, polls=True
    ),
    ("POST", "/v1/executions/claim"): Operation("/v1/executions/claim", ClaimRequest, _claim),
    ("POST", "/v1/executions/claims"): Operation(
        "/v1/executions/claims", BatchClaimRequest, _claim_batch
    ),
    ("POST", "/v1/executions/outcomes"): Operation(
        "/v1/executions/outcomes", BatchOutcomeRequest, _outcome_batch
    ),
}
"""The fixed paths (declared before the ``{execution_id}`` ones, as in the router)."""

BY_ID: dict[str, Operation] = {
    "claim": Operation("/v1/executions/{execution_id}/claim", ClaimRequest, _claim),
    "heartbeat": Operation("/v1/executions/{execution_id}/heartbeat", None, _heartbeat),
    "outcome": Operation("/v1/executions/{execution_id}/outcome", OutcomeReport, _outcome),
}
"""``POST /v1/executions/{execution_id}/<action>``, by action."""


def match(method: str, path: str) -> tuple[Operation, str | None] | None:
    """The operation serving ``method path`` and its execution id, or ``None``."""
    fixed = FIXED.get((method, path))
    if fixed is not None:
        return fixed, None
    if method != "POST" or not path.startswith(PREFIX):
        return None
    execution_id, _, action = path[len(PREFIX) :].partition("/")
    operation = BY_ID.get(action)
    if operation is None or not execution_id:
        return None
    return operation, execution_id


def _plain_query(query_string: bytes) -> dict[str, str] | None:
    """``claimable``'s query (``task``, ``limit``, ``wait``) when each is given once and in
    range, as FastAPI would take it; ``None`` for anything FastAPI should judge."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in query:
            return None
        query[name] = value
    limit, wait = query.get("limit"), query.get("wait")
    if limit is not None and not (_INT.match(limit) and 1 <= int(limit) <= MAX_LIMIT):
        return None
    if wait is not None and not (_FLOAT.match(wait) and float(wait) <= MAX_WAIT_SECONDS):
        return None
    return query


async def _read(receive: Receive, limit: int) -> tuple[bytes | None, list[Message]]:
    """The request body (``None`` when it is over ``limit`` or the client left), and the
    messages received, to replay when the full stack takes the request over."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        size += len(message.get("body", b""))
        if size > limit:
            return None, messages
        if not message.get("more_body", False):
            break
    if len(messages) == 1:
        return message.get("body", b""), messages
    return b"".join(m.get("body", b"") for m in messages), messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` giving ``messages`` first, then what the client sends next."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


_UNREAD = object()
"""The body of a route that reads none (a heartbeat): checked by the body guard only."""


def _parse(operation: Operation, headers: dict[bytes, bytes], body: bytes) -> Any:
    """The route's body model from ``body`` (:data:`_UNREAD` for a route without one), or
    ``None`` when FastAPI should judge it."""
    model = operation.body
    if model is None:
        return _UNREAD
    media = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if not body or media != b"application/json":
        return None
    try:
        document = orjson.loads(body)
        if not isinstance(document, dict):
            return None
        return model.model_validate(document)
    except (orjson.JSONDecodeError, ValidationError):
        return None


class WorkerFastPath:
    """ASGI middleware serving the worker protocol's hot routes (see the module docstring);
    every other request goes to ``app`` as it came."""

    def __init__(self, app: ASGIApp, engine: Engine, budgets: Budgets) -> None:
        self.app = app
        self.engine = engine
        self.budgets = budgets
        self.metrics = engine.metrics
        self.max_body = MAX_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        operation, execution_id = found
        raw_headers = scope["headers"]
        headers = dict(raw_headers)
        authorization = headers.get(b"authorization")
        declared = headers.get(b"content-length")
        query_string = scope.get("query_string", b"")
        if (
            authorization is None
            or len(headers) != len(raw_headers)  # a repeated header: Starlette takes the first
            or b"origin" in headers  # CORS
            or b"x-cueapi-verify-echo" in headers
            or "\x00" in scope["path"]
            or (query_string and b"\x00" in unquote_to_bytes(query_string))
            or (declared is not None and declared.isdigit() and int(declared) > self.max_body)
        ):
            await self.app(scope, receive, send)
            return
        query = _plain_query(query_string) if query_string else {}
        caller = await self._caller(scope, authorization.decode("latin-1"), operation)
        if caller is None or query is None:
            await self.app(scope, receive, send)
            return
        raw, messages = await _read(receive, self.max_body)
        body = None
        if raw is not None and json_refusal(scope, raw) is None:
            body = _parse(operation, headers, raw)
        worker = headers.get(b"x-worker-id")
        if worker is not None and operation.polls and not 1 <= len(worker) <= 255:
            body = None  # the route validates a poll's X-Worker-Id (a 422 naming the header)
        limits = self._count(caller) if body is not None else None
        if limits is None:
            await self.app(scope, _replaying(messages, receive), send)
            return
        call = Call(
            execution_id,
            body,
            worker.decode("latin-1") if worker is not None else None,
            query,
        )
        await self._serve(scope, send, operation, caller, call, limits)

    async def _caller(
        self, scope: Scope, authorization: str, operation: Operation
    ) -> Principal | None:
        """The authenticated caller, if its key may call the route and it has budget left
        (not counted yet); else ``None``."""
        budgets = self.budgets
        address = client_address(scope)
        if budgets.enabled and not budgets.failed_auth.hit(address, count=False).allowed:
            return None
        try:
            principal = await self.engine.authenticate(authorization)
        except CueflowError:
            scope.setdefault("state", {})[REFUSED_KEY_STATE] = authorization
            return None
        if principal.scope is not KeyScope.FULL and not allows(
            principal.scope, route_key(scope["method"], operation.template)
        ):
            return None
        key = "user:" + principal.user_id
        if budgets.enabled and not budgets.keyed.hit(key, count=False).allowed:
            return None
        return principal

    def _count(self, caller: Principal) -> list[tuple[bytes, bytes]] | None:
        """Count the request against the caller's budget: the rate-limit headers to answer
        with, or ``None`` if the budget refuses it."""
        if not self.budgets.enabled:
            return []
        verdict = self.budgets.keyed.hit("user:" + caller.user_id)
        return limit_headers(verdict) if verdict.allowed else None

    async def _serve(
        self,
        scope: Scope,
        send: Send,
        operation: Operation,
        caller: Principal,
        call: Call,
        limits: list[tuple[bytes, bytes]],
    ) -> None:
        """Answer the request: the answer function's document, or the domain error's envelope,
        with the headers the stack behind would add; its latency, span and charge recorded."""
        method = scope["method"]
        request_id = str(uuid.uuid4())
        token = logs.request_id.set(request_id)
        client_token = logs.client_request_id.set(client_request_id(scope))
        started = time.perf_counter()
        clock_started = self.engine.clock.now()
        refused: list[float] = []
        waits = REFUSED_WAITS.set(refused)
        status = 500
        with tracing.request_span(scope["headers"], method) as span:
            try:
                try:
                    document = await operation.serve(self.engine, caller, call)
                except CueflowError as exc:
                    response = domain_response(exc, method, scope["path"])
                    status, body = response.status_code, bytes(response.body)
                    response_headers = response.raw_headers
                else:
                    status, body = 200, json_bytes(document)
                    response_headers = [
                        (b"content-length", str(len(body)).encode()),
                        _JSON_HEADERS,
                    ]
                if status == 401 and self.budgets.enabled:
                    self.budgets.failed_auth.hit(client_address(scope))
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            *response_headers,
                            _VARY,
                            *limits,
                            (b"x-request-id", request_id.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
            finally:
                REFUSED_WAITS.reset(waits)
                if self.budgets.enabled:
                    held = (self.engine.clock.now() - clock_started).total_seconds()
                    self.budgets.charge_held(
                        self.budgets.keyed, "user:" + caller.user_id, held + sum(refused)
                    )
                self.metrics.http_duration.labels(method, operation.template, str(status)).observe(
                    time.perf_counter() - started
                )
                span.done(method, operation.template, status)
                logs.request_id.reset(token)
                logs.client_request_id.reset(client_token)
