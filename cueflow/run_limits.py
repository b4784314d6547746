"""Admission: whether a claim or a delivery may start an execution now under its concurrency
and rate limits (:mod:`cueflow.run_controls`), across every node sharing the database.

Claims and the dispatcher first pick candidates (locked, higher priority first, oldest first
within a priority, leaving out executions whose key looks full), then :func:`admit` decides
under the keys' locks: it reads what each key holds now (executions in flight, rate-limit starts
not yet expired) and admits candidates in order while their keys have room. The claim that
follows in the same transaction moves the admitted ones to ``delivering``, and :func:`started`
records their rate-limit starts, before the transaction commits and releases the keys. So two
nodes admitting runs of one key take turns, and each sees the other's committed claims.

A run that is not admitted stays ``pending``: it becomes claimable again when an execution of
its key ends (the concurrency limit) or when the oldest live start of its key expires (the rate
limit). :func:`waiting_for` says which, for the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from cueflow.records import KeyLoad
from cueflow.run_controls import shown_key
from cueflow.states import Status

if TYPE_CHECKING:
    from cueflow.records import Execution
    from cueflow.store import StoreTx

CONCURRENCY = "concurrency"
RATE = "rate"


class Limited(Protocol):
    """What admission reads of a candidate: its id, account and stamped limits."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def concurrency_key(self) -> str | None: ...
    @property
    def concurrency_limit(self) -> int | None: ...
    @property
    def rate_key(self) -> str | None: ...
    @property
    def rate_limit(self) -> int | None: ...
    @property
    def rate_period_seconds(self) -> int | None: ...


L = TypeVar("L", bound=Limited)


@dataclass
class Admission(Generic[L]):
    """What :func:`admit` decided: the admitted candidates (in the order given), the ids held
    back with the limit that held each, and the earliest time a rate limit holding one back
    has room again (``None``: none held back by a rate limit)."""

    admitted: list[L]
    held: dict[str, str] = field(default_factory=dict)
    retry_at: datetime | None = None


def _limited(run: Limited) -> bool:
    return run.concurrency_key is not None or run.rate_key is not None


async def admit(tx: StoreTx, candidates: Sequence[L], now: datetime) -> Admission[L]:
    """Admit ``candidates`` (in order) while their keys have room; the keys stay locked until
    the transaction ends. Candidates without limits are admitted without touching the store."""
    if not any(_limited(run) for run in candidates):
        return Admission(list(candidates))
    concurrency = sorted(
        {(r.user_id, r.concurrency_key) for r in candidates if r.concurrency_key is not None}
    )
    rate = sorted({(r.user_id, r.rate_key) for r in candidates if r.rate_key is not None})
    await tx.lock_limit_keys(concurrency, rate)
    loads = await tx.key_loads(concurrency, rate, now)
    admission: Admission[L] = Admission([])
    for run in candidates:
        why = _held_by(run, loads)
        if why is None:
            admission.admitted.append(run)
            _count(run, loads)
            continue
        admission.held[run.id] = why
        if why == RATE:
            first = loads[(RATE, run.user_id, run.rate_key or "")].first_expiry
            if first is not None and (admission.retry_at is None or first < admission.retry_at):
                admission.retry_at = first
    return admission


def _held_by(run: Limited, loads: dict[tuple[str, str, str], KeyLoad]) -> str | None:
    """The limit that holds ``run`` back now, if any."""
    if run.concurrency_key is not None and run.concurrency_limit is not None:
        load = loads.get((CONCURRENCY, run.user_id, run.concurrency_key))
        if load is not None and load.in_flight >= run.concurrency_limit:
            return CONCURRENCY
    if run.rate_key is not None and run.rate_limit is not None:
        load = loads.get((RATE, run.user_id, run.rate_key))
        if load is not None and load.starts >= run.rate_limit:
            return RATE
    return None


def _count(run: Limited, loads: dict[tuple[str, str, str], KeyLoad]) -> None:
    """Count an admitted run in its keys' loads (the next candidate of a key sees it)."""
    if run.concurrency_key is not None:
        load = loads.setdefault((CONCURRENCY, run.user_id, run.concurrency_key), KeyLoad())
        load.in_flight += 1
    if run.rate_key is not None:
        load = loads.setdefault((RATE, run.user_id, run.rate_key), KeyLoad())
        load.starts += 1


async def started(tx: StoreTx, runs: Sequence[Limited], now: datetime) -> None:
    """Record the rate-limit starts of ``runs``, just claimed or handed to a transport."""
    starts = [
        (run.user_id, run.rate_key, now + timedelta(seconds=run.rate_period_seconds), run.id)
        for run in runs
        if run.rate_key is not None and run.rate_period_seconds is not None
    ]
    if starts:
        await tx.record_starts(starts, now)


async def waiting_for(
    tx: StoreTx, executions: Sequence[Execution], now: datetime
) -> dict[str, dict[str, Any]]:
    """For each ``pending`` execution among ``executions`` that a limit holds back now, what it
    waits for: ``{"reason": "concurrency", "key", "limit", "in_flight", "until": None}`` or
    ``{"reason": "rate_limit", "key", "limit", "period_seconds", "until"}`` (when the oldest
    live start of its key expires). ``key`` is the shared key (``None``: the cue's own)."""
    pending = [e for e in executions if e.status == Status.PENDING and _limited(e)]
    if not pending:
        return {}
    concurrency = sorted(
        {(e.user_id, e.concurrency_key) for e in pending if e.concurrency_key is not None}
    )
    rate = sorted({(e.user_id, e.rate_key) for e in pending if e.rate_key is not None})
    loads = await tx.key_loads(concurrency, rate, now)
    shown: dict[str, dict[str, Any]] = {}
    for execution in pending:
        why = _held_by(execution, loads)
        if why == CONCURRENCY:
            load = loads[(CONCURRENCY, execution.user_id, execution.concurrency_key or "")]
            shown[execution.id] = {
                "reason": CONCURRENCY,
                "key": shown_key(execution.concurrency_key),
                "limit": execution.concurrency_limit,
                "in_flight": load.in_flight,
                "until": None,
            }
        elif why == RATE:
            load = loads[(RATE, execution.user_id, execution.rate_key or "")]
            shown[execution.id] = {
                "reason": "rate_limit",
                "key": shown_key(execution.rate_key),
                "limit": execution.rate_limit,
                "period_seconds": execution.rate_period_seconds,
                "until": load.first_expiry,
            }
    return shown
