"""What a transport is to the engine.

A transport decides how an execution reaches whoever runs it. A *pull* transport (``worker``)
leaves executions in the queue for workers to claim over the API; the engine handles claims,
leases and outcomes for every pull transport alike. A *push* transport (``webhook``,
``inprocess``) is handed each due execution by the engine's dispatcher (:mod:`cueflow.dispatcher`)
and answers with a :class:`DeliveryResult`; the dispatcher records it, retries and escalates.
Transports never change an execution's status themselves.

Optional capabilities are declared, not guessed: a transport that has one satisfies its
``runtime_checkable`` protocol here (:class:`ConcurrencyBound`, :class:`TaskRouter`,
:class:`HandlerHost`, :class:`CallbackSender`), and the sender of failure notices
(:class:`Notifier`) is registered through the ``cueflow_register_notifiers`` hook.
:func:`conforms` asks, remembering the answer per transport.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from cueflow.clock import Clock
    from cueflow.config import Settings
    from cueflow.store import Store


class TransportServices(Protocol):
    """What :meth:`Transport.start` receives: the engine's :class:`cueflow.services.Services`
    (its store, clock and settings), never the engine itself."""

    @property
    def settings(self) -> Settings: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> Store: ...


@dataclass(frozen=True)
class Callback:
    """Where and how to send a cue's deliveries: the cue's ``callback`` and its owner's signing
    secret. Only a :class:`CallbackSender` (the webhook transport) receives it."""

    url: str
    method: str
    headers: Mapping[str, str]
    signing_secret: str
    """The cue owner's webhook secret, read when the attempt was claimed."""
    previous_signing_secret: str | None = None
    """The secret the owner's last rotation replaced, while its overlap window lasts: the
    delivery is signed with it too, so receivers holding either secret accept it."""


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand an execution to a push transport, with what that transport needs to
    send it (and nothing another transport needs: see :attr:`callback`)."""

    execution_id: str
    cue_id: str
    cue_name: str
    user_id: str
    scheduled_for: datetime
    attempt: int
    """1-based number of this attempt."""
    payload: dict[str, Any]
    """The cue's payload as it is now (retries send the current payload)."""
    task: str | None = None
    """The cue's ``task`` (its ``payload["task"]``): what the work is, for routing."""
    timeout_seconds: int | None = None
    """The cue's ``timeout_seconds``, if it set one."""
    callback: Callback | None = None
    """The cue's callback with the signing secret, for a :class:`CallbackSender` whose cue has a
    ``callback.url``; ``None`` for every other transport."""


@dataclass(frozen=True)
class DeliveryResult:
    """How an attempt went. A failure is retried per the cue's ``retry`` policy."""

    ok: bool
    http_status: int | None = None
    error: str | None = None
    """The execution's ``error_message`` for a failed attempt."""
    result: str | None = None
    """What the work returned, for a successful attempt whose result is an outcome."""
    is_outcome: bool = False
    """``True`` when the transport did the work itself (the in-process transport runs a handler),
    so this attempt's result is also the execution's outcome: the dispatcher records
    ``outcome.success`` and ``outcome.result`` on success, or ``outcome.error`` when the last
    attempt fails, in the transaction that changes the status. Outcomes stay write-once: one
    reported earlier through the API is kept. ``False`` (webhooks): delivery only."""
    output: Any = None
    """The receiver's JSON answer to an accepted delivery (webhooks): a flow step's output."""


@dataclass(frozen=True)
class Notice:
    """A signed JSON message to a URL outside any cue's delivery: the ``cue.failed`` alert sent
    to ``on_failure.webhook`` or to the user's alert webhook."""

    url: str
    body: dict[str, Any]
    secret: str
    """Signing key (the user's alert webhook secret)."""
    headers: dict[str, str] = field(default_factory=dict)


class Transport(Protocol):
    """A delivery method, registered by a plugin under ``name``."""

    name: str
    """The value of a cue's ``transport`` field that selects this transport."""
    pull: bool
    """``True`` when workers claim executions through the API; ``False`` for a
    :class:`PushTransport`."""

    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """Check a cue about to be created or changed (its store values; ``previous`` holds the
        stored ones when it is a change); raise a :class:`cueflow.errors.CueflowError` to
        refuse it."""

    async def start(self, services: TransportServices) -> None:
        """Called when the engine starts, with the engine's services (store, clock,
        settings)."""

    async def stop(self) -> None:
        """Called when the engine stops or closes (also if it never started); idempotent."""


