"""Push delivery: due retries and delivery claims."""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    case,
    false,
    func,
    or_,
    select,
    update,
)

import cueflow.sql.rows as rows
from cueflow.records import DeliveryCandidate, DueDelivery, UnservedDelivery
from cueflow.sql.base import TxBase, _lock, _task_in, bound_values, unindexed, value_params
from cueflow.sql.delivery_candidates import bound_waiting, candidates, now_param
from cueflow.sql.limit_queries import within_limits
from cueflow.sql.queue import QUEUE_ORDER, one_of
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

        def build() -> Any:
            due = and_(
                one_of(executions.c.status, list(move.sources)),
                one_of(executions.c.transport, list(transports)),
                executions.c.next_retry <= now_param(),
            )
            held = _lock(select(executions.c.id).where(due), self.connector, executions)
            return (
                update(executions)
                .where(executions.c.id.in_(held), due)
                .values(status=move.target, **bound_values(executions, values))
            )

        key = ("promote_retries", tuple(transports), move, *sorted(values))
        params = {"p_now": now, **value_params(values)}
        return int((await self.conn.execute(self._prepared(key, build), params)).rowcount or 0)

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
        params: dict[str, Any] = {
            "p_transport": transport,
            "p_sources": list(move.sources),
            "p_now": now,
            "p_limit": limit,
            "p_per_account": per_account,
            "p_tasks": list(tasks or ()),
            "p_skip": list(skip_accounts),
        }
        sources = tuple(sorted(move.sources))
        key = ("due_deliveries", tasks is not None, bool(skip_accounts), sources)
        build = functools.partial(
            candidates, self.connector, tasks is not None, bool(skip_accounts), sources
        )
        return await self._records(rows.delivery_candidate, self._prepared(key, build), params)

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
        params: dict[str, Any] = {
            "p_transport": transport,
            "p_sources": list(move.sources),
            "p_now": now,
            "p_limit": limit,
            "p_tasks": list(tasks or ()),
            "p_ids": list(ids or ()),
        }
        shape = (tasks is not None, ids is not None)

        def waiting() -> Any:
            if ids is None:
                return bound_waiting(tasks is not None)
            # the given rows, found by key rather than through the dispatch index (all due rows)
            return and_(
                bound_waiting(tasks is not None, unindexed),
                executions.c.id.in_(bindparam("p_ids", expanding=True)),
            )

        if self.connector.name == "postgresql":
            return await self._claim_in_one(shape, waiting, params, move, values)
        if ids is not None and len(ids) <= limit and not self.connector.skip_locked:
            # one writer at a time (SQLite): the update below checks each given row itself
            picked: list[Any] = list(ids)
        else:
            picked = await self._pick_deliveries(shape, waiting, params)
        if not picked:
            return []

        def build_claim() -> Any:
            return (
                update(executions)
                .where(executions.c.id.in_(bindparam("p_picked", expanding=True)), waiting())
                .values(
                    status=bindparam("p_target"),
                    attempts=executions.c.attempts + 1,
                    started_at=func.coalesce(executions.c.started_at, now_param()),
                    **bound_values(executions, values),
                )
                .returning(executions.c.id)
            )

        claim = self._prepared(("claim_deliveries.claim", *shape, *sorted(values)), build_claim)
        claim_params = {**params, **value_params(values), "p_picked": picked}
        claim_params["p_target"] = move.target
        claimed = list((await self.conn.execute(claim, claim_params)).scalars())
        if not claimed:
            return []
        stmt = self._prepared(("claim_deliveries.read",), _claimed_deliveries)
        return await self._records(rows.due_delivery, stmt, {"p_claimed": claimed, "p_now": now})

    async def _claim_in_one(
        self,
        shape: tuple[bool, bool],
        waiting: Callable[[], Any],
        params: dict[str, Any],
        move: Move,
        values: dict[str, Any],
    ) -> list[DueDelivery]:
        """:meth:`claim_deliveries` as one statement (PostgreSQL): the rows picked and locked
        (skipping rows others hold) in a subquery of the update, which returns what the read
        of :func:`_claimed_deliveries` joins in the same statement."""

        def build() -> Any:
            picked = _lock(
                select(executions.c.id)
                .where(waiting())
                .order_by(*QUEUE_ORDER)
                .limit(bindparam("p_limit", type_=Integer()))
                .correlate(None),
                self.connector,
                executions,
            )
            claimed = (
                update(executions)
                .where(executions.c.id.in_(picked), waiting())
                .values(
                    status=bindparam("p_target"),
                    attempts=executions.c.attempts + 1,
                    started_at=func.coalesce(executions.c.started_at, now_param()),
                    **bound_values(executions, values),
                )
                .returning(*(executions.c[name] for name in _CLAIMED_COLUMNS))
                .cte("claimed")
            )
            return _claimed_deliveries(claimed)

        stmt = self._prepared(("claim_deliveries.one", *shape, *sorted(values)), build)
        claim_params = {**params, **value_params(values), "p_target": move.target}
        return await self._records(rows.due_delivery, stmt, claim_params)

    async def _pick_deliveries(
        self, shape: tuple[bool, bool], waiting: Callable[[], Any], params: dict[str, Any]
    ) -> list[Any]:
        """The executions a claim takes, locked (skipping rows others hold) where the store
        can."""
        due = self._prepared(
            ("claim_deliveries.due", *shape),
            lambda: _lock(
                select(executions.c.id)
                .where(waiting())
                .order_by(*QUEUE_ORDER)
                .limit(bindparam("p_limit", type_=Integer())),
                self.connector,
                executions,
            ),
        )
        return list((await self.conn.execute(due, params)).scalars())

    async def next_delivery_due(
        self,
        transports: Sequence[str],
        tasks: Mapping[str, Collection[str]] | None = None,
        skip_accounts: Collection[str] = (),
        now: datetime | None = None,
    ) -> datetime | None:
        """The earliest time the dispatcher has work for ``transports`` (one statement, built
        once per transports and tasks)."""
        tasks = tasks or {}
        routed = tuple(sorted((name, tuple(sorted(tasks[name]))) for name in tasks))
        key = ("next_delivery_due", tuple(transports), routed, bool(skip_accounts), now is None)
        build = functools.partial(
            _next_delivery_due, tuple(transports), dict(routed), bool(skip_accounts), now is None
        )
        params: dict[str, Any] = {"p_skip": list(skip_accounts)}
        if now is not None:
            params["p_now"] = now
        found = (await self.conn.execute(self._prepared(key, build), params)).one()
        return min((value for value in found if value is not None), default=None)

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


