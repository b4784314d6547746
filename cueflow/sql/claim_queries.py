"""Worker claims: what waits for a worker and atomic claims (leases are
:mod:`cueflow.sql.lease_queries`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, update

import cueflow.sql.rows as rows
from cueflow.records import LimitedRun, QueuedRun
from cueflow.sql.base import TxBase, _lock, in_bound, value_params
from cueflow.sql.claim_statements import (
    CLAIMED,
    claim_due_statement,
    claim_set,
    has_limit,
    picked_again,
    waiting_for_worker,
)
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
from cueflow.sql.tables import cues, executions
from cueflow.states import Move


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
            waiting = waiting_for_worker(
                move, len(transports), task is not None, by_key=execution_ids is not None
            )
            stmt = select(*LIMITED)
            if execution_ids is not None:
                stmt = stmt.where(in_bound(executions.c.id, "p_ids"), waiting)
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
        key's gate: :func:`~cueflow.sql.claim_statements.claim_due_statement`); the others
        come back locked, as :class:`LimitedRun`, for admission."""
        if not self.connector.skip_locked:
            # SQLite: the transaction is the only writer, so two statements are as safe
            if execution_ids is None and limit == 1:
                first = await self._claim_first(user_id, transports, task, move, now, values)
                if first is not None:
                    return [first]
            candidates = await self.claim_candidates(
                user_id, transports, execution_ids, limit, task, move, now
            )
            free = [run.id for run in candidates if not has_limit(run)]
            claimed = {run.id: run for run in await self.claim_many(free, move, values)}
            return [
                claimed.get(run.id, run)
                for run in candidates
                if has_limit(run) or run.id in claimed
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
            return claim_due_statement(
                self.connector,
                move,
                values,
                len(transports),
                execution_ids is None,
                task is not None,
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

    async def _claim_first(
        self,
        user_id: str,
        transports: Sequence[str],
        task: str | None,
        move: Move,
        now: datetime,
        values: dict[str, Any],
    ) -> QueuedRun | None:
        """SQLite's claim of the first due execution, in one statement: the pick's limits are
        counted by the statement that claims it, which, with one writer, is an exact
        admission for one run. A pick under a rate limit is left alone (its start must be
        recorded: ``None``, and :meth:`claim_due` goes the way of admission), as is an empty
        queue."""

        def build() -> Any:
            first = (
                select(executions.c.id)
                .where(waiting_for_worker(move, len(transports), task is not None))
                .where(within_limits(at("p_now")))
                .order_by(*QUEUE_ORDER)
                .limit(1)
                .scalar_subquery()
            )
            return (
                update(executions)
                .where(executions.c.id == first, executions.c.rate_key.is_(None))
                .values(claim_set(move, values))
                .returning(*CLAIMED)
            )

        key = ("claim_first", task is not None, move, len(transports), *sorted(values))
        params: dict[str, Any] = {**value_params(values), "p_user_id": user_id, "p_now": now}
        params.update(transport_params(transports))
        if task is not None:
            params["p_task"] = task
        claimed = await self._records(rows.queued_run, self._prepared(key, build), params)
        return claimed[0] if claimed else None

    async def claim_many(
        self, execution_ids: Sequence[str], move: Move, values: dict[str, Any]
    ) -> list[QueuedRun]:
        """Atomically claim the given due executions (one statement: the cue's name, task and
        payload come back through subqueries of the ``RETURNING`` clause)."""

        def build() -> Any:
            target = and_(in_bound(executions.c.id, "p_ids"), picked_again(move))
            return (
                update(executions).where(target).values(claim_set(move, values)).returning(*CLAIMED)
            )

        if not execution_ids:
            return []
        key = ("claim_many", move, *sorted(values))
        params = {**value_params(values), "p_ids": list(execution_ids)}
        claimed = await self._records(rows.queued_run, self._prepared(key, build), params)
        order = {execution_id: index for index, execution_id in enumerate(execution_ids)}
        return sorted(claimed, key=lambda run: order[run.id])
