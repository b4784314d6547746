"""The SQL of worker claims: what waits for a worker, what a claim sets and gives back, and
PostgreSQL's claim in one statement (run by :mod:`cueflow.sql.claim_queries`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, func, literal, or_, select, update

from cueflow.records import LimitedRun
from cueflow.sql.base import Connector, _lock, bound_values, in_bound, unindexed
from cueflow.sql.limit_queries import in_flight, within_limits
from cueflow.sql.queue import (
    LIMITED,
    QUEUE_ORDER,
    at,
    not_held_back,
    one_of,
    pull_transport,
)
from cueflow.sql.tables import cues, executions
from cueflow.states import Move


def picked_again(move: Move) -> Any:
    """What a claim re-checks of executions :meth:`ClaimQueries.claim_candidates` picked in
    the same transaction: they are locked (PostgreSQL) or the transaction is the only writer
    (SQLite), so only their status, and by primary key (repeating the whole condition would
    lead SQLite to walk the due queue; the status is kept off the indexes, or SQLite would read
    every row of that status through one to find the few asked for)."""
    return one_of(unindexed(executions.c.status), move.sources)


def has_limit(run: LimitedRun) -> bool:
    """Whether admission must decide on ``run`` (it carries a concurrency or rate limit key)."""
    return run.concurrency_key is not None or run.rate_key is not None


def _of_cue(column: Any) -> Any:
    """``column`` of the claimed execution's cue, as a subquery a ``RETURNING`` clause may hold
    (SQLite's may not name another table of an ``UPDATE … FROM``)."""
    return select(column).where(cues.c.id == executions.c.cue_id).scalar_subquery()


CLAIMED = (
    executions.c.id,
    executions.c.cue_id,
    executions.c.scheduled_for,
    executions.c.attempts,
    executions.c.payload_override,
    _of_cue(cues.c.name).label("cue_name"),
    _of_cue(cues.c.task).label("task"),
    _of_cue(cues.c.payload).label("payload"),
)
"""What a claim's ``RETURNING`` gives back: a :class:`~cueflow.records.QueuedRun`."""


def claim_set(move: Move, values: dict[str, Any]) -> dict[str, Any]:
    """What a claim sets: the new status, one more attempt, and ``values`` (bound)."""
    return {
        "status": move.target,
        "attempts": executions.c.attempts + 1,
        **bound_values(executions, values),
    }


def waiting_for_worker(
    move: Move, transports: int, task: bool = False, by_key: bool = False
) -> Any:
    """Executions in ``move.sources`` of a user's ``transports`` pull transports, due by
    ``now`` (bound parameters ``user_id``, the transports, ``now`` and, with ``task``,
    ``task``). ``by_key``: the condition re-checks executions found by their ids, so its
    owner and status are kept off the indexes (:func:`~cueflow.sql.base.unindexed`: without
    statistics PostgreSQL served a claim by id from the queue index, reading every waiting
    execution of the account)."""
    owner, status = executions.c.user_id, executions.c.status
    if by_key:
        owner, status = unindexed(owner), unindexed(status)
    waiting = and_(
        owner == bindparam("p_user_id"),
        one_of(status, move.sources),
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


def claim_due_statement(
    connector: Connector, move: Move, values: dict[str, Any], transports: int, due: bool, task: bool
) -> Any:
    """PostgreSQL's :meth:`~cueflow.sql.claim_queries.ClaimQueries.claim_due`: one
    statement. ``picked`` locks the candidates (materialized, so the ``LIMIT ... SKIP LOCKED``
    runs once); ``ranked`` places the picks without a rate key in their concurrency key's
    queue, beside what the key has in flight; ``claimed`` updates, joined with their cue, the
    picks without a limit key and, when the picks carry one concurrency key and no rate key,
    those whose place fits the key's room; every pick comes back in queue order with the
    claimed columns set on the ones claimed, the rest for admission.

    The room read here only keeps the queue order among a key's picks: the key's gate
    trigger (migration 0014) is what admits, under the gate's lock, refusing a move that a
    claim committed meanwhile has made one too many (such a pick comes back unclaimed).
    With one gate per statement and no advisory lock after it, claims take their locks in
    one order. The update re-checks nothing else: its rows were picked and locked by the
    same statement (a status condition there would also lead the planner to walk the status
    index instead of the picks' keys)."""
    waiting = waiting_for_worker(move, transports, task, by_key=not due)
    picked_stmt = select(*LIMITED, executions.c.priority, executions.c.scheduled_for)
    if due:
        picked_stmt = picked_stmt.where(waiting, within_limits(at("p_now")))
        picked_stmt = picked_stmt.limit(bindparam("p_limit"))
    else:
        picked_stmt = picked_stmt.where(in_bound(executions.c.id, "p_ids"), waiting)
    picked = (
        _lock(picked_stmt.order_by(*QUEUE_ORDER), connector)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
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
            in_flight(picked.c.user_id, picked.c.concurrency_key).label("in_flight"),
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
                and_(one_gate, ranked.c.in_flight + ranked.c.place <= ranked.c.concurrency_limit),
            ),
            cues.c.id == executions.c.cue_id,
        )
        .values(claim_set(move, values))
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
