"""OpenTelemetry tracing (``cueflow[otel]``): one trace per execution, whose id is the execution
id, across fire, claim, heartbeat, outcome, push delivery and the in-process handler run; the
webhook's ``traceparent``; an API request's span parented by the caller's ``traceparent``;
trace ids on log lines; and no tracing at all without the API or a tracer provider.

The SDK's tracer provider is process-wide and set once: this module sets one whose sampler
records only while one of its tests runs, into an in-memory exporter."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import cueflow.tracing as tracing
from cueflow import logs
from cueflow.api.observability import RequestContext
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.metrics import Metrics
from tests.inprocess_support import due_cue, only_execution, opened
from tests.inprocess_support import fire as fire_inprocess
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    executions_of,
    fire,
    new_user,
    open_engine,
)

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture(autouse=True)
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The spans cueflow records during the test, through a tracer provider of this module's
    own: the process-wide one can be set only once, and the other tests run untraced."""
    monkeypatch.setattr(tracing, "_tracer", PROVIDER.get_tracer("cueflow"))
    monkeypatch.setattr(tracing, "_settled", True)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def named(spans: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    """The finished spans called ``name``."""
    return [s for s in spans.get_finished_spans() if s.name == name]


def trace_of(execution_id: str) -> int:
    """The trace id of an execution: its UUID."""
    return uuid.UUID(execution_id).int


def in_trace(found: Sequence[ReadableSpan], execution_id: str) -> bool:
    """Whether every span of ``found`` is in ``execution_id``'s trace and says so."""
    return bool(found) and all(
        s.context is not None
        and s.context.trace_id == trace_of(execution_id)
        and s.attributes is not None
        and s.attributes["cueflow.execution_id"] == execution_id
        for s in found
    )


async def worker_execution(client: httpx.AsyncClient, auth: dict[str, str], engine: Engine) -> str:
    """Create a worker cue due now, fire it; the execution's id."""
    clock = engine.clock
    body = {
        "name": f"job-{uuid.uuid4().hex[:8]}",
        "transport": "worker",
        "schedule": {"type": "once", "at": (clock.now() + timedelta(seconds=60)).isoformat()},
        "payload": {"task": "job"},
    }
    response = await client.post("/v1/cues", json=body, headers=auth)
    assert response.status_code == 201, response.text
    assert isinstance(clock, FakeClock)
    clock.advance(60)
    assert await engine.fire_due() == 1
    [execution] = await executions_of(client, auth, response.json()["id"])
    return str(execution["id"])


async def test_a_worker_execution_fire_claim_heartbeat_and_outcome_share_one_trace(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, spans: InMemorySpanExporter
) -> None:
    execution_id = await worker_execution(client, auth, engine)
    url = f"/v1/executions/{execution_id}"
    claimed = await client.post(f"{url}/claim", json={"worker_id": "w1"}, headers=auth)
    assert claimed.status_code == 200, claimed.text
    beat = await client.post(f"{url}/heartbeat", json={"worker_id": "w1"}, headers=auth)
    assert beat.status_code == 200, beat.text
    done = await client.post(f"{url}/outcome", json={"success": True}, headers=auth)
    assert done.status_code == 200, done.text

    stages = {n: named(spans, f"cueflow.{n}") for n in ("fire", "claim", "heartbeat", "outcome")}
    for stage, found in stages.items():
        assert len(found) == 1, stage
        assert in_trace(found, execution_id), stage
    [claim] = stages["claim"]
    assert claim.attributes is not None and claim.attributes["cueflow.worker_id"] == "w1"
    # the claim links to (a span of) the request that made it, in the request's own trace
    [request] = [s for s in server_spans(spans) if s.name.endswith("/claim")]
    assert request.context is not None
    assert [link.context.trace_id for link in claim.links] == [request.context.trace_id]
    assert request.context.trace_id != trace_of(execution_id)


async def test_claim_next_and_batch_outcomes_are_traced_per_execution(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, spans: InMemorySpanExporter
) -> None:
    first = await worker_execution(client, auth, engine)
    second = await worker_execution(client, auth, engine)
    claimed = await client.post("/v1/executions/claim", json={"worker_id": "w"}, headers=auth)
    assert claimed.status_code == 200, claimed.text
    batch = await client.post("/v1/executions/claims", json={"worker_id": "w"}, headers=auth)
    assert [c["execution_id"] for c in batch.json()["claimed"]] == [second]
    outcomes = [
        {"execution_id": first, "success": True},
        {"execution_id": second, "success": False, "error": "boom"},
        {"execution_id": first, "success": True},  # a second report: 409
    ]
    answer = await client.post("/v1/executions/outcomes", json={"outcomes": outcomes}, headers=auth)
    assert [r["status"] for r in answer.json()["results"]] == [200, 200, 409]

    for execution_id in (first, second):
        claims = [s for s in named(spans, "cueflow.claim") if in_trace([s], execution_id)]
        assert len(claims) == 1
    reported = named(spans, "cueflow.outcome")
    assert [s.context.trace_id for s in reported if s.context] == [
        trace_of(first),
        trace_of(second),
        trace_of(first),
    ]
    assert [s.status.status_code for s in reported] == [
        trace.StatusCode.UNSET,
        trace.StatusCode.UNSET,
        trace.StatusCode.ERROR,
    ]
    assert reported[2].attributes is not None
    assert reported[2].attributes["cueflow.error_code"] == "outcome_already_recorded"


async def test_a_webhook_delivery_sends_the_executions_traceparent(
    database_url: str, clock: FakeClock, spans: InMemorySpanExporter
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        headers = await new_user(client)
        cue = await create_cue(client, headers, clock, receiver.url())
        assert await fire(engine, clock) == 1
        [execution] = await executions_of(client, headers, cue["id"])

    [request] = receiver.requests
    match = TRACEPARENT.match(request.headers["traceparent"])
    assert match is not None, request.headers["traceparent"]
    assert int(match.group(1), 16) == trace_of(execution["id"])
    [deliver] = named(spans, "cueflow.deliver")
    assert in_trace([deliver], execution["id"])
    assert deliver.context is not None and int(match.group(2), 16) == deliver.context.span_id
    assert deliver.attributes is not None and deliver.attributes["cueflow.transport"] == "webhook"
    assert in_trace(named(spans, "cueflow.fire"), execution["id"])


def server_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    """The finished server spans (one per HTTP request)."""
    return [s for s in spans.get_finished_spans() if s.kind == trace.SpanKind.SERVER]


CALLER_TRACE, CALLER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACED = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}


def assert_parented_by_the_caller(parented: ReadableSpan, fresh: ReadableSpan) -> None:
    """``parented`` is the caller's span's child; ``fresh`` (a garbled traceparent) is not."""
    assert parented.context is not None and parented.parent is not None
    assert parented.context.trace_id == int(CALLER_TRACE, 16)
    assert parented.parent.span_id == int(CALLER_SPAN, 16)
    assert fresh.parent is None  # an invalid traceparent starts a trace of its own
    assert fresh.context is not None and fresh.context.trace_id != int(CALLER_TRACE, 16)


async def test_an_incoming_traceparent_parents_the_request_span(
    client: httpx.AsyncClient, auth: dict[str, str], spans: InMemorySpanExporter
) -> None:
    spans.clear()
    response = await client.get("/v1/cues", headers={**auth, **TRACED})
    assert response.status_code == 200
    untraced = await client.get("/v1/cues", headers={**auth, "traceparent": "00-garbage"})
    assert untraced.status_code == 200

    # one server span per request: cueflow's (FastAPI's own telemetry, on when a process-wide
    # tracer provider is set, would make it otherwise; see the next test)
    parented, fresh = server_spans(spans)
    assert_parented_by_the_caller(parented, fresh)
    assert parented.name == fresh.name == "GET /v1/cues"
    assert parented.attributes is not None
    assert parented.attributes["http.response.status_code"] == 200


async def test_a_server_span_made_outside_cueflow_stays_the_requests_span() -> None:
    # recent FastAPI versions (or an ASGI instrumentation) make the server span outside
    # cueflow's middleware: cueflow adds none
    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    inner = RequestContext(endpoint, Metrics())

    async def outer(scope: Any, receive: Any, send: Any) -> None:
        with PROVIDER.get_tracer("outside").start_as_current_span(
            "outside", kind=trace.SpanKind.SERVER
        ):
            await inner(scope, receive, send)

    transport = httpx.ASGITransport(app=outer)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
        assert (await c.post("/v1/executions/claim", headers=TRACED)).status_code == 204

    assert [s.name for s in server_spans(EXPORTER)] == ["outside"]


async def test_an_in_process_handler_run_and_its_log_lines_are_in_the_executions_trace(
    database_url: str, clock: FakeClock, spans: InMemorySpanExporter
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("tests.tracing.handler")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with opened(database_url, clock) as engine:

            @engine.handler("traced")
            async def traced(payload: dict[str, Any]) -> str:
                logger.info("handling")
                return "done"

            principal = await engine.account("app@example.com")
            cue = await due_cue(engine, principal, clock, "traced")
            assert await fire_inprocess(engine, clock) == 1
            execution = await only_execution(engine, principal, cue.id)
    finally:
        logger.removeHandler(handler)

    [run] = named(spans, "cueflow.handler")
    [deliver] = named(spans, "cueflow.deliver")
    assert run.context is not None and deliver.context is not None and run.parent is not None
    assert run.context.trace_id == trace_of(execution.id)
    assert run.parent.span_id == deliver.context.span_id
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert line["trace_id"] == uuid.UUID(execution.id).hex
    assert line["span_id"] == format(run.context.span_id, "016x")
    assert line["execution_id"] == execution.id


def test_log_lines_carry_trace_ids_only_while_a_span_is_current() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("text"))
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("tests.tracing.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    execution_id = str(uuid.uuid4())
    try:
        with tracing.execution_span("cueflow.test", execution_id):
            logger.info("inside")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    inside, outside = stream.getvalue().splitlines()
    assert f"trace_id={uuid.UUID(execution_id).hex} span_id=" in inside
    assert "trace_id" not in outside


async def test_metrics_have_the_process_and_python_series(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    for series in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert re.search(rf"^{series}[ {{]", text, re.MULTILINE), series
    assert "python_gc_collections_total" in text


WITHOUT_TRACING = """
import importlib
import logging
import sys

import cueflow.tracing as tracing
from cueflow import logs

if sys.argv[1] == "no-api":  # as if opentelemetry-api were not installed
    for name in [m for m in sys.modules if m.startswith("opentelemetry")]:
        sys.modules[name] = None
    importlib.reload(tracing)
    assert tracing.otel is None
else:  # installed, but no tracer provider set
    assert tracing.otel is not None
tracing.refresh()

assert not tracing.active()
with tracing.execution_span("cueflow.claim", "9b2f3c1e-8f0a-4c55-a1a8-0d6c1c1f2b3a") as span:
    assert span is None
with tracing.span("cueflow.handler", task="t") as span:
    assert span is None
tracing.failed(None, "boom")
tracing.finished("cueflow.claim", tracing.started(), iter(()))
headers = [("X-CueAPI-Attempt", "1")]
assert tracing.with_trace_headers(headers) is headers
incoming = [(b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
with tracing.request_span(incoming, "GET") as request:
    request.done("GET", "/v1/cues", 200)
record = logging.LogRecord("x", logging.INFO, "x.py", 1, "m", None, None)
logs.ContextFilter().filter(record)
assert record.trace_id is None and record.span_id is None
print("untraced")
"""


@pytest.mark.parametrize("mode", ["no-api", "no-provider"])
def test_without_the_api_or_a_tracer_provider_nothing_is_traced(mode: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TRACING, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "untraced"
