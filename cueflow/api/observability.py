"""The request-context middleware: a request id for every request, and its latency by route.

It is the standalone server's outermost middleware, so it sees every request, also those the
inner middleware refuses (413, 400, 429). For each HTTP request it

* makes a fresh UUID, the request id, and sets :data:`cueflow.logs.request_id` to it for the
  request's duration (every record logged meanwhile carries it; the request guard answers it
  in ``X-Request-Id``). The wire contract wants a fresh id per response whatever the caller
  sent, so a caller's own ``X-Request-ID`` is not echoed: when it is a sane token (1-128
  characters of letters, digits and ``._:-``) it is logged as ``client_request_id``, which
  ties the caller's traces to cueflow's lines;
* observes ``cueflow_http_request_duration_seconds`` with the matched route's template
  (``/v1/executions/{execution_id}/claim``, never the raw path, so the series stay few;
  ``unmatched`` when no route matched), the method and the response status.
* when tracing with OpenTelemetry (:mod:`cueflow.tracing`), runs the request in a server span
  named after the method and route; a W3C ``traceparent`` header the caller sent makes it a
  child of the caller's span.
"""

from __future__ import annotations

import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

import cueflow.tracing as tracing
from cueflow import logs
from cueflow.metrics import Metrics

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
UNMATCHED = "unmatched"
"""The ``route`` label of requests no route matched (404s of unknown paths)."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def client_request_id(scope: Scope) -> str | None:
    """The caller's ``X-Request-ID`` if it sent a sane token."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SANE_ID.match(value):
            return str(value.decode("ascii"))
    return None


def route_template(scope: Scope) -> str:
    """The path template of the route that served the request, or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestContext:
    """Sets the request id and records each request's latency in ``metrics``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = logs.request_id.set(str(uuid.uuid4()))
        client_token = logs.client_request_id.set(client_request_id(scope))
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        with tracing.request_span(scope.get("headers", ()), method) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_template(scope)
                self.metrics.http_duration.labels(method, route, str(status)).observe(
                    time.perf_counter() - started
                )
                span.done(method, route, status)
                logs.request_id.reset(token)
                logs.client_request_id.reset(client_token)
