"""Logging: readable lines by default, JSON lines when asked, request and execution ids on every
record, and secrets redacted from whatever is written.

:func:`configure` installs one handler on the root logger (``cueflow serve`` calls it, and
routes uvicorn's access and error logs through it too). Two context variables carry the ids:

* ``request_id`` (and ``client_request_id``): set by the request-context middleware
  (:mod:`cueflow.api.observability`) for the duration of an HTTP request: the fresh UUID the
  response carries in ``X-Request-Id``, and the caller's own ``X-Request-ID`` if it sent one;
  every record logged while serving the request carries them (the access log line too).
* ``execution_id`` / ``cue_id`` / ``flow_run_id``: bound with :func:`bind_execution` where work
  on one execution runs (the push-delivery task, hence also in-process handlers and their own
  log calls); ``flow_run_id`` when the execution is a flow step's. Code may also pass them per
  call: ``log.info("...", extra={"flow_run_id": ...})`` (the flow hand-off does, on the lines
  about a run and its steps).
* ``trace_id`` / ``span_id``: the current OpenTelemetry span's (:mod:`cueflow.tracing`), when
  tracing is on and a span is current (in an execution's work, its trace is the execution's).

Redaction is the last step of formatting, so it covers messages, arguments, exceptions and
tracebacks alike: API keys (``cue_sk_...``), webhook secrets (``whsec_...``), bearer tokens and
``Authorization`` header values never reach the output, whatever a log call passed.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

import cueflow.tracing as tracing

LogFormat = Literal["text", "json"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cueflow_request_id", default=None
)
"""The id of the HTTP request being served (the response's ``X-Request-Id``), if any."""
client_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "cueflow_client_request_id", default=None
)
"""The ``X-Request-ID`` the caller of the request being served sent, if any."""
_execution: contextvars.ContextVar[tuple[str, str | None, str | None] | None] = (
    contextvars.ContextVar("cueflow_execution", default=None)
)

CONTEXT_FIELDS = (
    "request_id",
    "client_request_id",
    "execution_id",
    "cue_id",
    "flow_run_id",
    "trace_id",
    "span_id",
)
"""Record attributes added to every record (``None`` when unknown)."""

_SECRETS = re.compile(
    r"(?P<key>\b(?:cue_sk|whsec)_)[A-Za-z0-9_\-]+"
    r"|(?P<header>\bauthorization\b[\"']?\s*[:=,]\s*[\"']?)(?:[A-Za-z]+\s+)?[^\s\"'\\,;}\]]+"
    r"|(?P<scheme>\bbearer\s+)[^\s\"'\\,;}\]]+",
    re.IGNORECASE,
)
REDACTED = "[REDACTED]"
_HANDLER_NAME = "cueflow"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
_CHATTY_LOGGERS = ("httpx", "httpcore")


def redact(text: str) -> str:
    """``text`` with API keys, webhook secrets, bearer tokens and ``Authorization`` values
    replaced by ``[REDACTED]`` (the ``cue_sk_`` / ``whsec_`` prefix is kept, as a hint)."""
    return _SECRETS.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    prefix = match.group("key") or match.group("header") or match.group("scheme") or ""
    return prefix + REDACTED


def bind_execution(
    execution_id: str, cue_id: str | None = None, flow_run_id: str | None = None
) -> None:
    """Tag the records logged from here on in the current context (an asyncio task, or what it
    starts) with ``execution_id``, ``cue_id`` and, for a flow step's execution,
    ``flow_run_id``. Call it at the start of a task that works on one execution: a task's
    context is its own, so the binding ends with it."""
    _execution.set((execution_id, cue_id, flow_run_id))


class ContextFilter(logging.Filter):
    """Adds ``request_id``, ``client_request_id``, ``execution_id``, ``cue_id``,
    ``flow_run_id`` and, when tracing with OpenTelemetry and a span is current, ``trace_id`` and
    ``span_id`` from the context to each record (values passed with ``extra=`` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill in the context fields; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "client_request_id", None) is None:
            record.client_request_id = client_request_id.get()
        bound = _execution.get()
        if getattr(record, "execution_id", None) is None:
            record.execution_id = bound[0] if bound else None
        if getattr(record, "cue_id", None) is None:
            record.cue_id = bound[1] if bound else None
        if getattr(record, "flow_run_id", None) is None:
            record.flow_run_id = bound[2] if bound else None
        if getattr(record, "trace_id", None) is None:
            traced = tracing.current_ids()
            record.trace_id, record.span_id = traced if traced else (None, None)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``timestamp`` (UTC), ``level``, ``logger``, ``message``, the
    context fields that are known, ``exception`` (the traceback) when there is one, and for
    uvicorn's access log ``client``, ``method``, ``path``, ``http_version`` and ``status``;
    ``pid`` (the process id) when made with ``pid=True``."""

    def __init__(self, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        """The record as one redacted JSON line."""
        document: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.pid:
            document["pid"] = record.process
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                document[name] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            document.update(_access_fields(record.args))
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        # Redact the values, not the encoded line, so the line stays valid JSON.
        clean = {k: redact(v) if isinstance(v, str) else v for k, v in document.items()}
        return json.dumps(clean, ensure_ascii=False, default=str)


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    if len(args) != 5:
        return {}
    client, method, path, version, status = args
    return {
        "client": client,
        "method": method,
        "path": path,
        "http_version": version,
        "status": status,
    }


class TextFormatter(logging.Formatter):
    """Readable lines: ``2026-01-05T12:00:00.000Z INFO cueflow.dispatcher [request_id=...
    execution_id=...] message``, then the traceback, if any; with ``pid=True`` the context
    starts with ``pid=`` (the process id)."""

    def __init__(self, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        """The record as redacted text."""
        context = " ".join(
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        )
        if self.pid:
            context = f"pid={record.process} {context}".rstrip()
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}"
        if context:
            line += f" [{context}]"
        line += f" {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return redact(line)


def formatter(log_format: LogFormat, pid: bool = False) -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``); ``pid``: each record names the
    process that logged it (``cueflow serve --workers``)."""
    if log_format == "json":
        return JsonFormatter(pid)
    if log_format == "text":
        return TextFormatter(pid)
    raise ValueError(f"log format must be 'text' or 'json', not {log_format!r}")


def configure(
    log_format: LogFormat = "text",
    level: str | int = "INFO",
    stream: IO[str] | None = None,
    *,
    pid: bool = False,
) -> logging.Handler:
    """Send every log record (cueflow's, uvicorn's, the libraries') to ``stream`` (default
    stderr) in ``log_format``, from ``level`` up; ``pid``: each line names the process that
    logged it. Calling it again replaces the handler it installed before; handlers others
    installed are left alone. Returns the handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter(log_format, pid))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for previous in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # httpx logs every request at INFO, the full webhook URL included (some carry tokens); the
    # metrics count deliveries, so those lines only show at DEBUG.
    quiet = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    return handler
