"""The worker queue's shared pieces: its order, the columns admission reads, and the
filters of claimable work (used by claims, and by push delivery for the order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, or_

from cueflow.sql.base import Unindexed
from cueflow.sql.tables import executions

QUEUE_ORDER = (executions.c.priority.desc(), executions.c.scheduled_for)
"""How waiting executions are handed out: higher priority first, then oldest (the order of the
``ix_executions_queue`` index, so no sort of the whole queue)."""

LIMITED = (
    executions.c.id,
    executions.c.user_id,
    executions.c.concurrency_key,
    executions.c.concurrency_limit,
    executions.c.rate_key,
    executions.c.rate_limit,
    executions.c.rate_period_seconds,
)
"""What admission reads of a claim candidate (a :class:`~cueflow.records.LimitedRun`)."""


def pull_transport(count: int) -> Any:
    """The worker queue's filter on ``count`` transports (bound by :func:`transport_params`):
    an equality for one, so that no ``IN`` list is expanded each time the statement runs. Kept
    off the indexes on SQLite: its planner, without statistics, would otherwise prefer the
    dispatch index ``(status, transport, scheduled_for)`` to the queue index and sort the whole
    due queue by priority."""
    column = Unindexed(executions.c.transport)
    if count == 1:
        return column == bindparam("p_transport")
    return column.in_(bindparam("p_transports", expanding=True))


def transport_params(transports: Sequence[str]) -> dict[str, Any]:
    """The bound parameters of :func:`pull_transport`."""
    if len(transports) == 1:
        return {"p_transport": transports[0]}
    return {"p_transports": list(transports)}


def one_of(column: Any, values: Sequence[str]) -> Any:
    """``column`` is one of ``values`` (fixed in the statement): an equality for one value."""
    return column == values[0] if len(values) == 1 else column.in_(list(values))


def not_held_back() -> Any:
    """A released worker execution waits out its retry delay (``next_retry``, bound ``now``)."""
    return or_(executions.c.next_retry.is_(None), executions.c.next_retry <= at("p_now"))


def at(name: str) -> Any:
    """A bound datetime parameter, typed like the execution timestamps."""
    return bindparam(name, type_=executions.c.scheduled_for.type)
