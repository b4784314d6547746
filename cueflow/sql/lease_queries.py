"""Worker leases: lease extensions, and the claims and pending executions the sweeper finds
overdue."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, bindparam, func, literal, not_, or_, select, update

import cueflow.sql.rows as rows
from cueflow.records import ExpiredLease, UnclaimedRun
from cueflow.sql.base import TxBase, _lock
from cueflow.sql.limit_queries import key_active_since
from cueflow.sql.queue import at, one_of
from cueflow.sql.tables import cues, executions, workers
from cueflow.states import Status


class LeaseQueries(TxBase):
    """Worker leases."""

    async def extend_worker_leases(
        self, user_id: str, worker_id: str, transports: Sequence[str], until: datetime
    ) -> int:
        """Extend the leases of a worker's claims."""
        stmt = (
            update(executions)
            .where(
                executions.c.user_id == user_id,
                executions.c.claimed_by_worker == worker_id,
                executions.c.status == Status.DELIVERING.value,
                executions.c.transport.in_(list(transports)),
                executions.c.lease_expires_at < until,
            )
            .values(lease_expires_at=until)
        )
        return int((await self.conn.execute(stmt)).rowcount)

    async def expired_leases(
        self, now: datetime, stale_before: datetime, transports: Sequence[str], limit: int
    ) -> list[ExpiredLease]:
        """Claims whose lease ended or whose worker went silent (the statement is built once
        per list of transports: the dispatcher runs it on every pass)."""

        def build() -> Any:
            stale_before_at = at("p_stale_before")
            stale_worker = (
                select(literal(1))
                .where(
                    workers.c.user_id == executions.c.user_id,
                    workers.c.worker_id == executions.c.claimed_by_worker,
                    workers.c.last_heartbeat < stale_before_at,
                )
                .exists()
            )
            return _lock(
                select(
                    executions.c.id,
                    executions.c.cue_id,
                    executions.c.user_id,
                    executions.c.attempts,
                    executions.c.claimed_by_worker,
                    executions.c.lease_expires_at,
                    cues.c.name.label("cue_name"),
                    cues.c.retry_max_attempts,
                    cues.c.retry_backoff_minutes,
                    cues.c.schedule_type,
                    cues.c.on_failure,
                )
                .join(cues, cues.c.id == executions.c.cue_id)
                .where(
                    executions.c.status == Status.DELIVERING.value,
                    one_of(executions.c.transport, list(transports)),
                    or_(
                        executions.c.lease_expires_at <= at("p_now"),
                        and_(
                            stale_worker,
                            func.coalesce(executions.c.last_heartbeat_at, executions.c.claimed_at)
                            < stale_before_at,
                        ),
                    ),
                )
                .limit(bindparam("p_limit", type_=Integer())),
                self.connector,
                [cues, executions],  # the tables the join reads
            )

        stmt = self._prepared(("expired_leases", *transports), build)
        params = {"p_now": now, "p_stale_before": stale_before, "p_limit": limit}
        return await self._records(rows.expired_lease, stmt, params)

    async def unclaimed(
        self, before: datetime, transports: Sequence[str], limit: int
    ) -> list[UnclaimedRun]:
        """Pending executions nobody claimed in time."""
        stmt = _lock(
            select(executions.c.id, executions.c.cue_id, cues.c.schedule_type, cues.c.on_failure)
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == Status.PENDING.value,
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= before,
                executions.c.updated_at <= before,
                or_(executions.c.next_retry.is_(None), executions.c.next_retry <= before),
                not_(key_active_since(before)),
            )
            .limit(limit),
            self.connector,
        )
        return await self._records(rows.unclaimed_run, stmt)
