"""Usage and queue figures: what plan limits, usage reports and ``/health`` count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    and_,
    func,
    select,
)

from cueflow.sql.base import TxBase, _count_if
from cueflow.sql.tables import (
    cues,
    executions,
)
from cueflow.states import LIVE_CUE_STATUSES, TERMINAL, CueStatus, Status


class UsageQueries(TxBase):
    """Usage and queue figures."""

    async def count_cues(self, user_id: str, statuses: Sequence[str]) -> int:
        """How many of the user's cues are in ``statuses``."""
        stmt = select(func.count()).where(
            cues.c.user_id == user_id,
            cues.c.status.in_(list(statuses)),
            cues.c.flow_id.is_(None),
        )
        return int((await self.conn.execute(stmt)).scalar_one())

    async def usage_counts(self, user_id: str, since: datetime) -> dict[str, int]:
        """Cue and this-period execution figures of one user."""
        by_status = (
            select(cues.c.status, func.count())
            .where(
                cues.c.user_id == user_id,
                cues.c.status.in_(sorted(LIVE_CUE_STATUSES)),
                cues.c.flow_id.is_(None),
            )
            .group_by(cues.c.status)
        )
        cue_counts = {row[0]: int(row[1]) for row in await self.conn.execute(by_status)}
        reported = executions.c.outcome_recorded_at.is_not(None)
        unreported = executions.c.outcome_recorded_at.is_(None)
        figures = {
            "executions": executions.c.status != Status.MISSED.value,
            "reported": reported,
            "succeeded": and_(reported, executions.c.outcome_success.is_(True)),
            "failed": and_(reported, executions.c.outcome_success.is_(False)),
            "failed_unreported": and_(
                unreported, executions.c.status.in_([Status.FAILED.value, Status.MISSED.value])
            ),
        }
        stmt = select(
            *(_count_if(condition).label(name) for name, condition in figures.items())
        ).where(executions.c.user_id == user_id, executions.c.created_at >= since)
        row = (await self.conn.execute(stmt)).mappings().one()
        return {
            "active_cues": cue_counts.get(CueStatus.ACTIVE, 0),
            "paused_cues": cue_counts.get(CueStatus.PAUSED, 0),
            **{name: int(row[name] or 0) for name in figures},
        }

    async def due_users_executions(self, now: datetime, since: datetime) -> dict[str, int]:
        """This-period execution counts of the users owning due cues."""
        due_users = select(cues.c.user_id).where(
            cues.c.status == CueStatus.ACTIVE.value,
            cues.c.next_run.is_not(None),
            cues.c.next_run <= now,
        )
        stmt = (
            select(executions.c.user_id, func.count())
            .where(
                executions.c.user_id.in_(due_users),
                executions.c.created_at >= since,
                executions.c.status != Status.MISSED.value,
            )
            .group_by(executions.c.user_id)
        )
        return {row[0]: int(row[1]) for row in await self.conn.execute(stmt)}

    async def queue_counts(
        self, push: Sequence[str], pull: Sequence[str], stale_before: datetime
    ) -> dict[str, int]:
        """Queue depth over all users."""
        status = executions.c.status
        figures = {
            "pending_outbox": and_(
                status == Status.PENDING.value, executions.c.transport.in_(list(push))
            ),
            "stale_executions": and_(
                status == Status.DELIVERING.value, executions.c.updated_at < stale_before
            ),
            "pending_retries": status.in_([Status.RETRYING.value, Status.RETRY_READY.value]),
            "pending_worker_claims": and_(
                status == Status.PENDING.value, executions.c.transport.in_(list(pull))
            ),
        }
        queued = sorted(s.value for s in set(Status) - TERMINAL)
        stmt = select(
            *(_count_if(condition).label(name) for name, condition in figures.items())
        ).where(status.in_(queued))
        row = (await self.conn.execute(stmt)).mappings().one()
        return {name: int(row[name] or 0) for name in figures}
