"""Executions: history, worker claims, outcomes, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

from cueflow.sql.base import TxBase, _Dialectless, _lock
from cueflow.sql.tables import (
    cues,
    executions,
    workers,
)
from cueflow.states import Move
from cueflow.store import ExecutionFilter, ExecutionPage, Row


class ExecutionQueries(TxBase):
    """Executions: history, worker claims, outcomes, leases."""

    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution unless its fire key exists."""
        stmt = (
            self.connector.insert(executions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["cue_id", "scheduled_for"])
            .returning(executions.c.id)
        )
        return await self._one(stmt) is not None

    async def get_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions."""
        return await self._one(
            select(executions).where(
                executions.c.id == execution_id, executions.c.user_id == user_id
            )
        )

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A filtered page of executions, newest first."""
        conditions = [executions.c.user_id == user_id]
        if where.cue_id is not None:
            conditions.append(executions.c.cue_id == where.cue_id)
        if where.statuses is not None:
            conditions.append(executions.c.status.in_(list(where.statuses)))
        if where.worker_id is not None:
            conditions.append(executions.c.claimed_by_worker == where.worker_id)
        if where.outcome_state is not None:
            conditions.append(executions.c.outcome_state == where.outcome_state)
        summary = select(func.count(), func.min(executions.c.claimed_at)).where(*conditions)
        total, oldest = (await self.conn.execute(summary)).one()
        page = (
            select(executions)
            .where(*conditions)
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        if isinstance(oldest, str | datetime):
            oldest = executions.c.claimed_at.type.process_result_value(
                datetime.fromisoformat(oldest) if isinstance(oldest, str) else oldest, _Dialectless
            )
        return ExecutionPage(await self._all(page), int(total), oldest)

    async def cue_executions(
        self, user_id: str, cue_id: str, limit: int, offset: int
    ) -> tuple[list[Row], int]:
        """A page of one cue's executions."""
        stmt = select(executions).where(
            executions.c.user_id == user_id, executions.c.cue_id == cue_id
        )
        total = await self._count(stmt)
        page = stmt.order_by(executions.c.created_at.desc(), executions.c.id.desc())
        return await self._all(page.limit(limit).offset(offset)), total

    async def claimable(
        self,
        user_id: str,
        transports: Sequence[str],
        statuses: Sequence[str],
        now: datetime,
        task: str | None,
        limit: int,
    ) -> list[Row]:
        """Executions waiting for a worker, oldest first."""
        stmt = (
            select(
                executions.c.id,
                executions.c.cue_id,
                executions.c.scheduled_for,
                executions.c.attempts,
                cues.c.name.label("cue_name"),
                cues.c.task,
                cues.c.payload,
            )
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.user_id == user_id,
                executions.c.status.in_(list(statuses)),
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= now,
            )
        )
        if task is not None:
            stmt = stmt.where(cues.c.task == task)
        return await self._all(stmt.order_by(executions.c.scheduled_for).limit(limit))

    async def claim(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_id: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> Row | None:
        """Atomically claim one due execution."""
        waiting = and_(
            executions.c.user_id == user_id,
            executions.c.status.in_(move.sources),
            executions.c.transport.in_(list(transports)),
            executions.c.scheduled_for <= now,
        )
        if execution_id is not None:
            target = executions.c.id == execution_id
        else:
            oldest = _lock(
                select(executions.c.id)
                .where(waiting)
                .order_by(executions.c.scheduled_for)
                .limit(1),
                self.connector,
            ).scalar_subquery()
            target = executions.c.id == oldest
        stmt = (
            update(executions)
            .where(target, waiting)
            .values(status=move.target, attempts=executions.c.attempts + 1, **values)
            .returning(executions.c.id, executions.c.attempts, executions.c.cue_id)
        )
        return await self._one(stmt)

    async def update_execution(
        self,
        execution_id: str,
        values: dict[str, Any],
        *,
        move: Move | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Row | None:
        """Conditionally update one execution."""
        conditions = [executions.c.id == execution_id]
        if move is not None:
            conditions.append(executions.c.status.in_(move.sources))
            values = {**values, "status": move.target}
        for column, value in (expect or {}).items():
            col = executions.c[column]
            conditions.append(col.is_(None) if value is None else col == value)
        stmt = update(executions).where(*conditions).values(**values).returning(*executions.c)
        return await self._one(stmt)

    async def record_outcome(
        self,
        user_id: str,
        execution_id: str,
        values: dict[str, Any],
        move: Move | None,
        holder: str | None,
    ) -> Row | None:
        """Write an outcome once."""
        conditions = [
            executions.c.id == execution_id,
            executions.c.user_id == user_id,
            executions.c.outcome_recorded_at.is_(None),
        ]
        if holder is not None:
            conditions.append(
                or_(
                    executions.c.status != "delivering",
                    executions.c.claimed_by_worker.is_(None),
                    executions.c.claimed_by_worker == holder,
                )
            )
        if move is not None:
            values = {
                **values,
                "status": case(
                    (executions.c.status.in_(move.sources), literal(move.target)),
                    else_=executions.c.status,
                ),
            }
        stmt = update(executions).where(*conditions).values(**values).returning(*executions.c)
        return await self._one(stmt)

    async def expired_leases(
        self, now: datetime, stale_before: datetime, transports: Sequence[str], limit: int
    ) -> list[Row]:
        """Claims whose lease ended or whose worker went silent."""
        stale_worker = (
            select(literal(1))
            .where(
                workers.c.user_id == executions.c.user_id,
                workers.c.worker_id == executions.c.claimed_by_worker,
                workers.c.last_heartbeat < stale_before,
            )
            .exists()
        )
        stmt = _lock(
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
                executions.c.status == "delivering",
                executions.c.transport.in_(list(transports)),
                or_(
                    executions.c.lease_expires_at <= now,
                    and_(
                        stale_worker,
                        func.coalesce(executions.c.last_heartbeat_at, executions.c.claimed_at)
                        < stale_before,
                    ),
                ),
            )
            .limit(limit),
            self.connector,
        )
        return await self._all(stmt)

    async def unclaimed(self, before: datetime, transports: Sequence[str], limit: int) -> list[Row]:
        """Pending executions nobody claimed in time."""
        stmt = _lock(
            select(executions.c.id, executions.c.cue_id, cues.c.schedule_type, cues.c.on_failure)
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == "pending",
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= before,
                executions.c.updated_at <= before,
            )
            .limit(limit),
            self.connector,
        )
        return await self._all(stmt)

    async def lock_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions, locked."""
        stmt = select(executions).where(
            executions.c.id == execution_id, executions.c.user_id == user_id
        )
        return await self._one(stmt.with_for_update())

    async def finished_runs(self, cue_id: str, limit: int) -> list[Row]:
        """A cue's latest finished or reported executions, newest first."""
        stmt = (
            select(executions.c.id, executions.c.status, executions.c.outcome_success)
            .where(
                executions.c.cue_id == cue_id,
                or_(
                    executions.c.status.in_(["success", "failed"]),
                    executions.c.outcome_recorded_at.is_not(None),
                ),
            )
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
        )
        return await self._all(stmt)
