"""Push delivery: due retries and delivery claims."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    case,
    false,
    func,
    literal,
    or_,
    select,
    update,
)

import cueflow.sql.rows as rows
from cueflow.records import DeliveryCandidate, DueDelivery, UnservedDelivery
from cueflow.sql.base import TxBase, _lock, _task_in
from cueflow.sql.limit_queries import within_limits
from cueflow.sql.queue import QUEUE_ORDER
from cueflow.sql.tables import (
    cues,
    executions,
    users,
)
from cueflow.states import Move, Status


class DeliveryQueries(TxBase):
    """Push delivery: due retries and delivery claims."""

    async def promote_retries(
        self, transports: Sequence[str], move: Move, now: datetime, values: dict[str, Any]
    ) -> int:
        """Make due retries ready for delivery (rows other nodes hold are left to them)."""
        due = and_(
            executions.c.status.in_(move.sources),
            executions.c.transport.in_(list(transports)),
            executions.c.next_retry <= now,
        )
        held = _lock(select(executions.c.id).where(due), self.connector)
        stmt = (
            update(executions)
            .where(executions.c.id.in_(held), due)
            .values(status=move.target, **values)
        )
        return int((await self.conn.execute(stmt)).rowcount or 0)

    async def due_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        per_account: int,
        tasks: Collection[str] | None = None,
        skip_accounts: Collection[str] = (),
    ) -> list[DeliveryCandidate]:
        """Due push executions, each account's oldest first, round-robin (see the protocol)."""
        if tasks is not None and not tasks:
            return []
        waiting = and_(_waiting(transport, move, now, tasks), within_limits(now))
        if skip_accounts:
            waiting = and_(waiting, executions.c.user_id.not_in(list(skip_accounts)))
        # The window ranks each account's due executions; the rows are then locked in an outer
        # query, as PostgreSQL allows no FOR UPDATE beside a window function.
        ranked = (
            select(
                executions.c.id,
                executions.c.scheduled_for,
                executions.c.priority,
                func.row_number()
                .over(
                    partition_by=executions.c.user_id,
                    order_by=(*QUEUE_ORDER, executions.c.id),
                )
                .label("turn"),
            )
            .where(waiting)
            .subquery()
        )
        fair = (
            select(ranked.c.id)
            .where(ranked.c.turn <= per_account)
            .order_by(ranked.c.turn, ranked.c.priority.desc(), ranked.c.scheduled_for, ranked.c.id)
            .limit(limit)
        )
        url = select(cues.c.callback_url).where(cues.c.id == executions.c.cue_id)
        stmt = _lock(
            select(
                executions.c.id,
                executions.c.user_id,
                executions.c.scheduled_for,
                url.scalar_subquery().label("callback_url"),
                executions.c.concurrency_key,
                executions.c.concurrency_limit,
                executions.c.rate_key,
                executions.c.rate_limit,
                executions.c.rate_period_seconds,
            )
            .where(executions.c.id.in_(fair), waiting)
            .order_by(*QUEUE_ORDER),
            self.connector,
        )
        return await self._records(rows.delivery_candidate, stmt)

    async def claim_deliveries(
        self,
        transport: str,
        move: Move,
        now: datetime,
        limit: int,
        values: dict[str, Any],
        tasks: Collection[str] | None = None,
        ids: Collection[str] | None = None,
    ) -> list[DueDelivery]:
        """Claim a batch of due push executions (see the protocol)."""
        if (tasks is not None and not tasks) or (ids is not None and not ids):
            return []
        waiting = _waiting(transport, move, now, tasks)
        if ids is not None:
            waiting = and_(waiting, executions.c.id.in_(list(ids)))
        due = _lock(
            select(executions.c.id).where(waiting).order_by(*QUEUE_ORDER).limit(limit),
            self.connector,
        )
        picked = list((await self.conn.execute(due)).scalars())
        if not picked:
            return []
        claim = (
            update(executions)
            .where(executions.c.id.in_(picked), waiting)
            .values(
                status=move.target,
                attempts=executions.c.attempts + 1,
                started_at=func.coalesce(
                    executions.c.started_at, literal(now, executions.c.started_at.type)
                ),
                **values,
            )
            .returning(executions.c.id)
        )
        claimed = list((await self.conn.execute(claim)).scalars())
        if not claimed:
            return []
        stmt = (
            select(
                executions.c.id,
                executions.c.cue_id,
                executions.c.user_id,
                executions.c.scheduled_for,
                executions.c.attempts,
                executions.c.payload_override,
                executions.c.flow_run_id,
                cues.c.name.label("cue_name"),
                cues.c.task,
                cues.c.callback_url,
                cues.c.callback_method,
                cues.c.callback_headers,
                cues.c.payload,
                cues.c.retry_max_attempts,
                cues.c.retry_backoff_minutes,
                cues.c.schedule_type,
                cues.c.on_failure,
                cues.c.verification_mode,
                cues.c.timeout_seconds,
                users.c.webhook_secret,
                case(
                    (
                        users.c.previous_webhook_secret_until > now,
                        users.c.previous_webhook_secret,
                    ),
                    else_=None,
                ).label("previous_webhook_secret"),
            )
            .join(cues, cues.c.id == executions.c.cue_id)
            .join(users, users.c.id == executions.c.user_id)
            .where(executions.c.id.in_(claimed))
            .order_by(executions.c.scheduled_for)
        )
        return await self._records(rows.due_delivery, stmt)

    async def next_delivery_due(
        self,
        transports: Sequence[str],
        tasks: Mapping[str, Collection[str]] | None = None,
        skip_accounts: Collection[str] = (),
        now: datetime | None = None,
    ) -> datetime | None:
        """The earliest time the dispatcher has work for ``transports``."""
        tasks = tasks or {}
        push = executions.c.transport.in_(list(transports))
        servable = [
            executions.c.transport == name
            if name not in tasks
            else and_(executions.c.transport == name, _task_in(tasks[name]))
            for name in transports
            if tasks.get(name, True)
        ]
        pending = or_(false(), *servable)
        if skip_accounts:
            pending = and_(pending, executions.c.user_id.not_in(list(skip_accounts)))
        if now is not None:
            pending = and_(pending, within_limits(now))
        found: list[datetime] = []
        for status, column, where in (
            (Status.PENDING.value, executions.c.scheduled_for, pending),
            (Status.RETRYING.value, executions.c.next_retry, push),
            (Status.DELIVERING.value, executions.c.lease_expires_at, push),
        ):
            stmt = select(func.min(column)).where(executions.c.status == status, where)
            value = (await self.conn.execute(stmt)).scalar()
            if value is not None:
                found.append(value)
        return min(found, default=None)

    async def unserved_deliveries(
        self, transport: str, tasks: Collection[str], before: datetime, limit: int
    ) -> list[UnservedDelivery]:
        """Pending executions nobody here can deliver that are not marked yet."""
        stmt = (
            select(executions.c.id, cues.c.task)
            .join(cues, cues.c.id == executions.c.cue_id)
            .where(
                executions.c.status == Status.PENDING.value,
                executions.c.transport == transport,
                executions.c.scheduled_for < before,
                executions.c.error_message.is_(None),
                or_(cues.c.task.is_(None), cues.c.task.not_in(list(tasks))),
            )
            .order_by(executions.c.scheduled_for)
            .limit(limit)
        )
        return await self._records(rows.unserved_delivery, stmt)


def _waiting(transport: str, move: Move, now: datetime, tasks: Collection[str] | None) -> Any:
    """Executions of ``transport`` due by ``now`` that ``move`` may claim (of ``tasks``)."""
    waiting = and_(
        executions.c.status.in_(move.sources),
        executions.c.transport == transport,
        executions.c.scheduled_for <= now,
    )
    return waiting if tasks is None else and_(waiting, _task_in(tasks))
