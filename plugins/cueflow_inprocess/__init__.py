"""The ``inprocess`` transport: each fire runs a Python function registered in this process.

Register handlers on the engine, by name::

    @engine.handler("send-report")
    def send_report(payload: dict) -> str:          # sync: runs in a thread pool
        ...

    @engine.handler("sync-crm")
    async def sync_crm(payload: dict, context: HandlerContext) -> dict:   # async: on the loop
        ...

A cue with ``"transport": "inprocess"`` runs the handler named by its ``payload["task"]`` (the
routing key workers use too, stored as the cue's ``task``), through the engine's push
dispatcher (:mod:`cueflow.dispatcher`):

* The handler receives the cue's payload, and a :class:`cueflow.HandlerContext` when it takes a
  second positional parameter without a default value.
* Returning is success: the execution becomes ``success`` with ``outcome.success = true`` and
  ``outcome.result`` the return value (a string as is, ``None`` as no result, anything else as
  JSON), cut to 2000 characters. For a flow step the return value itself, as JSON, is the
  step's output (``docs/flows.md``).
* Raising is a failed attempt: ``error_message`` is the exception's text and the cue's
  ``retry`` policy applies (``retrying``, then another run after ``backoff_minutes``); when
  ``retry.max_attempts`` runs are used up the execution is ``failed`` with ``outcome.error``,
  and ``on_failure`` applies as for webhooks (alert, optional pause).
* Timeout: a run longer than the cue's ``timeout_seconds`` (default and maximum
  ``CUEFLOW_HANDLER_TIMEOUT_SECONDS``, 300) is a failed attempt ``Handler timed out after N s``.
  An async handler is cancelled; a sync one cannot be stopped: its thread runs on, holding one
  of the pool's threads, and its result is ignored.
* At most ``CUEFLOW_HANDLER_CONCURRENCY`` (8) handler runs at once per process; sync handlers
  run in a thread pool of that size, never on the event loop.
* Delivery is at least once: if the process dies during a run, the attempt's lease runs out and
  the run is retried. Handlers should be idempotent on ``context.execution_id``.

Which processes run what: creating (or changing the task of) an ``inprocess`` cue needs a
``payload.task`` (422 otherwise). An engine that has handlers registered knows its handlers and
refuses a task none of them serves (422 ``no in-process handler named 'x' is registered``). An
engine with no handlers at all (say a REST-only node of a cluster whose other nodes hold the
handlers) accepts any task. Each process claims only executions whose task it has a handler
for; the others stay ``pending`` for a process that has one, and once one has been due for
twice ``CUEFLOW_DELIVERY_POLL_SECONDS`` (10 s) its ``error_message`` reads ``Waiting for a
process with in-process handler 'x'`` (its status stays ``pending``; the first run clears or
replaces the message). Nothing is dropped: they run as soon as such a process starts.
"""

from __future__ import annotations

from collections.abc import Callable

from cueflow.config import Settings
from cueflow.handler_context import HandlerContext
from cueflow.markers import hookimpl
from cueflow.transport import Transport
from cueflow_inprocess.transport import InProcessTransport

__all__ = ["HandlerContext", "InProcessTransport"]
# HandlerContext is defined in the core (``from cueflow import HandlerContext``); it is
# re-exported here for code written when it lived in this plugin.


@hookimpl
def cueflow_register_transports(register: Callable[[Transport], None], settings: Settings) -> None:
    """Register the ``inprocess`` transport."""
    register(InProcessTransport(settings))
