"""Worker claims and leases (pull transports): what waits for a worker, atomic claims, lease
extensions, and what the sweeper finds overdue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from cueflow.records import ExpiredLease, LimitedRun, QueuedRun, UnclaimedRun
from cueflow.states import Move


class ClaimStore(Protocol):
    """Worker claims and leases (pull transports) (see the module)."""

    async def claimable(
        self,
        user_id: str,
        transports: Sequence[str],
        statuses: Sequence[str],
        now: datetime,
        task: str | None,
        limit: int,
    ) -> list[QueuedRun]:
        """The user's executions waiting for a worker (due, in ``statuses``, with room under
        their limits), higher priority first, oldest first within a priority, with their cue's
        name, task and payload."""

    async def claim_candidates(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_ids: Sequence[str] | None,
        limit: int,
        task: str | None,
        move: Move,
        now: datetime,
    ) -> list[LimitedRun]:
        """Executions a claim may take, locked until the transaction ends (rows another
        transaction holds are skipped), higher priority first, oldest first within a priority:
        the due ones among ``execution_ids`` in ``move.sources``; or, without ids, up to
        ``limit`` of them (whose cue's ``task`` is ``task`` when given), leaving out those whose
        concurrency or rate limit has no room as the transaction sees it."""

    async def claim_due(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_ids: Sequence[str] | None,
        limit: int,
        task: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> list[QueuedRun | LimitedRun]:
        """Pick as :meth:`claim_candidates` does and, in the same step, claim the picks that
        carry no concurrency or rate limit key (as :meth:`claim_many` does, each as a
        :class:`QueuedRun`); the picks that carry one come back as :class:`LimitedRun`, still
        locked, for admission. A store that enforces concurrency limits itself, atomically
        across writers (PostgreSQL's counted keys), may also claim picks that carry only a
        concurrency key, within the key's room and in queue order. In queue order; a pick that
        could not be claimed is left out."""

    async def claim_many(
        self, execution_ids: Sequence[str], move: Move, values: dict[str, Any]
    ) -> list[QueuedRun]:
        """Move the given executions, picked by :meth:`claim_candidates` or
        :meth:`claim_due` in this transaction, from ``move.sources`` to ``move.target`` and set
        ``values`` (``attempts`` grows by one); in the order of ``execution_ids``, each with its
        cue's name, task and payload. Executions not in ``move.sources`` are simply absent."""

    async def extend_worker_leases(
        self, user_id: str, worker_id: str, transports: Sequence[str], until: datetime
    ) -> int:
        """Move the lease end of every execution the worker holds to ``until``."""

    async def expired_leases(
        self, now: datetime, stale_before: datetime, transports: Sequence[str], limit: int
    ) -> list[ExpiredLease]:
        """Claimed executions whose lease ended, or whose registered worker's heartbeat and own
        last execution heartbeat (or claim) are both older than ``stale_before``; locked, with
        their cue's name, retry policy, schedule type and failure policy."""

    async def unclaimed(
        self, before: datetime, transports: Sequence[str], limit: int
    ) -> list[UnclaimedRun]:
        """Pending executions of ``transports`` due and waiting since before ``before``, locked;
        not those whose concurrency or rate limit key saw work since ``before`` (a run of the
        key in flight or claimed since, a rate-limit start since): they wait for their limit,
        not for a worker."""
