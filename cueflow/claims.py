"""Pull delivery: claimable work and claims.

A claim picks its candidates locked (``SKIP LOCKED`` on PostgreSQL), higher priority first,
admits them under their concurrency and rate limits (:mod:`cueflow.run_limits`) and moves them
with one conditional update, so of N racing workers exactly one wins each execution and no key
goes over its limit. The claim holds a lease of ``WORKER_CLAIM_TIMEOUT_SECONDS``; heartbeats,
release and the lease sweeper are :mod:`cueflow.leases`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.ids as ids
import cueflow.run_limits as run_limits
from cueflow.authentication import Principal
from cueflow.errors import Conflict
from cueflow.records import LimitedRun, QueuedRun
from cueflow.states import Event, Status, move

if TYPE_CHECKING:
    from cueflow.longpoll import LongPolls
    from cueflow.services import Services
    from cueflow.store import StoreTx

CLAIMABLE_LIMIT = 50
"""Items in a claimable list unless the caller asks for another ``limit``."""
MAX_LIMIT = 100
"""Most items one claimable list or one batch claim holds."""
CLAIM_TRIES = 3
"""Looks a claim-next makes when another node took the room of the key it picked."""
MAX_WAIT_SECONDS = 60.0
"""Longest a long-poll (``wait``) holds a request open (see :mod:`cueflow.longpoll`)."""
CLAIMED = "claimed"
"""The ``status`` a claim answer shows (as CueAPI's Workers document does). No execution has
this status: a claimed execution is ``delivering`` with its worker set."""


async def claimable_rows(
    services: Services, user_id: str, task: str | None, limit: int = MAX_LIMIT
) -> list[QueuedRun]:
    """One look: the executions ``user_id``'s workers may claim now, oldest first."""
    async with services.store.tx(single_statement=True) as tx:
        return await tx.claimable(
            user_id,
            services.transports.pull(),
            [Status.PENDING.value],
            services.clock.now(),
            task,
            min(max(limit, 1), MAX_LIMIT),
        )


async def claimable(
    services: Services,
    long_polls: LongPolls,
    user: Principal,
    task: str | None,
    limit: int = CLAIMABLE_LIMIT,
    wait: float = 0,
) -> list[QueuedRun]:
    """Executions the caller's workers may claim now, oldest first (the task filter applies
    before the limit, unlike CueAPI). With ``wait`` seconds, an empty answer is held back until
    something is claimable or the time is up (long-poll, sharing the look of the account's
    other waits: :mod:`cueflow.longpoll`)."""
    limit = min(max(limit, 1), MAX_LIMIT)
    deadline = services.clock.now() + timedelta(seconds=min(max(wait, 0), MAX_WAIT_SECONDS))
    if wait > 0 and long_polls.watched(user.user_id, task):
        # the account's waits share a look that has found nothing since the last signal
        rows = await long_polls.wait(user.user_id, task, deadline)
        return rows[:limit]
    while True:
        ticket = services.signals.work.ticket()
        rows = await claimable_rows(services, user.user_id, task, limit)
        if rows or services.clock.now() >= deadline:
            return rows
        if not ticket.is_set():  # else work may have come since the look: look again
            return (await long_polls.wait(user.user_id, task, deadline, ticket))[:limit]


_WORKER_CLAIM = move(Event.CLAIM, only=[Status.PENDING])
"""A worker claims ``pending`` executions only (``retry_ready`` belongs to push delivery): one
status, so the queue index hands out the oldest without sorting the whole due queue."""


def _claim_values(services: Services, worker_id: str, now: datetime) -> dict[str, Any]:
    lease = services.settings.worker_claim_timeout_seconds
    return {
        "claimed_by_worker": worker_id,
        "claimed_at": now,
        "started_at": now,
        "last_attempt_at": now,
        "last_heartbeat_at": None,
        "next_retry": None,
        "lease_expires_at": now + timedelta(seconds=lease),
        "updated_at": now,
    }


async def claim(
    services: Services, user: Principal, worker_id: str, execution_id: str | None = None
) -> dict[str, Any]:
    """Claim ``execution_id`` (or the oldest due one) for ``worker_id``; 409 ``claim_failed``
    when another worker won, it is not claimable, not due, or not the caller's."""
    if execution_id is not None and not ids.is_uuid(execution_id):
        raise Conflict("Execution not available for claiming", code="claim_failed")
    now = services.clock.now()
    lease = services.settings.worker_claim_timeout_seconds
    row = None
    wanted = None if execution_id is None else [execution_id]
    for _ in range(CLAIM_TRIES):
        # a unit of work per look: a look may lock a concurrency key's gate, and a later look
        # in the same transaction locking another key's could deadlock with a claim elsewhere
        picks = await _look(services, user, worker_id, wanted, 1, None, now)
        row = picks.claimed[0] if picks.claimed else None
        if row is not None:
            break
        if execution_id is not None and picks.held:
            raise _held_back(picks.held[execution_id])
        if not picks.held:
            break  # nothing claimable; else another node took the key's room: look again
    if row is None:
        services.metrics.claim_conflicts.labels(
            "next" if execution_id is None else "execution"
        ).inc()
        message = (
            "No executions available for claiming"
            if execution_id is None
            else "Execution not available for claiming"
        )
        raise Conflict(message, code="claim_failed")
    services.metrics.claims.inc()
    return claim_answer(row.id, now, lease)


def claim_answer(execution_id: str, claimed_at: datetime, lease_seconds: int) -> dict[str, Any]:
    """A won claim in both shapes at once (their keys do not collide): the open server's
    ``claimed``/``execution_id``/``lease_seconds``, which the official clients read, and the
    ``id``/``status``/``claimed_at`` that CueAPI's Workers document shows."""
    return {
        "claimed": True,
        "execution_id": execution_id,
        "lease_seconds": lease_seconds,
        "id": execution_id,
        "status": CLAIMED,
        "claimed_at": claimed_at,
    }


@dataclass
class ClaimBatch:
    """What one batch claim got: the claimed executions (oldest first, each with its cue's
    name, task and payload), their common lease and claim time, and the asked-for ids that
    could not be claimed."""

    claimed: list[QueuedRun]
    lease_seconds: int
    lease_expires_at: datetime
    refused: list[str] = field(default_factory=list)

    @property
    def claimed_at(self) -> datetime:
        """When the claims were made (their common lease started then)."""
        return self.lease_expires_at - timedelta(seconds=self.lease_seconds)


async def claim_batch(
    services: Services,
    long_polls: LongPolls,
    user: Principal,
    worker_id: str,
    *,
    limit: int = 10,
    execution_ids: Sequence[str] | None = None,
    task: str | None = None,
    wait: float = 0,
) -> ClaimBatch:
    """Claim several executions in one transaction (cueflow extension): the given
    ``execution_ids`` that are still claimable, or up to ``limit`` of the oldest due ones
    (of ``task`` when given). Each claim has exactly the semantics of a single claim: one
    lease each, attempts counted, and an execution goes to one worker only. With ``wait``
    seconds and no ids, an empty result is held back until work arrives (long-poll)."""
    limit = min(max(limit, 1), MAX_LIMIT)
    wanted = None if execution_ids is None else list(dict.fromkeys(execution_ids))[:MAX_LIMIT]
    valid = None if wanted is None else [i for i in wanted if ids.is_uuid(i)]
    deadline = services.clock.now() + timedelta(seconds=min(max(wait, 0), MAX_WAIT_SECONDS))
    lease = services.settings.worker_claim_timeout_seconds
    while True:
        ticket = services.signals.work.ticket()
        now = services.clock.now()
        rows: list[QueuedRun] = []
        if valid is None or valid:
            rows = (await _look(services, user, worker_id, valid, limit, task, now)).claimed
        if rows or wanted is not None or services.clock.now() >= deadline:
            break
        if not ticket.is_set() and not await long_polls.wait(user.user_id, task, deadline, ticket):
            break  # the wait is over (or the account may not wait more): nothing claimed
    got = {row.id for row in rows}
    refused = [i for i in wanted or [] if i not in got]
    services.metrics.claims.inc(len(rows))
    services.metrics.claim_conflicts.labels("execution").inc(len(refused))
    return ClaimBatch(rows, lease, now + timedelta(seconds=lease), refused)


@dataclass
class _Picks:
    """What one look of a claim got: the claimed executions in queue order, and the ids a
    limit held back with the limit that held each."""

    claimed: list[QueuedRun]
    held: dict[str, str]
    unadmitted: list[str] = field(default_factory=list)
    """Picks under a limit that a unit of work outside a transaction left unchanged, for a
    transaction to admit, and every pick's id in queue order (set with them)."""
    order: list[str] = field(default_factory=list)


async def _look(
    services: Services,
    user: Principal,
    worker_id: str,
    execution_ids: list[str] | None,
    limit: int,
    task: str | None,
    now: datetime,
) -> _Picks:
    """One look of a claim (see :func:`_claim_picked`). It is first made as a single
    statement, outside a transaction where the store can (PostgreSQL: no ``BEGIN`` and
    ``COMMIT`` round trips); only when that picks runs that admission must decide on, whose
    locks ended with the statement, is the look made again in a transaction that admits them
    (they were left unchanged; the picks claimed with the pick stay claimed)."""
    async with services.store.tx(single_statement=True) as tx:
        picks = await _claim_picked(services, tx, user, worker_id, execution_ids, limit, task, now)
    if not picks.unadmitted:
        return picks
    wanted = picks.unadmitted
    async with services.store.tx() as tx:
        later = await _claim_picked(services, tx, user, worker_id, wanted, len(wanted), task, now)
    place = {execution_id: index for index, execution_id in enumerate(picks.order)}
    claimed = sorted([*picks.claimed, *later.claimed], key=lambda run: place[run.id])
    return _Picks(claimed, later.held)


async def _claim_picked(
    services: Services,
    tx: StoreTx,
    user: Principal,
    worker_id: str,
    execution_ids: list[str] | None,
    limit: int,
    task: str | None,
    now: datetime,
) -> _Picks:
    """Pick and claim in ``tx``: the given executions, or up to ``limit`` of the due ones,
    higher priority first. Picks without limits are claimed with the pick (one statement on
    PostgreSQL); picks under a concurrency or rate limit are admitted first, which needs
    ``tx`` to be :attr:`~cueflow.store.StoreTx.atomic` (when it is not, they come back
    ``unadmitted``, unchanged)."""
    values = _claim_values(services, worker_id, now)
    wanted = limit if execution_ids is None else len(execution_ids)
    picks = await tx.claim_due(
        user.user_id,
        services.transports.pull(),
        execution_ids,
        wanted,
        task,
        _WORKER_CLAIM,
        now,
        values,
    )
    limited = [pick for pick in picks if isinstance(pick, LimitedRun)]
    if not limited:
        return _Picks([pick for pick in picks if isinstance(pick, QueuedRun)], {})
    if not tx.atomic:
        claimed = [pick for pick in picks if isinstance(pick, QueuedRun)]
        return _Picks(claimed, {}, [run.id for run in limited], [pick.id for pick in picks])
    admission = await run_limits.admit(tx, limited, now)
    late: dict[str, QueuedRun] = {}
    if admission.admitted:
        admitted = [run.id for run in admission.admitted]
        late = {row.id: row for row in await tx.claim_many(admitted, _WORKER_CLAIM, values)}
        await run_limits.started(tx, [run for run in admission.admitted if run.id in late], now)
    claimed = [
        pick if isinstance(pick, QueuedRun) else late[pick.id]
        for pick in picks
        if isinstance(pick, QueuedRun) or pick.id in late
    ]
    return _Picks(claimed, admission.held)


def _held_back(limit: str) -> Conflict:
    """The 409 of a claim by id that a concurrency or rate limit holds back."""
    if limit == run_limits.CONCURRENCY:
        return Conflict(
            "Execution is held back by its concurrency limit; claim it when a run of its key ends",
            code="concurrency_limited",
        )
    return Conflict(
        "Execution is held back by its rate limit; claim it when the limit's window allows",
        code="rate_limited",
    )
