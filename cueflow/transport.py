"""What a transport is to the engine.

A transport decides how an execution reaches whoever runs it. A *pull* transport (``worker``)
leaves executions in the queue for workers to claim over the API; the engine handles claims,
leases and outcomes for every pull transport alike. A *push* transport (``webhook``) is handed
each due execution by the engine's dispatcher (:mod:`cueflow.delivery`) and answers with a
:class:`DeliveryResult`; the dispatcher records it, retries and escalates. Transports never
change an execution's status themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cueflow.engine import Engine


@dataclass(frozen=True)
class Delivery:
    """One attempt to hand an execution to a push transport, with what it needs to send it."""

    execution_id: str
    cue_id: str
    cue_name: str
    user_id: str
    scheduled_for: datetime
    attempt: int
    """1-based number of this attempt."""
    payload: dict[str, Any]
    """The cue's payload as it is now (retries send the current payload)."""
    callback_url: str | None
    callback_method: str
    callback_headers: dict[str, str]
    signing_secret: str
    """The cue owner's webhook secret, read when the attempt was claimed."""


@dataclass(frozen=True)
class DeliveryResult:
    """How an attempt went. A failure is retried per the cue's ``retry`` policy."""

    ok: bool
    http_status: int | None = None
    error: str | None = None
    """The execution's ``error_message`` for a failed attempt."""


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

    async def start(self, engine: Engine) -> None:
        """Called when the engine starts."""

    async def stop(self) -> None:
        """Called when the engine stops or closes (also if it never started); idempotent."""


class PushTransport(Transport, Protocol):
    """A transport the engine hands each due execution to (``pull = False``).

    The dispatcher claims a due execution with a lease of ``lease_seconds`` (its ``attempts``
    grows by one), calls :meth:`deliver` outside any store transaction and records the result.
    If the process dies before the result is recorded, the lease runs out and the attempt counts
    as failed: delivery is at least once.
    """

    lease_seconds: float
    """Longest one :meth:`deliver` call may take, plus a safety margin."""

    async def deliver(self, delivery: Delivery) -> DeliveryResult:
        """Send one attempt and report how it went. Expected failures (refused, timed out,
        non-2xx) are results, not exceptions; an exception also counts as a failed attempt."""


class Notifier(Protocol):
    """A transport that can also send :class:`Notice` messages (failure alerts). The engine uses
    the first registered transport that has a ``notify`` method."""

    async def notify(self, notice: Notice) -> DeliveryResult:
        """Send one notice, once (no retries)."""


class PullTransport:
    """Base for transports whose executions wait for workers to claim them."""

    pull = True

    def __init__(self, name: str) -> None:
        self.name = name

    async def validate_cue(
        self, cue: Mapping[str, Any], previous: Mapping[str, Any] | None = None
    ) -> None:
        """Any cue can be pulled."""

    async def start(self, engine: Engine) -> None:
        """Nothing to start: the engine serves claims."""

    async def stop(self) -> None:
        """Nothing to stop."""
