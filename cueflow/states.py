"""The execution state machine, written down once as data.

Every status change in cueflow is an :class:`Event` applied through this module: the engine asks
:func:`move` for the allowed source statuses and the target, and the store turns that into a
conditional ``UPDATE ... WHERE status IN (sources)``, so a transition the table does not allow
can never be written, however requests race.

Status names are CueAPI's (``pending``, ``delivering``, ``retrying``, ``retry_ready``,
``success``, ``failed``, ``missed``). A worker's claim is ``delivering`` with a lease.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Execution statuses, as on the wire."""

    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    RETRY_READY = "retry_ready"
    SUCCESS = "success"
    FAILED = "failed"
    MISSED = "missed"


class Event(StrEnum):
    """Things that happen to an execution."""

    CLAIM = "claim"
    """A worker claims it (pull transports) or a delivery starts (push transports)."""
    LEASE_EXPIRED = "lease_expired"
    """The claim's lease ran out (or its worker went stale), attempts left: back to the queue."""
    LEASE_EXHAUSTED = "lease_exhausted"
    """The lease ran out (or was released) and the cue's ``retry.max_attempts`` claims are used
    up."""
    RELEASED = "released"
    """The claiming worker gave the execution back unfinished (cueflow extension
    ``POST /v1/executions/{id}/release``), attempts left: back to the queue."""
    SUCCEEDED = "succeeded"
    """A worker reported success, or a push delivery was accepted."""
    FAILED = "failed"
    """A worker reported failure, or a push delivery failed for the last time."""
    RETRY_SCHEDULED = "retry_scheduled"
    """A push delivery failed with attempts left; ``next_retry`` holds when to try again."""
    RETRY_DUE = "retry_due"
    """A scheduled retry's time came."""
    UNCLAIMED = "unclaimed"
    """Nobody claimed a pull execution within the unclaimed timeout."""


TERMINAL = frozenset({Status.SUCCESS, Status.FAILED, Status.MISSED})
"""Statuses where delivery has ended: no claim, retry or lease event starts from them. Only a
late outcome report may still move a ``missed`` execution to ``success`` or ``failed``
(CueAPI accepts outcomes in any status); replay makes a new execution."""

_WAITING = frozenset({Status.PENDING, Status.RETRY_READY})

TRANSITIONS: dict[Event, tuple[frozenset[Status], Status]] = {
    Event.CLAIM: (_WAITING, Status.DELIVERING),
    Event.LEASE_EXPIRED: (frozenset({Status.DELIVERING}), Status.PENDING),
    Event.LEASE_EXHAUSTED: (frozenset({Status.DELIVERING}), Status.FAILED),
    Event.RELEASED: (frozenset({Status.DELIVERING}), Status.PENDING),
    Event.SUCCEEDED: (
        frozenset({Status.PENDING, Status.DELIVERING, Status.RETRY_READY, Status.MISSED}),
        Status.SUCCESS,
    ),
    Event.FAILED: (
        frozenset({Status.PENDING, Status.DELIVERING, Status.RETRY_READY, Status.MISSED}),
        Status.FAILED,
    ),
    Event.RETRY_SCHEDULED: (frozenset({Status.DELIVERING}), Status.RETRYING),
    Event.RETRY_DUE: (frozenset({Status.RETRYING}), Status.RETRY_READY),
    Event.UNCLAIMED: (frozenset({Status.PENDING}), Status.MISSED),
}
"""For each event: the statuses it may start from, and the status it leads to."""


@dataclass(frozen=True)
class Move:
    """A transition ready for a conditional update."""

    sources: tuple[str, ...]
    target: str


def move(event: Event, only: Iterable[Status] | None = None) -> Move:
    """The allowed sources and the target of ``event``; with ``only``, just those of its
    sources (a narrower query: one status lets an index hand out rows in order)."""
    sources, target = TRANSITIONS[event]
    if only is not None:
        narrowed = set(only)
        if not narrowed <= set(sources):
            raise ValueError(f"{event} cannot start from {sorted(narrowed - set(sources))}")
        sources = narrowed
    return Move(tuple(sorted(sources)), target.value)


def can(status: str, event: Event) -> bool:
    """Whether ``event`` may happen to an execution in ``status``."""
    return status in TRANSITIONS[event][0]


INITIAL = frozenset({Status.PENDING, Status.MISSED})
"""Statuses a new execution may be created in (``missed`` records a skipped run)."""
