"""Executions: history, worker claims, outcomes, leases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)

from cueflow.sql.base import TxBase, _Dialectless, _lock, bound_values, value_params
from cueflow.sql.tables import (
    FIRE_KEY,
    FIRE_KEY_WHERE,
    cues,
    executions,
    workers,
)
from cueflow.states import Move, Status
from cueflow.store import ExecutionFilter, ExecutionPage, ReportGate, Row


def _not_held_back() -> Any:
    """A released worker execution waits out its retry delay (``next_retry``, bound ``now``)."""
    return or_(executions.c.next_retry.is_(None), executions.c.next_retry <= _at("p_now"))


def _at(name: str) -> Any:
    """A bound datetime parameter, typed like the execution timestamps."""
    return bindparam(name, type_=executions.c.scheduled_for.type)


def _claim_set(move: Move, values: dict[str, Any]) -> dict[str, Any]:
    """What a claim sets: the new status, one more attempt, and ``values`` (bound)."""
    return {
        "status": move.target,
        "attempts": executions.c.attempts + 1,
        **bound_values(executions, values),
    }


class ExecutionQueries(TxBase):
    """Executions: history, worker claims, outcomes, leases."""

    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution unless its fire key exists."""
        stmt = (
            self.connector.insert(executions)
            .values(**values)
            .on_conflict_do_nothing(index_elements=FIRE_KEY, index_where=FIRE_KEY_WHERE)
            .returning(executions.c.id)
        )
        return await self._one(stmt) is not None

    async def get_execution(self, user_id: str, execution_id: str) -> Row | None:
        """One of the user's executions."""
        stmt = self._prepared(
            ("get_execution",),
            lambda: select(executions).where(
                executions.c.id == bindparam("p_id"), executions.c.user_id == bindparam("p_user_id")
            ),
        )
        return await self._one(stmt, {"p_id": execution_id, "p_user_id": user_id})

    async def outcome_targets(self, user_id: str, execution_ids: Sequence[str]) -> list[Row]:
        """The user's executions among ``execution_ids``, each with its cue's
        ``cue_verification_mode`` and ``cue_schedule_type`` (any order; one statement)."""
        if not execution_ids:
            return []
        stmt = self._prepared(
            ("outcome_targets",),
            lambda: (
                select(
                    executions,
                    cues.c.verification_mode.label("cue_verification_mode"),
                    cues.c.schedule_type.label("cue_schedule_type"),
                )
                .select_from(executions.outerjoin(cues, cues.c.id == executions.c.cue_id))
                .where(executions.c.id.in_(bindparam("p_ids", expanding=True)))
            ),
        )
        # Looked up by primary key only, the owner checked here: with the owner in the WHERE
        # clause SQLite walks the owner's index over all of their executions instead.
        rows = await self._all(stmt, {"p_ids": list(execution_ids)})
        return [row for row in rows if row["user_id"] == user_id]

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A filtered page of executions, newest first."""
        conditions = [executions.c.user_id == user_id]
        if where.cue_id is not None:
            conditions.append(executions.c.cue_id == where.cue_id)
        if where.flow_run_id is not None:
            conditions.append(executions.c.flow_run_id == where.flow_run_id)
        if where.step_id is not None:
            conditions.append(executions.c.step_id == where.step_id)
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

        def build() -> Any:
            stmt = (
                select(
                    executions.c.id,
                    executions.c.cue_id,
                    executions.c.scheduled_for,
                    executions.c.attempts,
                    executions.c.payload_override,
                    cues.c.name.label("cue_name"),
                    cues.c.task,
                    cues.c.payload,
                )
                .join(cues, cues.c.id == executions.c.cue_id)
                .where(
                    executions.c.user_id == bindparam("p_user_id"),
                    executions.c.status.in_(bindparam("p_statuses", expanding=True)),
                    executions.c.transport.in_(bindparam("p_transports", expanding=True)),
                    executions.c.scheduled_for <= _at("p_now"),
                    _not_held_back(),
                )
            )
            if task is not None:
                stmt = stmt.where(cues.c.task == bindparam("p_task"))
            return stmt.order_by(executions.c.scheduled_for).limit(bindparam("p_limit"))

        params = {
            "p_user_id": user_id,
            "p_statuses": list(statuses),
            "p_transports": list(transports),
            "p_now": now,
            "p_limit": limit,
        }
        if task is not None:
            params["p_task"] = task
        return await self._all(self._prepared(("claimable", task is not None), build), params)

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

        def build() -> Any:
            waiting = self._waiting(move)
            if execution_id is not None:
                target = executions.c.id == bindparam("p_id")
            else:
                oldest = _lock(
                    select(executions.c.id)
                    .where(waiting)
                    .order_by(executions.c.scheduled_for)
                    .limit(1),
                    self.connector,
                ).scalar_subquery()
                target = executions.c.id == oldest
            return (
                update(executions)
                .where(target, waiting)
                .values(_claim_set(move, values))
                .returning(executions.c.id, executions.c.attempts, executions.c.cue_id)
            )

        key = ("claim", execution_id is None, move, *sorted(values))
        params = {**value_params(values), "p_user_id": user_id, "p_transports": list(transports)}
        params["p_now"] = now
        if execution_id is not None:
            params["p_id"] = execution_id
        return await self._one(self._prepared(key, build), params)

    def _waiting(self, move: Move, task: bool = False) -> Any:
        """Executions in ``move.sources`` of a user's pull transports, due by ``now`` (bound
        parameters ``user_id``, ``transports``, ``now`` and, with ``task``, ``task``)."""
        waiting = and_(
            executions.c.user_id == bindparam("p_user_id"),
            executions.c.status.in_(move.sources),
            executions.c.transport.in_(bindparam("p_transports", expanding=True)),
            executions.c.scheduled_for <= _at("p_now"),
            _not_held_back(),
        )
        if task:
            waiting = and_(
                waiting,
                select(literal(1))
                .where(cues.c.id == executions.c.cue_id, cues.c.task == bindparam("p_task"))
                .exists(),
            )
        return waiting

    async def claim_many(
        self,
        user_id: str,
        transports: Sequence[str],
        execution_ids: Sequence[str] | None,
        limit: int,
        task: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> list[Row]:
        """Atomically claim the given due executions, or up to ``limit`` of the oldest."""

        def build() -> Any:
            waiting = self._waiting(move, task is not None)
            if execution_ids is not None:
                target = and_(executions.c.id.in_(bindparam("p_ids", expanding=True)), waiting)
            else:
                # A materialized CTE: PostgreSQL would otherwise re-run a ``LIMIT ... SKIP
                # LOCKED`` subquery per candidate row and hand out more than ``limit``.
                oldest = _lock(
                    select(executions.c.id)
                    .where(waiting)
                    .order_by(executions.c.scheduled_for)
                    .limit(bindparam("p_limit")),
                    self.connector,
                ).cte("oldest")
                if self.connector.skip_locked:
                    oldest = oldest.prefix_with("MATERIALIZED")
                # The picked rows are locked (PostgreSQL) or the transaction is the only
                # writer (SQLite): they are updated by primary key with no condition repeated,
                # which would lead SQLite to walk the whole due queue instead.
                target = executions.c.id.in_(select(oldest.c.id))
            return (
                update(executions)
                .where(target)
                .values(_claim_set(move, values))
                .returning(
                    executions.c.id,
                    executions.c.cue_id,
                    executions.c.scheduled_for,
                    executions.c.attempts,
                    executions.c.payload_override,
                )
            )

        key = ("claim_many", execution_ids is None, task is not None, move, *sorted(values))
        params = {**value_params(values), "p_user_id": user_id, "p_transports": list(transports)}
        params["p_now"] = now
        if execution_ids is not None:
            params["p_ids"] = list(execution_ids)
        else:
            params["p_limit"] = limit
        if task is not None:
            params["p_task"] = task
        claimed = await self._all(self._prepared(key, build), params)
        if not claimed:
            return []
        details_stmt = self._prepared(
            ("claim_details",),
            lambda: select(cues.c.id, cues.c.name, cues.c.task, cues.c.payload).where(
                cues.c.id.in_(bindparam("p_ids", expanding=True))
            ),
        )
        cue_ids = list({row["cue_id"] for row in claimed})
        details = {row["id"]: row for row in await self._all(details_stmt, {"p_ids": cue_ids})}
        rows = []
        for row in sorted(claimed, key=lambda r: r["scheduled_for"]):
            cue = details.get(row["cue_id"])
            rows.append(
                {
                    **row,
                    "cue_name": cue["name"] if cue else None,
                    "task": cue["task"] if cue else None,
                    "payload": cue["payload"] if cue else None,
                }
            )
        return rows

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

    async def record_outcomes(
        self,
        user_id: str,
        execution_ids: Sequence[str],
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
    ) -> list[Row]:
        """Write the same outcome on several executions, each only once."""

        def build() -> Any:
            conditions = [
                executions.c.id.in_(bindparam("p_ids", expanding=True)),
                executions.c.user_id == bindparam("p_user_id"),
                executions.c.outcome_recorded_at.is_(None),
            ]
            if gate is not None:
                conditions.append(
                    or_(
                        executions.c.status.in_(bindparam("p_open", expanding=True)),
                        executions.c.claimed_by_worker.is_(None),
                        and_(
                            executions.c.status.in_(bindparam("p_held", expanding=True)),
                            executions.c.claimed_by_worker == bindparam("p_holder"),
                        ),
                    )
                )
            new_values = bound_values(executions, values)
            if move is not None:
                new_values["status"] = case(
                    (executions.c.status.in_(move.sources), literal(move.target)),
                    else_=executions.c.status,
                )
            return (
                update(executions).where(*conditions).values(**new_values).returning(*executions.c)
            )

        key = ("record_outcomes", move, gate is not None, *sorted(values))
        params = {**value_params(values), "p_ids": list(execution_ids), "p_user_id": user_id}
        if gate is not None:
            params.update(p_holder=gate.worker_id, p_open=list(gate.open), p_held=list(gate.held))
        return await self._all(self._prepared(key, build), params)

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
                executions.c.status == Status.DELIVERING.value,
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
                executions.c.status == Status.PENDING.value,
                executions.c.transport.in_(list(transports)),
                executions.c.scheduled_for <= before,
                executions.c.updated_at <= before,
                or_(executions.c.next_retry.is_(None), executions.c.next_retry <= before),
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
                    executions.c.status.in_([Status.SUCCESS.value, Status.FAILED.value]),
                    executions.c.outcome_recorded_at.is_not(None),
                ),
            )
            .order_by(executions.c.created_at.desc(), executions.c.id.desc())
            .limit(limit)
        )
        return await self._all(stmt)
