"""The in-process transport: a registry of handlers by name, and bounded, timed runs of them.

Async handlers run on the event loop; sync ones in a thread pool of ``handler_concurrency``
threads (with the caller's context variables, as :func:`asyncio.to_thread` does). A semaphore of
the same size bounds the runs in flight, and ``concurrency`` tells the dispatcher to claim no
more than that, so a claimed execution never waits for a slot while its lease runs. The lease
(``handler_timeout_seconds`` plus the delivery lease margin) covers the longest run a cue may
ask for, because a cue's ``timeout_seconds`` can shorten the timeout but not lengthen it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

import cueflow.tracing as tracing
from cueflow.config import Settings
from cueflow.errors import CueValidationError
from cueflow.handler_context import HandlerContext
from cueflow.transport import Delivery, DeliveryResult, TransportServices

log = logging.getLogger(__name__)

MAX_TEXT = 2000
"""Longest ``result`` or error text kept (outcome texts are cut to this)."""
MAX_TASK = 255


@dataclass(frozen=True)
class _Handler:
    function: Callable[..., Any]
    is_async: bool
    wants_context: bool


def _is_async(function: Callable[..., Any]) -> bool:
    # An object whose class has ``async def __call__`` is async too.
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        type(function).__call__
    )


def _wants_context(function: Callable[..., Any]) -> bool:
    """Whether ``function`` takes a second positional argument that has no default (or
    ``*args``): it then receives a :class:`HandlerContext` after the payload."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False
    required = [
        p
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(required) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def _text(value: str) -> str:
    """Storable text: no NUL characters (PostgreSQL refuses them), at most ``MAX_TEXT``."""
    return value.replace("\x00", "")[:MAX_TEXT]


def result_text(value: Any) -> str | None:
    """A handler's return value as ``outcome.result``: a string as is, ``None`` as no result,
    anything else as JSON (values JSON cannot encode as their ``str``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return _text(value)
    try:
        return _text(json.dumps(value, default=str, ensure_ascii=False))
    except (TypeError, ValueError):
        return _text(str(value))


def output_value(value: Any) -> Any:
    """A handler's return value as a flow step's ``output``: the value as JSON (a dict stays a
    dict), values JSON cannot encode as their ``str``, as in :func:`result_text`."""
    try:
        return orjson.loads(orjson.dumps(value, default=str))
    except TypeError:  # orjson.JSONEncodeError: a key that is not a string, a cycle ...
        return result_text(value)


def error_text(exc: BaseException) -> str:
    """A handler's exception as ``error_message``: its text, or its type when it has none."""
    return _text(str(exc) or type(exc).__name__)


class InProcessTransport:
    """Runs the handler named by each cue's ``task`` with the cue's payload."""

    name = "inprocess"
    pull = False

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.handler_timeout_seconds
        """Default and longest run of a handler, in seconds."""
        self.concurrency = settings.handler_concurrency
        """Most handler runs at once in this process."""
        self.lease_seconds = self.timeout + settings.delivery_lease_margin_seconds
        self._handlers: dict[str, _Handler] = {}
        self._slots = asyncio.Semaphore(self.concurrency)
        self._pool: ThreadPoolExecutor | None = None

    # handlers ----------------------------------------------------------------------------------
    @property
    def tasks(self) -> frozenset[str]:
        """The names of the registered handlers: the tasks this process delivers."""
        return frozenset(self._handlers)

    def add_handler(self, name: str, function: Callable[..., Any]) -> None:
        """Run ``function`` for cues whose ``task`` is ``name`` (see :mod:`cueflow_inprocess`).
        Raises ``ValueError`` for an empty, over-long or already registered name."""
        if not isinstance(name, str) or not name or len(name) > MAX_TASK:
            raise ValueError(f"a handler name is a string of 1 to {MAX_TASK} characters")
        if name in self._handlers:
            raise ValueError(f"an in-process handler named {name!r} is already registered")
        if not callable(function):
            raise TypeError(f"the in-process handler {name!r} is not callable")
        self._handlers[name] = _Handler(function, _is_async(function), _wants_context(function))

    def waiting_message(self, task: str | None) -> str:
        """The ``error_message`` of an execution no handler here can run."""
        return f"Waiting for a process with in-process handler '{task}'"

    # cue validation ----------------------------------------------------------------------------
    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """An ``inprocess`` cue needs a ``payload.task`` (422). When this process has handlers,
        the task must name one of them (422); with none registered any task is accepted (other
        processes may hold the handlers). ``timeout_seconds`` may not exceed
        ``CUEFLOW_HANDLER_TIMEOUT_SECONDS`` (422). On a change only fields that changed are
        checked again, so a cue whose handler went away can still be paused or deleted."""
        task = cue.get("task")
        if not task:
            raise CueValidationError(
                "body: Value error, payload.task (the name of a handler, a string of at most "
                f"{MAX_TASK} characters) is required for inprocess transport"
            )
        changed = previous is None or task != previous.get("task")
        if changed and self._handlers and task not in self._handlers:
            raise CueValidationError(
                f"body: Value error, no in-process handler named '{task}' is registered"
            )
        timeout = cue.get("timeout_seconds")
        if (
            timeout is not None
            and timeout > self.timeout
            and (previous is None or timeout != previous.get("timeout_seconds"))
        ):
            raise CueValidationError(
                f"body.timeout_seconds: Value error, timeout_seconds must be at most "
                f"{self.timeout} (CUEFLOW_HANDLER_TIMEOUT_SECONDS)"
            )

    # lifecycle ---------------------------------------------------------------------------------
    async def start(self, services: TransportServices) -> None:
        """Nothing to start: the thread pool starts with the first sync run."""

    async def stop(self) -> None:
        """Shut the thread pool down without waiting: a sync handler still running cannot be
        interrupted, and its attempt is retried after its lease (at least once)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # running -----------------------------------------------------------------------------------
    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Run the handler of ``delivery.task`` with the payload, within the cue's timeout;
        its return value or exception is the outcome."""
        task = delivery.task or ""
        handler = self._handlers.get(task)
        if handler is None:
            return DeliveryResult(
                ok=False, error=f"No in-process handler named '{task}' is registered here"
            )
        timeout = min(delivery.timeout_seconds or self.timeout, self.timeout)
        args: tuple[Any, ...] = (delivery.payload,)
        if handler.wants_context:
            args += (_context(delivery, task),)
        async with self._slots:
            deadline = asyncio.timeout(timeout)
            try:
                async with deadline:
                    with tracing.span("cueflow.handler", task=task):
                        value = await self._call(handler, args)
            except TimeoutError as exc:
                if not deadline.expired():
                    return self._failed(task, delivery, exc)
                return DeliveryResult(
                    ok=False, error=f"Handler timed out after {timeout} s", is_outcome=True
                )
            except Exception as exc:
                return self._failed(task, delivery, exc)
        return DeliveryResult(
            ok=True, result=result_text(value), is_outcome=True, output=output_value(value)
        )

    async def _call(self, handler: _Handler, args: tuple[Any, ...]) -> Any:
        if handler.is_async:
            return await handler.function(*args)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="cueflow-handler")
        call = functools.partial(contextvars.copy_context().run, handler.function, *args)
        value = await asyncio.get_running_loop().run_in_executor(self._pool, call)
        if inspect.isawaitable(value):  # a plain function that returned a coroutine
            value = await value
        return value

    @staticmethod
    def _failed(task: str, delivery: Delivery, exc: Exception) -> DeliveryResult:
        log.warning(
            "in-process handler %r failed on execution %s (attempt %d)",
            task,
            delivery.execution_id,
            delivery.attempt,
            exc_info=exc,
        )
        return DeliveryResult(ok=False, error=error_text(exc), is_outcome=True)


def _context(delivery: Delivery, task: str) -> HandlerContext:
    return HandlerContext(
        execution_id=delivery.execution_id,
        cue_id=delivery.cue_id,
        cue_name=delivery.cue_name,
        task=task,
        scheduled_for=delivery.scheduled_for,
        attempt=delivery.attempt,
    )
