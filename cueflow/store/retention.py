"""History retention: deleting what has ended long ago, in bounded batches.

Each method deletes at most ``limit`` rows of its kind in the enclosing transaction and returns
how many it deleted, so a caller repeats it in short transactions until it returns less than
``limit``. Which rows may go (the cut-off times, how many finished runs of a cue to keep) is
the engine's decision (:mod:`cueflow.retention`); the store only applies it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cueflow.store.values import PruneCut


class RetentionStore(Protocol):
    """Deleting old history (see the module)."""

    async def try_lock_retention(self) -> bool:
        """Take the cluster-wide retention lock until the transaction ends, without waiting:
        ``False`` when another transaction (another node) holds it. A store with one writer
        at a time answers ``True``."""

    async def prune_executions(self, cut: PruneCut, limit: int) -> int:
        """Delete up to ``limit`` executions that are not flow steps, in ``cut.statuses``, last
        changed before ``cut.before``, unless one of the ``cut.keep_latest`` newest finished
        runs of their cue (by fire time); skip rows another transaction has locked."""

    async def prune_flow_runs(self, cut: PruneCut, limit: int) -> tuple[int, int, int]:
        """For some flow runs in ``cut.run_statuses`` that finished before ``cut.before`` and
        have no execution outside ``cut.statuses``: delete up to ``limit`` rows in all, their
        executions first, then their steps, then the runs themselves once nothing of them is
        left. Returns ``(runs, steps, executions)`` deleted."""

    async def prune_alerts(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` alerts created before ``before``."""

    async def prune_fire_keys(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` fire idempotency keys created before ``before``."""

    async def prune_rate_starts(self, now: datetime, limit: int) -> int:
        """Delete up to ``limit`` rate-limit starts that expired at or before ``now``."""

    async def retention_counts(
        self, cut: PruneCut, alerts_before: datetime, keys_before: datetime, now: datetime
    ) -> dict[str, int]:
        """What the prune methods would delete, by kind: ``executions`` (flow steps'
        included), ``flow_runs``, ``flow_steps``, ``alerts``, ``fire_keys`` and
        ``rate_limit_starts``."""