class PushTransport(Transport, Protocol):
    """A transport the engine hands each due execution to (``pull = False``).

    The dispatcher claims a due execution with a lease of ``lease_seconds`` (its ``attempts``
    grows by one), calls :meth:`deliver` outside any store transaction and records the result.
    If the process dies before the result is recorded, the lease runs out and the attempt counts
    as failed: delivery is at least once.

    Optional capabilities: :class:`ConcurrencyBound`, :class:`TaskRouter`,
    :class:`HandlerHost`, :class:`CallbackSender`.
    """

    lease_seconds: float
    """Longest one :meth:`deliver` call may take, plus a safety margin."""

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Send one attempt and report how it went. Expected failures (refused, timed out,
        non-2xx) are results, not exceptions; an exception also counts as a failed attempt."""


@runtime_checkable
class ConcurrencyBound(Protocol):
    """A push transport with its own bound: at most :attr:`concurrency` of its deliveries in
    flight at once in this process. The dispatcher then claims no more than that, so no claimed
    execution waits for a free slot while its lease runs (``delivery_concurrency`` bounds all
    push transports together)."""

    concurrency: int


@runtime_checkable
class TaskRouter(Protocol):
    """A push transport that can deliver only some tasks in this process (the in-process
    transport: the tasks it has handlers for). The dispatcher claims only executions whose cue's
    ``task`` is in :attr:`tasks`, leaving the others ``pending`` for a process that serves them,
    and once such an execution has waited past the grace period it sets its ``error_message``
    to :meth:`waiting_message` (once, without a status change)."""

    tasks: Collection[str]
    """The cue tasks this process can deliver."""

    def waiting_message(self, task: str | None) -> str:
        """The ``error_message`` of an execution of ``task`` nobody here can deliver."""
        ...


@runtime_checkable
class HandlerHost(Protocol):
    """A transport that runs Python functions registered in this process.
    :meth:`cueflow.engine.Engine.handler` registers them with the first registered transport
    that is a ``HandlerHost`` (the in-process transport)."""

    def add_handler(self, name: str, function: Callable[..., Any]) -> None:
        """Run ``function`` for cues whose ``task`` is ``name``; a name registers once."""
        ...


@runtime_checkable
class CallbackSender(Protocol):
    """A push transport that sends each delivery to its cue's ``callback``: only its
    deliveries carry :attr:`Delivery.callback` (URL, method, headers and the owner's signing
    secret). It declares so with ``sends_callbacks = True``."""

    sends_callbacks: Literal[True]


@runtime_checkable
class Notifier(Protocol):
    """Sends :class:`Notice` messages (failure alerts) and vets their URLs. Registered through
    the ``cueflow_register_notifiers`` hook (the webhook plugin registers its transport)."""

    async def notify(self, notice: Notice) -> DeliveryResult:
        """Send one notice, once (no retries)."""
        ...

    async def check_url(self, url: str) -> None:
        """Refuse a URL that notices may not be sent to (an account's alert webhook) with a
        :class:`ValueError` whose text says why."""
        ...


_capabilities: weakref.WeakKeyDictionary[Any, dict[type, bool]] = weakref.WeakKeyDictionary()


def conforms(transport: object, capability: type) -> bool:
    """``isinstance(transport, capability)`` for one of the protocols above, remembered per
    transport object: the dispatcher asks on every pass and every delivery, and a protocol
    check inspects each member (several microseconds). A transport's capabilities are its
    class's and attributes set when it is built, so the answer does not change."""
    try:
        known = _capabilities.setdefault(transport, {})
    except TypeError:  # not weakly referenceable: ask each time
        return isinstance(transport, capability)
    found = known.get(capability)
    if found is None:
        found = known[capability] = isinstance(transport, capability)
    return found


class PullTransport:
    """Base for transports whose executions wait for workers to claim them."""

    pull = True

    def __init__(self, name: str) -> None:
        self.name = name

    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """Any cue can be pulled."""

    async def start(self, services: TransportServices) -> None:
        """Nothing to start: the engine serves claims."""

    async def stop(self) -> None:
        """Nothing to stop."""
