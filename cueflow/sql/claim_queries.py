"""Worker claims: what waits for a worker and atomic claims (leases are
:mod:`cueflow.sql.lease_queries`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)

import cueflow.sql.rows as rows
from cueflow.records import LimitedRun, QueuedRun
from cueflow.sql.base import TxBase, _lock, bound_values, value_params
from cueflow.sql.limit_queries import within_limits
from cueflow.sql.queue import (
    LIMITED,
    QUEUE_ORDER,
    at,
    not_held_back,
    one_of,
    pull_transport,
    transport_params,
)
from cueflow.sql.tables import (
    cues,
    executions,
)
from cueflow.states import Move, Status


def _picked(move: Move) -> Any:
    """What a claim re-checks of executions :meth:`ClaimQueries.claim_candidates` picked in
    the same transaction: they are locked (PostgreSQL) or the transaction is the only writer
    (SQLite), so only their status, and by primary key (repeating the whole condition would
    lead SQLite to walk the due queue)."""
    return one_of(executions.c.status, move.sources)


def _has_limit(run: LimitedRun) -> bool:
    """Whether admission must decide on ``run`` (it carries a concurrency or rate limit key)."""
    return run.concurrency_key is not None or run.rate_key is not None


def _of_cue(column: Any) -> Any:
    """``column`` of the claimed execution's cue, as a subquery a ``RETURNING`` clause may hold
    (SQLite's may not name another table of an ``UPDATE … FROM``)."""
    return select(column).where(cues.c.id == executions.c.cue_id).scalar_subquery()


def _claim_set(move: Move, values: dict[str, Any]) -> dict[str, Any]:
    """What a claim sets: the new status, one more attempt, and ``values`` (bound)."""
    return {
        "status": move.target,
        "attempts": executions.c.attempts + 1,
        **bound_values(executions, values),
    }


class ClaimQueries(TxBase):
    """Worker claims."""

    async def claimable(
        self,
        user_id: str,
        transports: Sequence[str],
        statuses: Sequence[str],
        now: datetime,
        task: str | None,
        limit: int,
    ) -> list[QueuedRun]:
        """Executions waiting for a worker with room under their limits, higher priority
        first, oldest first within a priority."""

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
                    one_of(executions.c.status, statuses),
                    pull_transport(len(transports)),
                    executions.c.scheduled_for <= at("p_now"),
                    not_held_back(),
                    within_limits(at("p_now")),
                )
            )
            if task is not None:
                stmt = stmt.where(cues.c.task == bindparam("p_task"))
            return stmt.order_by(*QUEUE_ORDER).limit(bindparam("p_limit"))

        params = {
            "p_user_id": user_id,
            **transport_params(transports),
            "p_now": now,
            "p_limit": limit,
        }
        if task is not None:
            params["p_task"] = task
        key = ("claimable", task is not None, tuple(statuses), len(transports))
        stmt = self._prepared(key, build)
        return await self._records(rows.queued_run, stmt, params)

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
        """Due executions a claim may take, locked (rows another claimer holds are skipped)."""

        def build() -> Any:
            waiting = self._waiting(move, len(transports), task is not None)
            stmt = select(*LIMITED)
            if execution_ids is not None:
                stmt = stmt.where(executions.c.id.in_(bindparam("p_ids", expanding=True)), waiting)
            else:
                stmt = stmt.where(waiting, within_limits(at("p_now"))).limit(bindparam("p_limit"))
            return _lock(stmt.order_by(*QUEUE_ORDER), self.connector)

        key = ("claim_candidates", execution_ids is None, task is not None, move, len(transports))
        params: dict[str, Any] = {"p_user_id": user_id, **transport_params(transports)}
        params["p_now"] = now
        if execution_ids is not None:
            params["p_ids"] = list(execution_ids)
        else:
            params["p_limit"] = limit
        if task is not None:
            params["p_task"] = task
        return await self._records(rows.limited_run, self._prepared(key, build), params)

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
        """Pick as :meth:`claim_candidates` does and claim at once the picks that carry no
        limit key (on PostgreSQL also those under a concurrency limit only, admitted by the
        key's count: :meth:`_claim_due_statement`); the others come back locked, as
        :class:`LimitedRun`, for admission."""
        if not self.connector.skip_locked:
            # SQLite: the transaction is the only writer, so two statements are as safe
            candidates = await self.claim_candidates(
                user_id, transports, execution_ids, limit, task, move, now
            )
            free = [run.id for run in candidates if not _has_limit(run)]
            claimed = {run.id: run for run in await self.claim_many(free, move, values)}
            return [
                claimed.get(run.id, run)
                for run in candidates
                if _has_limit(run) or run.id in claimed
            ]
        key = (
            "claim_due",
            execution_ids is None,
            task is not None,
            move,
            len(transports),
            *sorted(values),
        )
        params: dict[str, Any] = {**value_params(values), "p_user_id": user_id, "p_now": now}
        params.update(transport_params(transports))
        if execution_ids is not None:
            params["p_ids"] = list(execution_ids)
        else:
            params["p_limit"] = limit
        if task is not None:
            params["p_task"] = task

        def build() -> Any:
            return self._claim_due_statement(
                move, values, len(transports), execution_ids is None, task is not None
            )

        result = await self.conn.execute(self._prepared(key, build), params)
        picks: list[QueuedRun | LimitedRun] = []
        for row in result.all():
            if row.claimed_id is not None:
                picks.append(
                    QueuedRun(
                        row.id,
                        row.cue_id,
                        row.scheduled_for,
                        row.attempts,
                        row.payload_override,
                        row.cue_name,
                        row.task,
                        row.payload,
                    )
                )
            elif row.concurrency_key is not None or row.rate_key is not None:
                picks.append(
                    LimitedRun(
                        row.id,
                        row.user_id,
                        row.concurrency_key,
                        row.concurrency_limit,
                        row.rate_key,
                        row.rate_limit,
                        row.rate_period_seconds,
                    )
                )
        return picks

    def _claim_due_statement(
        self, move: Move, values: dict[str, Any], transports: int, due: bool, task: bool
    ) -> Any:
        """PostgreSQL's :meth:`claim_due`: one statement. ``picked`` locks the candidates
        (materialized, so the ``LIMIT ... SKIP LOCKED`` runs once); ``ranked`` places the
        picks without a rate key in their concurrency key's queue, beside what the key has in
        flight; ``claimed`` updates, joined with their cue, the picks without a limit key and,
        when the picks carry one concurrency key and no rate key, those whose place fits the
        key's room; every pick comes back in queue order with the claimed columns set on the
        ones claimed, the rest for admission.

        The room read here only keeps the queue order among a key's picks: the key's gate
        trigger (migration 0014) is what admits, under the gate's lock, refusing a move that a
        claim committed meanwhile has made one too many (such a pick comes back unclaimed).
        With one gate per statement and no advisory lock after it, claims take their locks in
        one order. The update re-checks nothing else: its rows were picked and locked by the
        same statement (a status condition there would also lead the planner to walk the status
        index instead of the picks' keys)."""
        waiting = self._waiting(move, transports, task)
        picked_stmt = select(*LIMITED, executions.c.priority, executions.c.scheduled_for)
        if due:
            picked_stmt = picked_stmt.where(waiting, within_limits(at("p_now")))
            picked_stmt = picked_stmt.limit(bindparam("p_limit"))
        else:
            picked_stmt = picked_stmt.where(
                executions.c.id.in_(bindparam("p_ids", expanding=True)), waiting
            )
        picked = (
            _lock(picked_stmt.order_by(*QUEUE_ORDER), self.connector)
            .cte("picked")
            .prefix_with("MATERIALIZED")
        )
        busy = executions.alias("busy")
        ranked = (
            select(
                picked.c.id,
                picked.c.rate_key,
                picked.c.concurrency_key,
                picked.c.concurrency_limit,
                func.row_number()
                .over(
                    partition_by=picked.c.concurrency_key,
                    order_by=(picked.c.priority.desc(), picked.c.scheduled_for),
                )
                .label("place"),
                select(func.count())
                .select_from(busy)
                .where(
                    busy.c.user_id == picked.c.user_id,
                    busy.c.concurrency_key == picked.c.concurrency_key,
                    busy.c.status == Status.DELIVERING.value,
                )
                .scalar_subquery()
                .label("in_flight"),
            )
            .where(picked.c.rate_key.is_(None))
            .cte("ranked")
        )
        one_gate = and_(
            select(func.count(func.distinct(picked.c.concurrency_key))).scalar_subquery() == 1,
            ~select(literal(1)).where(picked.c.rate_key.is_not(None)).exists(),
        )
        claimed = (
            update(executions)
            .where(
                executions.c.id == ranked.c.id,
                or_(
                    ranked.c.concurrency_key.is_(None),
                    and_(
                        one_gate, ranked.c.in_flight + ranked.c.place <= ranked.c.concurrency_limit
                    ),
                ),
                cues.c.id == executions.c.cue_id,
            )
            .values(_claim_set(move, values))
            .returning(
                executions.c.id.label("claimed_id"),
                executions.c.cue_id,
                executions.c.attempts,
                executions.c.payload_override,
                cues.c.name.label("cue_name"),
                cues.c.task,
                cues.c.payload,
            )
            .cte("claimed")
        )
        return (
            select(
                picked.c.id,
                picked.c.user_id,
                picked.c.concurrency_key,
                picked.c.concurrency_limit,
                picked.c.rate_key,
                picked.c.rate_limit,
                picked.c.rate_period_seconds,
                picked.c.scheduled_for,
                claimed.c.claimed_id,
                claimed.c.cue_id,
                claimed.c.attempts,
                claimed.c.payload_override,
                claimed.c.cue_name,
                claimed.c.task,
                claimed.c.payload,
            )
            .select_from(picked.outerjoin(claimed, claimed.c.claimed_id == picked.c.id))
            .order_by(picked.c.priority.desc(), picked.c.scheduled_for)
        )

    def _waiting(self, move: Move, transports: int, task: bool = False) -> Any:
        """Executions in ``move.sources`` of a user's ``transports`` pull transports, due by
        ``now`` (bound parameters ``user_id``, the transports, ``now`` and, with ``task``,
        ``task``)."""
        waiting = and_(
            executions.c.user_id == bindparam("p_user_id"),
            one_of(executions.c.status, move.sources),
            pull_transport(transports),
            executions.c.scheduled_for <= at("p_now"),
            not_held_back(),
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
        self, execution_ids: Sequence[str], move: Move, values: dict[str, Any]
    ) -> list[QueuedRun]:
        """Atomically claim the given due executions (one statement: the cue's name, task and
        payload come back through subqueries of the ``RETURNING`` clause)."""

        def build() -> Any:
            target = and_(executions.c.id.in_(bindparam("p_ids", expanding=True)), _picked(move))
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
                    _of_cue(cues.c.name).label("cue_name"),
                    _of_cue(cues.c.task).label("task"),
                    _of_cue(cues.c.payload).label("payload"),
                )
            )

        if not execution_ids:
            return []
        key = ("claim_many", move, *sorted(values))
        params = {**value_params(values), "p_ids": list(execution_ids)}
        claimed = await self._records(rows.queued_run, self._prepared(key, build), params)
        order = {execution_id: index for index, execution_id in enumerate(execution_ids)}
        return sorted(claimed, key=lambda run: order[run.id])
