"""Push delivery: the dispatcher's candidate statement, and the conditions of waiting push
executions that delivery statements share (built once, with bound parameters)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    and_,
    any_,
    bindparam,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)

from cueflow.sql.base import _lock, unindexed
from cueflow.sql.limit_queries import within_limits
from cueflow.sql.queue import QUEUE_ORDER
from cueflow.sql.tables import cues, executions


def now_param() -> Any:
    """The bound ``p_now``, typed as the store keeps times."""
    return bindparam("p_now", type_=executions.c.scheduled_for.type)


def bound_waiting(with_tasks: bool, status: Callable[[Any], Any] = lambda column: column) -> Any:
    """Executions of the bound ``p_transport`` in ``p_sources`` due by ``p_now`` (of
    ``p_tasks``), for statements built once (``status`` wraps the status column, e.g. in
    :class:`~cueflow.sql.base.Unindexed`)."""
    condition = and_(
        status(executions.c.status).in_(bindparam("p_sources", expanding=True)),
        executions.c.transport == bindparam("p_transport"),
        executions.c.scheduled_for <= now_param(),
    )
    return and_(condition, served()) if with_tasks else condition


def served() -> Any:
    """The execution's cue has one of the bound ``p_tasks``."""
    return (
        select(literal(1))
        .where(
            cues.c.id == executions.c.cue_id,
            cues.c.task.in_(bindparam("p_tasks", expanding=True)),
        )
        .exists()
    )


def candidates(connector: Any, with_tasks: bool, with_skip: bool, sources: Sequence[str]) -> Any:
    """The statement of :meth:`~cueflow.sql.delivery_queries.DeliveryQueries.due_deliveries`,
    with bound ``p_transport``,
    ``p_sources``, ``p_now``, ``p_limit``, ``p_per_account`` (and ``p_tasks``, ``p_skip``);
    ``sources`` (``p_sources``) are also written out, so that the waiting index serves them.

    It reads each account's first ``p_per_account`` from the waiting index rather than ranking
    every due execution: the accounts with waiting executions of the transport one index seek
    each (a recursive skip over the index), then each one's first few in hand-out order."""
    limited = within_limits(now_param())
    waiting_index = executions.c.status.in_([literal_column(f"'{s}'") for s in sorted(sources)])
    after = executions.alias("after")
    waiting_after = after.c.status.in_([literal_column(f"'{s}'") for s in sorted(sources)])
    transport: Any = bindparam("p_transport")
    first = (
        select(after.c.user_id)
        .where(waiting_after, after.c.transport == transport)
        .order_by(after.c.user_id)
        .limit(1)
        .scalar_subquery()
    )
    accounts = select(first.label("user_id")).cte("accounts", recursive=True)
    following = (
        select(after.c.user_id)
        .where(waiting_after, after.c.transport == transport, after.c.user_id > accounts.c.user_id)
        .order_by(after.c.user_id)
        .limit(1)
        .scalar_subquery()
    )
    accounts = accounts.union_all(
        select(following.label("user_id")).where(accounts.c.user_id.is_not(None))
    )
    # each account's first few, found through the waiting index (in its order)
    firsts = (
        select(executions)
        .where(
            waiting_index,
            executions.c.transport == transport,
            executions.c.user_id == accounts.c.user_id,
            executions.c.scheduled_for <= now_param(),
            served() if with_tasks else true(),
            limited,
        )
        .order_by(*QUEUE_ORDER, executions.c.id)
        .limit(bindparam("p_per_account", type_=Integer()))
    )
    present: Any = accounts.c.user_id.is_not(None)
    if with_skip:
        present = and_(present, accounts.c.user_id.not_in(bindparam("p_skip", expanding=True)))
    if connector.name == "postgresql":
        # a lateral join: PostgreSQL would test every waiting row against the list instead
        picked: Any = firsts.lateral("picked")
        found = accounts.join(picked, true())
    else:  # SQLite has no LATERAL; it looks the listed rows up by key
        picked = executions.alias("picked")
        listed = firsts.with_only_columns(executions.c.id).correlate(accounts)
        found = accounts.join(picked, picked.c.id.in_(listed))
    ranked = (
        select(
            picked.c.id,
            picked.c.scheduled_for,
            picked.c.priority,
            func.row_number()
            .over(
                partition_by=picked.c.user_id,
                order_by=(picked.c.priority.desc(), picked.c.scheduled_for, picked.c.id),
            )
            .label("turn"),
        )
        .select_from(found)
        .where(present)
        .subquery()
    )
    fair = (
        select(ranked.c.id)
        .order_by(ranked.c.turn, ranked.c.priority.desc(), ranked.c.scheduled_for, ranked.c.id)
        .limit(bindparam("p_limit", type_=Integer()))
        .subquery("fair")
    )
    if connector.name == "postgresql":
        # the list as one array, computed first, and a re-check that no index serves (the
        # transport and time of a row never change): PostgreSQL, without statistics of a table
        # just filled, would otherwise read every waiting row rather than look ten up by key
        chosen = select(func.array_agg(fair.c.id)).scalar_subquery()
        by_key = executions.c.id == any_(cast(chosen, ARRAY(executions.c.id.type)))
        still = executions.c.status.concat("").in_(bindparam("p_sources", expanding=True))
        recheck = and_(still, served()) if with_tasks else still
    else:
        by_key = executions.c.id.in_(select(fair.c.id))
        recheck = bound_waiting(with_tasks, unindexed)
    if with_skip:
        limited = and_(limited, executions.c.user_id.not_in(bindparam("p_skip", expanding=True)))
    url = select(cues.c.callback_url).where(cues.c.id == executions.c.cue_id)
    return _lock(
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
        # the chosen rows again, looked up by key: checked once more (the rows locked may have
        # moved on meanwhile) but kept off the indexes of waiting rows, which would read every
        # due row
        .where(by_key, recheck, limited)
        .order_by(*QUEUE_ORDER),
        connector,
        executions,
    )