_CLAIMED_COLUMNS = (
    "id",
    "cue_id",
    "user_id",
    "scheduled_for",
    "attempts",
    "payload_override",
    "flow_run_id",
)
"""The columns of a claimed execution its delivery needs."""


def _claimed_deliveries(claimed: Any = None) -> Any:
    """What the delivery of each claimed execution needs: of the executions bound as
    ``p_claimed``, or of the rows ``claimed`` (the claim's update returns them)."""
    source = executions if claimed is None else claimed
    stmt = (
        select(
            *(source.c[name] for name in _CLAIMED_COLUMNS),
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
                    users.c.previous_webhook_secret_until > now_param(),
                    users.c.previous_webhook_secret,
                ),
                else_=None,
            ).label("previous_webhook_secret"),
        )
        .select_from(
            source.join(cues, cues.c.id == source.c.cue_id).join(
                users, users.c.id == source.c.user_id
            )
        )
        .order_by(source.c.scheduled_for)
    )
    if claimed is None:
        stmt = stmt.where(executions.c.id.in_(bindparam("p_claimed", expanding=True)))
    return stmt


def _next_delivery_due(
    transports: Sequence[str],
    tasks: Mapping[str, Collection[str]],
    with_skip: bool,
    without_now: bool,
) -> Any:
    """The statement of :meth:`DeliveryQueries.next_delivery_due`: the three earliest times
    (pending, retrying, delivering) in one row, with bound ``p_skip`` and ``p_now``."""
    push = one_of(executions.c.transport, list(transports))
    servable = [
        executions.c.transport == name
        if name not in tasks
        else and_(executions.c.transport == name, _task_in(tasks[name]))
        for name in transports
        if tasks.get(name, True)
    ]
    pending = or_(false(), *servable)
    if with_skip:
        pending = and_(pending, executions.c.user_id.not_in(bindparam("p_skip", expanding=True)))
    if not without_now:
        pending = and_(pending, within_limits(now_param()))
    earliest = [
        select(func.min(column)).where(executions.c.status == status, where).scalar_subquery()
        for status, column, where in (
            (Status.PENDING.value, executions.c.scheduled_for, pending),
            (Status.RETRYING.value, executions.c.next_retry, push),
            (Status.DELIVERING.value, executions.c.lease_expires_at, push),
        )
    ]
    return select(*earliest)
