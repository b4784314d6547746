"""Push deliveries: the dispatcher's candidates, batch claims, due retries and wake-up times."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from cueflow.records import DeliveryCandidate, DueDelivery, UnservedDelivery
from cueflow.states import Move


class DeliveryStore(Protocol):
    """Push deliveries: the dispatcher's candidates, batch claims, due retries and wake-up times."""

    async def promote_retries(
        self, transports: Sequence[str], move: Move, now: datetime, values: dict[str, Any]
    ) -> int:
        """Move every execution of ``transports`` in ``move.sources`` whose ``next_retry`` is at
        or before ``now`` to ``move.target`` and set ``values``; returns how many moved."""

    async def due_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        per_account: int,
        tasks: Collection[str] | None = None,
        skip_accounts: Collection[str] = (),
    ) -> list[DeliveryCandidate]:
        """Candidates for :meth:`claim_deliveries`, shared fairly between accounts: of the due
        executions (``scheduled_for <= now``) of ``transport`` in ``move.sources`` (with
        ``tasks``, only those whose cue's ``task`` is one of them) whose ``user_id`` is not in
        ``skip_accounts`` and whose limits have room at ``now``, each account's ``per_account``
        first (higher priority first, then oldest), and of those at most ``limit``, taken
        round-robin (every account's first, then every account's second ...), with their
        stamped limits. Rows other nodes hold are skipped; on a store that can, the rows returned
        stay locked until the transaction ends. Nothing is changed."""

    async def claim_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        values: dict[str, Any],
        tasks: Collection[str] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[DueDelivery]:
        """Atomically move up to ``limit`` due executions (``scheduled_for <= now``) of
        ``transport`` from ``move.sources`` to ``move.target``, higher priority first, then
        oldest, skipping rows other
        nodes hold; with ``tasks``, only executions whose cue's ``task`` is one of them; with
        ``ids``, only those executions (typically chosen from :meth:`due_deliveries`).
        ``attempts`` grows by one, ``started_at`` becomes ``now`` when empty and ``values`` are
        set (limits are not checked here: the dispatcher admits ``ids`` first). Returns the
        claimed executions, oldest first, each with what its delivery needs."""

    async def next_delivery_due(
        self,
        transports: Sequence[str],
        tasks: Mapping[str, Collection[str]] | None = None,
        skip_accounts: Collection[str] = (),
        now: datetime | None = None,
    ) -> datetime | None:
        """The earliest time an execution of ``transports`` needs the dispatcher: a pending
        execution's ``scheduled_for``, a retrying one's ``next_retry`` or a delivering one's
        ``lease_expires_at``. For a transport named in ``tasks``, pending executions count only
        when their cue's ``task`` is among its tasks; pending executions of ``skip_accounts``
        do not count; with ``now``, neither do pending executions whose concurrency or rate
        limit has no room at ``now``."""

    async def unserved_deliveries(
        self, transport: str, tasks: Collection[str], before: datetime, limit: int
    ) -> list[UnservedDelivery]:
        """Up to ``limit`` pending executions of ``transport`` due before ``before`` whose cue's
        ``task`` is not in ``tasks`` (or is empty) and whose ``error_message`` is empty, with
        their cue's ``task``."""
