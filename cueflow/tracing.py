"""OpenTelemetry tracing behind one small seam: every OpenTelemetry call cueflow makes is here.

Tracing is on when the ``opentelemetry-api`` package is installed (``pip install
'cueflow[otel]'``) *and* the application set a tracer provider (the SDK's ``TracerProvider``,
in code or through ``opentelemetry-instrument``) before the engine opened (:func:`refresh`).
Otherwise each function below is a no-op that costs a check of one global: cueflow behaves
exactly as without tracing.

**One trace per execution.** An execution's trace id is its id: the execution id is a UUID, 128
bits, exactly the size of a W3C trace id, so ``5f0c...-...`` becomes trace ``5f0c...`` (dashes
dropped). Every span about an execution (fire, claim, heartbeat, outcome, push delivery, the
in-process handler run, the webhook's ``traceparent``) is a child of a parent span id derived
from the execution id too, which stands for the execution itself and is never exported. The
alternative, storing a trace context with the execution, costs a column (a migration) and a read
on every claim, heartbeat and outcome; deriving it costs nothing, needs no storage, and any node
(or anyone who knows an execution id) finds its trace. The span that was current when the work
started (an API request's span, whose parent may be the caller's ``traceparent``) is linked.

The execution context is marked sampled; to sample executions, use a trace-id-ratio sampler
(its decision is a function of the trace id, so all of an execution's spans agree).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from cueflow.version import __version__

try:
    from opentelemetry import trace as otel
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the otel extra is not installed: every function is a no-op
    otel = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Link, Span, Tracer

AttributeValue = str | bool | int | float
_NOTHING: AbstractContextManager[None] = nullcontext()
"""What the span functions give when not tracing (no span)."""
_tracer: Tracer | None = None
"""The cueflow tracer, once :func:`refresh` found a tracer provider that records."""
_settled = False
"""Whether a tracer provider was found: it never changes after that (it is set once)."""


def refresh() -> None:
    """Look for the application's tracer provider now: the engine does when it opens, so a
    provider set before that is used. The instrumented calls only read what this found, so
    that they cost next to nothing untraced."""
    global _tracer, _settled
    if _settled or otel is None:
        return
    provider = otel.get_tracer_provider()
    if isinstance(provider, otel.ProxyTracerProvider | otel.NoOpTracerProvider):
        return  # not set (yet)
    tracer = provider.get_tracer("cueflow", __version__)
    _tracer = None if isinstance(tracer, otel.NoOpTracer) else tracer  # OTEL_SDK_DISABLED
    _settled = True


def _get_tracer() -> Tracer | None:
    return _tracer


def active() -> bool:
    """Whether cueflow records spans (the API is installed and a tracer provider is set)."""
    return _get_tracer() is not None


def trace_id_of(execution_id: str) -> int:
    """The trace id of ``execution_id``'s trace: the UUID's 128 bits (a hash of any other
    string)."""
    try:
        return uuid.UUID(execution_id).int or 1
    except ValueError:
        return int.from_bytes(hashlib.sha256(execution_id.encode()).digest()[:16]) or 1


def _execution_context(execution_id: str) -> Context:
    trace_id = trace_id_of(execution_id)
    parent = otel.SpanContext(
        trace_id,
        (trace_id ^ (trace_id >> 64)) & 0xFFFF_FFFF_FFFF_FFFF or 1,
        is_remote=True,
        trace_flags=otel.TraceFlags(otel.TraceFlags.SAMPLED),
    )
    return otel.set_span_in_context(otel.NonRecordingSpan(parent))


def _links() -> list[Link]:
    """A link to the current span (an API request's, a scheduler batch's), if there is one."""
    current = otel.get_current_span().get_span_context()
    return [otel.Link(current)] if current.is_valid else []


def _attributes(
    execution_id: str, attributes: Mapping[str, AttributeValue | None]
) -> dict[str, AttributeValue]:
    found = {f"cueflow.{k}": v for k, v in attributes.items() if v is not None}
    found["cueflow.execution_id"] = execution_id
    return found


def execution_span(
    name: str, execution_id: str, **attributes: AttributeValue | None
) -> AbstractContextManager[Span | None]:
    """A span ``name`` in ``execution_id``'s trace, current for the block (log lines and the
    spans started inside belong to it); an exception leaving the block marks it failed.
    ``attributes`` become ``cueflow.<name>`` attributes (``None`` values are left out)."""
    tracer = _get_tracer()
    if tracer is None:
        return _NOTHING
    return tracer.start_as_current_span(
        name,
        context=_execution_context(execution_id),
        links=_links(),
        attributes=_attributes(execution_id, attributes),
    )


def span(name: str, **attributes: AttributeValue | None) -> AbstractContextManager[Span | None]:
    """A span ``name``, child of the current one, current for the block."""
    tracer = _get_tracer()
    if tracer is None:
        return _NOTHING
    found = {f"cueflow.{k}": v for k, v in attributes.items() if v is not None}
    return tracer.start_as_current_span(name, attributes=found)


def failed(recording: Span | None, error: str | None) -> None:
    """Mark the span of an :func:`execution_span` block (what ``with`` gave) failed with
    ``error``; nothing when not tracing."""
    if recording is not None:
        recording.set_status(otel.Status(otel.StatusCode.ERROR, (error or "")[:200]))


def started() -> int:
    """Now, for :func:`finished` (0 when not tracing: no clock read)."""
    return time.time_ns() if _get_tracer() is not None else 0


def finished(
    name: str,
    since: int,
    results: Iterable[tuple[str, object]],
    **attributes: AttributeValue | None,
) -> None:
    """Record a span ``name`` from ``since`` (:func:`started`) to now in the trace of each
    ``(execution_id, result)`` of ``results``, for work on executions known only at its end (a
    claim of the next due one, a batch): a ``result`` that is an exception marks its span
    failed, a mapping adds ``cueflow.<name>`` attributes to it. ``results`` is not read when
    not tracing."""
    tracer = _get_tracer()
    if tracer is None:
        return
    links = _links()
    end = time.time_ns()
    for execution_id, result in results:
        recorded = tracer.start_span(
            name,
            context=_execution_context(execution_id),
            links=links,
            attributes=_attributes(execution_id, attributes),
            start_time=since or end,
        )
        if isinstance(result, Mapping):
            recorded.set_attributes({f"cueflow.{k}": v for k, v in result.items()})
        elif isinstance(result, BaseException):
            code = getattr(result, "code", None)
            if isinstance(code, str):
                recorded.set_attribute("cueflow.error_code", code)
            recorded.set_status(otel.Status(otel.StatusCode.ERROR, str(result)[:200]))
        recorded.end(end_time=end)


class RequestSpan:
    """The span of one HTTP request: :meth:`done` names it after its route and sets its
    status."""

    def __init__(self, recording: Span | None = None) -> None:
        self.recording = recording

    def done(self, method: str, route: str, status: int) -> None:
        """Name the span ``METHOD route`` and record the response ``status``."""
        if self.recording is None:
            return
        self.recording.update_name(f"{method} {route}")
        self.recording.set_attribute("http.route", route)
        self.recording.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.recording.set_status(otel.Status(otel.StatusCode.ERROR))


_NO_REQUEST = RequestSpan()


def request_span(
    headers: Iterable[tuple[bytes, bytes]], method: str
) -> AbstractContextManager[RequestSpan]:
    """The server span of an HTTP request with these (ASGI) ``headers``, current for the
    block: a valid W3C ``traceparent`` (with its ``tracestate``) makes it the caller's span's
    child, else it starts a trace. When a span is current already (FastAPI's own telemetry,
    which recent FastAPI versions have, or an ASGI instrumentation outside cueflow's
    middleware made the request's server span), that span stays the request's: none is added.
    """
    tracer = _get_tracer()
    if tracer is None or otel.get_current_span().get_span_context().is_valid:
        return nullcontext(_NO_REQUEST)
    return _request_span(tracer, headers, method)


@contextmanager
def _request_span(
    tracer: Tracer, headers: Iterable[tuple[bytes, bytes]], method: str
) -> Iterator[RequestSpan]:
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }
    parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
    with tracer.start_as_current_span(
        method,
        context=parent,
        kind=otel.SpanKind.SERVER,
        attributes={"http.request.method": method},
    ) as recording:
        yield RequestSpan(recording)


def with_trace_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the current span's W3C ``traceparent`` (and ``tracestate``) in place of
    any of that name; unchanged when not tracing or no span is current."""
    if _get_tracer() is None:
        return headers
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if not carrier:
        return headers
    kept = [(k, v) for k, v in headers if k.lower() not in ("traceparent", "tracestate")]
    return kept + list(carrier.items())


def current_ids() -> tuple[str, str] | None:
    """The current span's trace id and span id (hex, as in ``traceparent``), if tracing and a
    span is current."""
    if _get_tracer() is None:
        return None
    current = otel.get_current_span().get_span_context()
    if not current.is_valid:
        return None
    return format(current.trace_id, "032x"), format(current.span_id, "016x")
