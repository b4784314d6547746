"""Statistics: bounded aggregates over an account's recent executions, for the dashboard's
overview (``GET /v1/stats/overview``), and the change marks its live stream reads
(``GET /v1/events/stream``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cueflow.records import Execution
from cueflow.store.values import ExecutionStats, StatsQuery


class StatsStore(Protocol):
    """Statistics (see the module)."""

    async def execution_stats(self, user_id: str, query: StatsQuery) -> ExecutionStats:
        """Counts by time bucket and status, delay histograms by time bucket, and the queue
        now, of the user's executions (:class:`~cueflow.store.values.ExecutionStats`). Every
        statement aggregates in the database and returns at most one row per bucket and
        status, whatever the number of executions."""

    async def changed_executions(
        self, user_id: str, created_after: datetime, updated_after: datetime, limit: int
    ) -> list[Execution]:
        """At most ``limit`` of the user's executions created after ``created_after`` and
        updated after ``updated_after``, least recently updated first (the dashboard's live
        stream reads the changes since its last look)."""

    async def cues_mark(self, user_id: str) -> tuple[int, datetime | None]:
        """How many cues the user has and when the latest of them changed: a change of either
        means the cue list changed."""
