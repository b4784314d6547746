"""Usage and queue figures: what plan limits, usage reports and ``/health`` count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class UsageStore(Protocol):
    """Usage and queue figures: what plan limits, usage reports and ``/health`` count."""

    async def count_cues(self, user_id: str, statuses: Sequence[str]) -> int:
        """How many of the user's cues are in ``statuses``."""

    async def usage_counts(self, user_id: str, since: datetime) -> dict[str, int]:
        """The user's figures for a usage report: ``active_cues``, ``paused_cues``, and over
        executions created at or after ``since``: ``executions`` (not ``missed``),
        ``reported`` (outcomes), ``succeeded`` / ``failed`` (reported outcomes) and
        ``failed_unreported`` (no outcome, status ``failed`` or ``missed``)."""

    async def due_users_executions(self, now: datetime, since: datetime) -> dict[str, int]:
        """For each user owning an active cue due at ``now``: how many of their executions
        created at or after ``since`` are not ``missed`` (users with none are left out)."""

    async def queue_counts(
        self, push: Sequence[str], pull: Sequence[str], stale_before: datetime
    ) -> dict[str, int]:
        """Queue depth over all users: ``pending_outbox`` (pending executions of ``push``
        transports), ``stale_executions`` (delivering, unchanged since before
        ``stale_before``), ``pending_retries`` (retrying or retry_ready) and
        ``pending_worker_claims`` (pending executions of ``pull`` transports)."""
