"""History retention in SQL: bounded deletes of ended executions, flow runs, alerts and expired
keys, and the advisory lock that keeps one node pruning at a time on PostgreSQL.

Every delete picks its rows in a subquery with ``LIMIT`` (``DELETE`` has none in PostgreSQL),
through an alias of the table so the subquery is not correlated with the deleted table; on
PostgreSQL the pick is ``FOR UPDATE SKIP LOCKED``, so a row a claim or an outcome holds is left
for a later batch rather than waited for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, literal, not_, or_, select, tuple_

from cueflow.sql.base import TxBase, _lock
from cueflow.sql.tables import (
    alerts,
    executions,
    fire_idempotency,
    flow_runs,
    flow_steps,
    rate_limit_starts,
)
from cueflow.store.values import PruneCut

_RETENTION_LOCK = "cueflow/retention"
"""The advisory lock's key text (hashed to PostgreSQL's 64-bit key)."""

_newer = executions.alias("newer")
_open = executions.alias("open_execution")


def _finished(table: Any, cut: PruneCut) -> Any:
    """Rows of ``table`` (an alias of executions) that count as finished runs of their cue."""
    return or_(table.c.status.in_(cut.finished), table.c.outcome_recorded_at.is_not(None))


def _old_executions(cut: PruneCut) -> Select[Any]:
    """Ids of executions ``cut`` lets go (no flow steps; see ``prune_executions``)."""
    candidate = executions.alias("candidate")
    newer_finished = (
        select(literal(1))
        .select_from(_newer)
        .where(
            _newer.c.cue_id == candidate.c.cue_id,
            _newer.c.flow_run_id.is_(None),
            _newer.c.scheduled_for > candidate.c.scheduled_for,
            _finished(_newer, cut),
        )
        .order_by(_newer.c.scheduled_for)
        .limit(1)
        .offset(cut.keep_latest - 1)
    )
    return select(candidate.c.id).where(
        candidate.c.status.in_(cut.statuses),
        candidate.c.updated_at < cut.before,
        candidate.c.flow_run_id.is_(None),
        or_(not_(_finished(candidate, cut)), newer_finished.exists())
        if cut.keep_latest > 0
        else literal(True),
    )


def _old_runs(cut: PruneCut) -> Select[Any]:
    """Ids of ended flow runs ``cut`` lets go: none of their executions is still open."""
    still_open = (
        select(literal(1))
        .select_from(_open)
        .where(_open.c.flow_run_id == flow_runs.c.id, _open.c.status.not_in(cut.statuses))
        .exists()
    )
    return select(flow_runs.c.id).where(
        flow_runs.c.status.in_(cut.run_statuses),
        flow_runs.c.finished_at < cut.before,
        not_(still_open),
    )


class RetentionQueries(TxBase):
    """Deleting old history."""

    async def try_lock_retention(self) -> bool:
        """A transaction-scoped ``pg_try_advisory_xact_lock`` (PostgreSQL); with one writer at a
        time (SQLite's ``BEGIN IMMEDIATE``) there is nothing to take."""
        if not self.connector.skip_locked:
            return True
        lock = func.pg_try_advisory_xact_lock(func.hashtextextended(_RETENTION_LOCK, 0))
        return bool((await self.conn.execute(select(lock))).scalar_one())

    async def _delete_ids(self, table: Any, picked: Select[Any]) -> int:
        result = await self.conn.execute(delete(table).where(table.c.id.in_(picked)))
        return int(result.rowcount or 0)

    async def prune_executions(self, cut: PruneCut, limit: int) -> int:
        """Delete a batch of old executions (see :class:`cueflow.store.RetentionStore`)."""
        picked = _lock(_old_executions(cut).limit(limit), self.connector)
        return await self._delete_ids(executions, picked)

    async def prune_flow_runs(self, cut: PruneCut, limit: int) -> tuple[int, int, int]:
        """Delete a batch of old flow runs with their steps and executions."""
        runs_stmt = _lock(_old_runs(cut).limit(max(1, limit // 50)), self.connector)
        runs = [row[0] for row in (await self.conn.execute(runs_stmt)).all()]
        if not runs:
            return 0, 0, 0
        step_run = executions.alias("step_run")
        gone = await self._delete_ids(
            executions,
            select(step_run.c.id)
            .where(step_run.c.flow_run_id.in_(runs), step_run.c.status.in_(cut.statuses))
            .limit(limit),
        )
        if gone >= limit:
            return 0, 0, gone
        step = flow_steps.alias("step")
        steps = await self._delete_ids(
            flow_steps, select(step.c.id).where(step.c.run_id.in_(runs)).limit(limit - gone)
        )
        if gone + steps >= limit:
            return 0, steps, gone
        result = await self.conn.execute(delete(flow_runs).where(flow_runs.c.id.in_(runs)))
        return int(result.rowcount or 0), steps, gone

    async def prune_alerts(self, before: datetime, limit: int) -> int:
        """Delete a batch of old alerts."""
        old = alerts.alias("old")
        return await self._delete_ids(
            alerts, select(old.c.id).where(old.c.created_at < before).limit(limit)
        )

    async def prune_fire_keys(self, before: datetime, limit: int) -> int:
        """Delete a batch of expired fire idempotency keys."""
        old = fire_idempotency.alias("old")
        key = ("user_id", "cue_id", "idempotency_key")
        picked = select(*(old.c[c] for c in key)).where(old.c.created_at < before).limit(limit)
        result = await self.conn.execute(
            delete(fire_idempotency).where(
                tuple_(*(fire_idempotency.c[c] for c in key)).in_(picked)
            )
        )
        return int(result.rowcount or 0)

    async def prune_rate_starts(self, now: datetime, limit: int) -> int:
        """Delete a batch of expired rate-limit starts."""
        old = rate_limit_starts.alias("old")
        key = ("user_id", "rate_key", "expires_at", "execution_id")
        picked = select(*(old.c[c] for c in key)).where(old.c.expires_at <= now).limit(limit)
        result = await self.conn.execute(
            delete(rate_limit_starts).where(
                tuple_(*(rate_limit_starts.c[c] for c in key)).in_(picked)
            )
        )
        return int(result.rowcount or 0)

    async def retention_counts(
        self, cut: PruneCut, alerts_before: datetime, keys_before: datetime, now: datetime
    ) -> dict[str, int]:
        """What a prune would delete, by kind."""
        runs = _old_runs(cut).subquery()
        run_ids = select(runs.c.id)
        of_runs = and_(executions.c.flow_run_id.in_(run_ids), executions.c.status.in_(cut.statuses))
        counts = {
            "executions": await self._count(_old_executions(cut))
            + await self._count(select(executions.c.id).where(of_runs)),
            "flow_runs": await self._count(select(runs.c.id)),
            "flow_steps": await self._count(
                select(flow_steps.c.id).where(flow_steps.c.run_id.in_(run_ids))
            ),
            "alerts": await self._count(
                select(alerts.c.id).where(alerts.c.created_at < alerts_before)
            ),
            "fire_keys": await self._count(
                select(fire_idempotency.c.cue_id).where(fire_idempotency.c.created_at < keys_before)
            ),
            "rate_limit_starts": await self._count(
                select(rate_limit_starts.c.rate_key).where(rate_limit_starts.c.expires_at <= now)
            ),
        }
        return counts
