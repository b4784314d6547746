"""Workers, alerts, usage figures and echo messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    select,
    update,
)

from cueflow.sql.base import TxBase, _count_if
from cueflow.sql.tables import (
    alerts,
    cues,
    echo_messages,
    executions,
    workers,
)
from cueflow.states import LIVE_CUE_STATUSES, TERMINAL, CueStatus, Status
from cueflow.store import Row


class RegistryQueries(TxBase):
    """Workers, alerts, usage figures and echo messages."""

    async def upsert_worker(
        self, user_id: str, worker_id: str, handlers: list[str] | None, now: datetime
    ) -> None:
        """Create or refresh a worker row."""
        import uuid

        stmt = self.connector.insert(workers).values(
            id=str(uuid.uuid4()),
            user_id=user_id,
            worker_id=worker_id,
            handlers=handlers,
            last_heartbeat=now,
            created_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "worker_id"],
            set_={
                "handlers": stmt.excluded.handlers,
                "last_heartbeat": stmt.excluded.last_heartbeat,
            },
        )
        await self.conn.execute(stmt)

    async def list_workers(self, user_id: str) -> list[Row]:
        """The user's workers."""
        return await self._all(
            select(workers)
            .where(workers.c.user_id == user_id)
            .order_by(workers.c.last_heartbeat.desc())
        )

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

    async def delete_worker(self, user_id: str, worker_id: str) -> bool:
        """Forget a worker."""
        result = await self.conn.execute(
            workers.delete().where(workers.c.user_id == user_id, workers.c.worker_id == worker_id)
        )
        return bool(result.rowcount)

    async def count_live_workers(self, user_id: str, since: datetime) -> int:
        """Workers heard from since ``since``."""
        stmt = self._prepared(
            ("count_live_workers",),
            lambda: select(func.count()).where(
                workers.c.user_id == bindparam("p_user_id"),
                workers.c.last_heartbeat
                >= bindparam("p_since", type_=workers.c.last_heartbeat.type),
            ),
        )
        params = {"p_user_id": user_id, "p_since": since}
        return int((await self.conn.execute(stmt, params)).scalar_one())

    async def insert_alert(self, values: dict[str, Any]) -> None:
        """Insert an alert."""
        await self.conn.execute(alerts.insert().values(**values))

    async def list_alerts(
        self,
        user_id: str,
        alert_type: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Row], int]:
        """A page of the user's alerts, newest first."""
        stmt = select(alerts).where(alerts.c.user_id == user_id)
        if alert_type is not None:
            stmt = stmt.where(alerts.c.alert_type == alert_type)
        if since is not None:
            stmt = stmt.where(alerts.c.created_at >= since)
        total = await self._count(stmt)
        page = stmt.order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
        return await self._all(page.limit(limit).offset(offset)), total

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

    async def alert_exists(
        self,
        user_id: str,
        alert_type: str,
        execution_id: str | None,
        cue_id: str | None,
        since: datetime,
    ) -> bool:
        """Whether a matching alert was created after ``since``."""
        stmt = select(alerts.c.id).where(
            alerts.c.user_id == user_id,
            alerts.c.alert_type == alert_type,
            alerts.c.created_at > since,
        )
        if execution_id is not None:
            stmt = stmt.where(alerts.c.execution_id == execution_id)
        elif cue_id is not None:
            stmt = stmt.where(alerts.c.cue_id == cue_id)
        return await self._one(stmt.limit(1)) is not None

    async def put_echo(self, values: dict[str, Any]) -> None:
        """Store or replace an echo message."""
        stmt = self.connector.insert(echo_messages).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["token"],
            set_={k: getattr(stmt.excluded, k) for k in values if k != "token"},
        )
        await self.conn.execute(stmt)

    async def get_echo(self, token: str, now: datetime) -> Row | None:
        """A live echo message."""
        stmt = select(echo_messages).where(
            echo_messages.c.token == token, echo_messages.c.expires_at >= now
        )
        return await self._one(stmt)

    async def forget_echoes(self, now: datetime) -> None:
        """Drop expired echo messages."""
        await self.conn.execute(echo_messages.delete().where(echo_messages.c.expires_at < now))

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
