"""Limit keys in SQL: the counts a concurrency or rate limit holds, the starts a rate limit
records, the advisory locks that serialise admissions of one key across nodes, and the filter
that keeps held-back executions out of claimable lists and claim candidates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, literal, or_, select, tuple_

from cueflow.records import KeyLoad
from cueflow.sql.base import TxBase
from cueflow.sql.tables import concurrency_gates, executions, rate_limit_starts
from cueflow.states import Status

_busy = executions.alias("busy")


def in_flight(user_id: Any, concurrency_key: Any) -> Any:
    """How many executions of ``concurrency_key`` (a column) in account ``user_id`` are
    ``delivering``, as a scalar subquery correlated with those columns."""
    return (
        select(func.count())
        .select_from(_busy)
        .where(
            _busy.c.user_id == user_id,
            _busy.c.concurrency_key == concurrency_key,
            _busy.c.status == Status.DELIVERING.value,
        )
        .scalar_subquery()
    )


def within_limits(now: Any) -> Any:
    """Executions whose concurrency and rate limits (if any) have room, as the transaction sees
    them (``now``: a bound time). A filter only: the admission under the key lock decides."""
    busy = in_flight(executions.c.user_id, executions.c.concurrency_key)
    starts = (
        select(func.count())
        .select_from(rate_limit_starts)
        .where(
            rate_limit_starts.c.user_id == executions.c.user_id,
            rate_limit_starts.c.rate_key == executions.c.rate_key,
            rate_limit_starts.c.expires_at > now,
        )
        .scalar_subquery()
    )
    return and_(
        or_(executions.c.concurrency_key.is_(None), busy < executions.c.concurrency_limit),
        or_(executions.c.rate_key.is_(None), starts < executions.c.rate_limit),
    )


def key_active_since(since: Any) -> Any:
    """Executions with a limit whose key saw work since ``since``: a run of the key in flight or
    claimed since then, or a rate-limit start recorded since then (still counted). Such a run is
    queued behind its limit, not forgotten by the workers."""
    busy = (
        select(literal(1))
        .select_from(_busy)
        .where(
            _busy.c.user_id == executions.c.user_id,
            _busy.c.concurrency_key == executions.c.concurrency_key,
            or_(_busy.c.status == Status.DELIVERING.value, _busy.c.claimed_at > since),
        )
        .exists()
    )
    started = (
        select(literal(1))
        .where(
            rate_limit_starts.c.user_id == executions.c.user_id,
            rate_limit_starts.c.rate_key == executions.c.rate_key,
            rate_limit_starts.c.expires_at > since,
        )
        .exists()
    )
    return or_(
        and_(executions.c.concurrency_key.is_not(None), busy),
        and_(executions.c.rate_key.is_not(None), started),
    )


def _by_user(keys: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for user_id, key in keys:
        grouped.setdefault(user_id, []).append(key)
    return grouped


class LimitQueries(TxBase):
    """Limit keys."""

    async def lock_limit_keys(
        self, concurrency: Sequence[tuple[str, str]], rate: Sequence[tuple[str, str]]
    ) -> None:
        """PostgreSQL: a transaction-scoped advisory lock per rate key, then the concurrency
        keys' gate rows (made when missing), each kind in sorted order; the gate rows are what
        the gate trigger locks when a claim moves a run into ``delivering`` (migration 0014).
        With one writer at a time (SQLite's ``BEGIN IMMEDIATE``) there is nothing to lock."""
        if not self.connector.skip_locked:
            return
        for user_id, key in sorted(set(rate)):
            lock = func.pg_advisory_xact_lock(func.hashtextextended(f"{user_id}/rate/{key}", 0))
            await self.conn.execute(select(lock))
        gates = sorted(set(concurrency))
        if not gates:
            return
        rows = [{"user_id": user_id, "concurrency_key": key} for user_id, key in gates]
        await self.conn.execute(
            self.connector.insert(concurrency_gates).values(rows).on_conflict_do_nothing()
        )
        await self.conn.execute(
            select(literal(1))
            .where(
                tuple_(concurrency_gates.c.user_id, concurrency_gates.c.concurrency_key).in_(gates)
            )
            .order_by(concurrency_gates.c.user_id, concurrency_gates.c.concurrency_key)
            .with_for_update()
            .select_from(concurrency_gates)
        )

    async def key_loads(
        self,
        concurrency: Sequence[tuple[str, str]],
        rate: Sequence[tuple[str, str]],
        now: datetime,
    ) -> dict[tuple[str, str, str], KeyLoad]:
        """In-flight counts and live starts per key."""
        loads: dict[tuple[str, str, str], KeyLoad] = {}
        for user_id, keys in _by_user(concurrency).items():
            stmt = (
                select(executions.c.concurrency_key, func.count())
                .where(
                    executions.c.user_id == user_id,
                    executions.c.concurrency_key.in_(keys),
                    executions.c.status == Status.DELIVERING.value,
                )
                .group_by(executions.c.concurrency_key)
            )
            for key, count in (await self.conn.execute(stmt)).all():
                loads[("concurrency", user_id, key)] = KeyLoad(in_flight=count)
        for user_id, keys in _by_user(rate).items():
            stmt = (
                select(
                    rate_limit_starts.c.rate_key,
                    func.count(),
                    func.min(rate_limit_starts.c.expires_at),
                )
                .where(
                    rate_limit_starts.c.user_id == user_id,
                    rate_limit_starts.c.rate_key.in_(keys),
                    rate_limit_starts.c.expires_at > now,
                )
                .group_by(rate_limit_starts.c.rate_key)
            )
            for key, count, first in (await self.conn.execute(stmt)).all():
                loads[("rate", user_id, key)] = KeyLoad(starts=count, first_expiry=first)
        return loads

    async def record_starts(
        self, starts: Sequence[tuple[str, str, datetime, str]], now: datetime
    ) -> None:
        """Insert the starts; delete their keys' expired ones."""
        if not starts:
            return
        for user_id, key in sorted({(user_id, key) for user_id, key, _, _ in starts}):
            await self.conn.execute(
                delete(rate_limit_starts).where(
                    rate_limit_starts.c.user_id == user_id,
                    rate_limit_starts.c.rate_key == key,
                    rate_limit_starts.c.expires_at <= now,
                )
            )
        rows = [
            {"user_id": u, "rate_key": k, "expires_at": e, "execution_id": i}
            for u, k, e, i in starts
        ]
        await self.conn.execute(self.connector.insert(rate_limit_starts).values(rows))
