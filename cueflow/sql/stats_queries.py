"""Statistics: aggregates over an account's recent executions, grouped in the database.

Each statement reads the account's executions created since the window's start through the
``(user_id, created_at)`` index and returns one row per time bucket (and status): the cost is
that of the window's rows, and the answer's size is fixed by the number of buckets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select

import cueflow.sql.rows as rows
from cueflow.records import Execution
from cueflow.sql.base import TxBase, _count_if
from cueflow.sql.tables import cues, executions
from cueflow.sql.types import UTCDateTime
from cueflow.store import ExecutionStats, StatsQuery


class StatsQueries(TxBase):
    """Statistics (see the module)."""

    def _seconds(self, later: Any, earlier: Any) -> Any:
        """``later - earlier`` in seconds, as the dialect computes it (on SQLite to the
        millisecond: Julian days carry tens of microseconds of error, enough to put a moment
        on a bucket's boundary into the bucket before)."""
        if self.connector.name == "postgresql":
            return func.extract("epoch", later - earlier)
        return func.round((func.julianday(later) - func.julianday(earlier)) * 86400.0, 3)

    def _bucket(self, query: StatsQuery, moment: Any = executions.c.created_at) -> Any:
        """The index of the time bucket of ``moment`` (whole buckets since ``query.since``)."""
        since = literal(query.since, UTCDateTime())
        ratio = self._seconds(moment, since) / query.bucket_seconds
        if self.connector.name == "postgresql":
            return cast(func.floor(ratio), Integer)
        return cast(ratio, Integer)  # non-negative here, so truncating is flooring

    async def execution_stats(self, user_id: str, query: StatsQuery) -> ExecutionStats:
        """Counts, delay histograms and the queue of the user's recent executions."""
        recent = and_(
            executions.c.user_id == user_id,
            executions.c.created_at >= literal(query.since, UTCDateTime()),
        )
        bucket = self._bucket(query).label("bucket")
        counted = (
            select(bucket, executions.c.status, func.count())
            .where(recent)
            .group_by(bucket, executions.c.status)
        )
        counts = {(int(b), str(status)): int(n) for b, status, n in await self._rows(counted)}
        lag = await self._histogram(
            query, recent, executions.c.started_at, executions.c.scheduled_for
        )
        # A failed report sets no delivered_at: its time of record ends the attempt instead.
        ended = func.coalesce(executions.c.delivered_at, executions.c.outcome_recorded_at)
        latency = await self._histogram(query, recent, ended, executions.c.started_at)
        queued = (
            select(executions.c.status, func.count(), func.min(executions.c.scheduled_for))
            .where(executions.c.user_id == user_id, executions.c.status.in_(list(query.queued)))
            .group_by(executions.c.status)
        )
        queue: dict[str, int] = {}
        oldest: datetime | None = None
        for status, n, first in await self._rows(queued):
            queue[str(status)] = int(n)
            first = _aware(first)
            if first is not None and (oldest is None or first < oldest):
                oldest = first
        left = await self._left(query, recent)
        carried = self._carried(user_id, query)
        for bucket_index, n in (await self._left(query, carried)).items():
            left[bucket_index] = left.get(bucket_index, 0) + n
        counted_in = select(func.count()).where(carried)
        total_carried = int((await self.conn.execute(counted_in)).scalar_one())
        return ExecutionStats(counts, lag, latency, queue, oldest, left, total_carried)

    def _left_at(self, query: StatsQuery) -> Any:
        """When an execution stopped waiting to start: its start, or the last change of one
        that ended unstarted (``NULL``: it still waits)."""
        unstarted_end = case(
            (executions.c.status.in_(list(query.finished)), executions.c.updated_at), else_=None
        )
        return func.coalesce(executions.c.started_at, unstarted_end)

    def _carried(self, user_id: str, query: StatsQuery) -> Any:
        """The user's executions created before the window and still waiting at its start. The
        last condition follows from the others; it lets the planner reach them through the
        queue index (those still waiting) and ``(status, updated_at)`` (those that left
        since), not through every older execution of the account."""
        since = literal(query.since, UTCDateTime())
        left_at = self._left_at(query)
        return and_(
            executions.c.user_id == user_id,
            executions.c.created_at < since,
            or_(left_at.is_(None), left_at >= since),
            or_(executions.c.status.in_(list(query.queued)), executions.c.updated_at >= since),
        )

    async def _left(self, query: StatsQuery, among: Any) -> dict[int, int]:
        """Per bucket: the executions ``among`` that stopped waiting to start in it."""
        left_at = self._left_at(query)
        bucket = self._bucket(query, left_at).label("bucket")
        stmt = select(bucket, func.count()).where(among, left_at.is_not(None)).group_by(bucket)
        return {int(b): int(n) for b, n in await self._rows(stmt)}

    async def _histogram(
        self, query: StatsQuery, recent: Any, end: Any, start: Any
    ) -> dict[int, tuple[int, ...]]:
        """Per bucket: how many of the delays ``end - start`` are at or under each bound, and
        how many there are."""
        delay = self._seconds(end, start)
        bucket = self._bucket(query).label("bucket")
        columns = [_count_if(delay <= bound) for bound in query.bounds]
        stmt = (
            select(bucket, *columns, func.count())
            .where(recent, end.is_not(None), start.is_not(None))
            .group_by(bucket)
        )
        return {int(row[0]): tuple(int(n or 0) for n in row[1:]) for row in await self._rows(stmt)}

    async def changed_executions(
        self, user_id: str, created_after: datetime, updated_after: datetime, limit: int
    ) -> list[Execution]:
        """The user's recent executions changed since ``updated_after``, oldest change first."""
        stmt = (
            select(executions)
            .where(
                executions.c.user_id == user_id,
                executions.c.created_at > literal(created_after, UTCDateTime()),
                executions.c.updated_at > literal(updated_after, UTCDateTime()),
            )
            .order_by(executions.c.updated_at, executions.c.id)
            .limit(limit)
        )
        return await self._records(rows.execution, stmt)

    async def cues_mark(self, user_id: str) -> tuple[int, datetime | None]:
        """The user's number of cues and their latest ``updated_at``."""
        stmt = select(func.count(), func.max(cues.c.updated_at)).where(cues.c.user_id == user_id)
        count, latest = (await self.conn.execute(stmt)).one()
        return int(count), _aware(latest)

    async def _rows(self, stmt: Any) -> list[Any]:
        return list((await self.conn.execute(stmt)).all())


def _aware(value: Any) -> datetime | None:
    """An aggregate's datetime (SQLite hands back text) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
