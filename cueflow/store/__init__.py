"""The storage seam: what the engine asks of a store, and nothing about how.

A store plugin registers a factory for URL schemes (see :mod:`cueflow.hookspecs`). The factory
returns a :class:`Store`; all reads and writes happen inside :meth:`Store.tx`, a unit of work
whose methods are plain data operations, grouped by concept in one protocol each
(:class:`AccountStore`, :class:`ApiKeyStore`, :class:`CueStore`, :class:`ExecutionStore`,
:class:`ClaimStore`, :class:`DeliveryStore`, :class:`WorkerStore`, :class:`AlertStore`,
:class:`UsageStore`, :class:`EchoStore`, :class:`FlowStore`, :class:`LimitStore`,
:class:`IdempotencyStore`, :class:`RetentionStore`, :class:`StatsStore`; the modules of this
package).
Reads return the typed records of :mod:`cueflow.records`. Business rules (which status follows
which, when a lease is lost, how a schedule advances, whether a limit admits a run) stay in the
engine: it hands the store ready-made values and the state machine's allowed source statuses.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Protocol

from cueflow.store.accounts import AccountStore
from cueflow.store.alerts import AlertStore
from cueflow.store.api_keys import ApiKeyStore
from cueflow.store.claims import ClaimStore
from cueflow.store.cues import CueStore
from cueflow.store.deliveries import DeliveryStore
from cueflow.store.echo import EchoStore
from cueflow.store.executions import ExecutionStore
from cueflow.store.flows import FlowStore
from cueflow.store.idempotency import IdempotencyStore
from cueflow.store.limits import LimitStore
from cueflow.store.retention import RetentionStore
from cueflow.store.stats import StatsStore
from cueflow.store.usage import UsageStore
from cueflow.store.values import (
    CueRun,
    Duplicate,
    ExecutionFilter,
    ExecutionPage,
    ExecutionStats,
    FirePlan,
    PruneCut,
    ReportGate,
    StatsQuery,
)
from cueflow.store.workers import WorkerStore

if TYPE_CHECKING:
    from cueflow.pulse import Pulse

__all__ = [
    "AccountStore",
    "AlertStore",
    "ApiKeyStore",
    "ClaimStore",
    "CueRun",
    "CueStore",
    "DeliveryStore",
    "Duplicate",
    "EchoStore",
    "ExecutionFilter",
    "ExecutionPage",
    "ExecutionStats",
    "ExecutionStore",
    "FirePlan",
    "FlowStore",
    "IdempotencyStore",
    "LimitStore",
    "PruneCut",
    "ReportGate",
    "RetentionStore",
    "StatsQuery",
    "StatsStore",
    "Store",
    "StoreTx",
    "UsageStore",
    "WorkerStore",
    "lock_wait_limit",
]

lock_wait_limit: ContextVar[float | None] = ContextVar("cueflow_lock_wait_limit", default=None)
"""At most this many seconds a unit of work opened in the current context waits for a database
lock another process holds before raising :class:`cueflow.errors.DatabaseBusy` (``None``: the
store's own limit). ``/health`` sets it so it can answer at once; a store whose waits are
bounded otherwise may ignore it."""


class StoreTx(
    AccountStore,
    ApiKeyStore,
    CueStore,
    ExecutionStore,
    ClaimStore,
    DeliveryStore,
    WorkerStore,
    AlertStore,
    UsageStore,
    EchoStore,
    FlowStore,
    IdempotencyStore,
    LimitStore,
    RetentionStore,
    StatsStore,
    Protocol,
):
    """One unit of work: every concept's operations, each run in the enclosing transaction."""

    atomic: bool
    """Whether the unit of work is one transaction (``False``: a ``single_statement`` unit the
    store runs without one, each statement atomic by itself)."""


class Store(Protocol):
    """A storage backend, created by a store plugin's factory."""

    name: str
    """The backend's name (``sqlite``, ``postgresql`` ...)."""

    async def open(self) -> None:
        """Connect and bring the schema up to date (apply migrations)."""

    async def close(self) -> None:
        """Release connections."""

    def tx(self, *, single_statement: bool = False) -> AbstractAsyncContextManager[StoreTx]:
        """A unit of work: commits on normal exit, rolls back on an exception. Raises
        :class:`cueflow.errors.DatabaseBusy` when a lock held elsewhere keeps it from starting
        (or committing) within the store's limit (see :data:`lock_wait_limit`).

        ``single_statement``: the caller runs one statement (or only statements that need
        nothing of each other), so the store may leave the transaction out where each
        statement is atomic by itself (it then yields a unit whose ``atomic`` is false); hot
        paths use it to save the round trips of ``BEGIN`` and ``COMMIT``."""

    async def listen(self, callback: Callable[[], None], pulse: Pulse) -> None:
        """Call ``callback`` whenever another node reports a schedule change, until cancelled
        (the engine runs this as its ``listener`` loop). Keep a listening connection: when it
        is lost, reconnect with backoff and call ``callback`` once connected again (notices
        may have been missed meanwhile). Report on ``pulse``: ``busy()`` before connecting or
        checking that the connection is alive, ``idle()`` once that succeeded, so that a
        listener stuck on a dead connection is seen and restarted. A store with no other nodes
        to hear returns at once."""
