"""Push delivery: the dispatcher that hands due executions to push transports and records how
each attempt went.

It serves every :class:`cueflow.transport.PushTransport` alike (the webhook transport, and any
other push transport a plugin adds). A push execution moves through the contract's statuses, each
change an :class:`cueflow.states.Event` applied by a conditional update:

* ``pending`` / ``retry_ready`` → ``delivering`` (``CLAIM``): due executions are claimed in
  batches, ``SKIP LOCKED`` on PostgreSQL so several nodes share the work without taking the same
  row. A claim counts the attempt (``attempts`` + 1) and holds a lease of the transport's
  ``lease_seconds``. The transport's ``deliver`` then runs outside any store transaction, at most
  ``delivery_concurrency`` (``WEBHOOK_CONCURRENCY_PER_WORKER``, default 50) at once.
* ``delivering`` → ``success`` (``SUCCEEDED``) when the transport accepted it; → ``retrying``
  (``RETRY_SCHEDULED``) with ``next_retry`` stored when it failed with attempts left; →
  ``failed`` (``FAILED``) when the cue's ``retry.max_attempts`` (which counts the first attempt)
  are used up, and then ``on_failure`` applies: a one-time cue fails, a recurring cue with
  ``pause: true`` is paused, and :mod:`cueflow.alerts` stores an alert and sends the signed
  ``cue.failed`` notice. Every attempt adds one to the cue's ``run_count``; success and final
  failure set its ``last_run``; a one-time cue whose execution succeeds is ``completed``.
* ``retrying`` → ``retry_ready`` (``RETRY_DUE``) once ``next_retry`` has passed.

The slots are shared fairly between accounts and destinations (:mod:`cueflow.fair_share`). The
store proposes candidates
(:meth:`cueflow.store.StoreTx.due_deliveries`: each account's oldest few); only those chosen are
claimed, in the same transaction, so a candidate left out stays ``pending``.

A transport that does the work itself (the in-process transport) marks its results
``is_outcome``: the dispatcher then also writes the execution's outcome in the transaction that
changes its status — ``outcome.success`` and ``outcome.result`` on success, ``outcome.error``
when the last attempt fails (earlier failed attempts only set ``error_message``, as outcomes are
write-once) — and ``outcome_state`` follows the cue's verification mode.

A transport may bound its own deliveries in flight
(:class:`cueflow.transport.ConcurrencyBound`); the dispatcher claims no more than that. A
transport that serves only some tasks here (:class:`cueflow.transport.TaskRouter`) is handed
only executions of those tasks; the rest stay ``pending`` for a process that serves them, and
once one has been due for twice ``delivery_poll_seconds`` its
``error_message`` says what it waits for (set once; the status does not change).

How an attempt's result is recorded (attempts finishing together in one transaction,
:class:`cueflow.push_attempts.AttemptRecorder`), and how long a retry waits, is
:mod:`cueflow.push_attempts`. While the dispatcher loop runs, a finished attempt wakes it and
its next pass records the result in the transaction that claims work for the slot it frees (a
burst then costs one write transaction per pass, not one more per batch of results); the
delivery task ends once that transaction is committed. ``next_retry`` is stored, so a restart
neither loses nor repeats a pending retry.

Delivery is **at least once**. When a lease ends with no result recorded — the process died or
was stopped between sending and recording — the attempt counts as failed (``error_message``
says it was interrupted) and the execution is retried or failed like any other failed attempt.
A receiver may therefore see an execution twice and should be idempotent on ``execution_id``.

Stopping (:meth:`Dispatcher.drain`, on SIGTERM and when the engine closes) starts nothing new and
gives deliveries in flight up to ``graceful_timeout_seconds`` to finish and be recorded; those
still running then are cancelled and their executions go back to the queue at once
(:func:`cueflow.push_attempts.release_unfinished`), so no execution stays ``delivering`` under
this process's lease.

The dispatcher loop (started with the engine) wakes when the scheduler creates executions
(:meth:`cueflow.signals.Signals.executions_created`) and when a delivery finishes, and otherwise
sleeps until the next pending execution, retry or lease expiry — at most
``delivery_poll_seconds``, the bound on how late it notices work another node left behind.
Tests drive it with :meth:`Dispatcher.deliver_due` instead.

Long because: a pass, the loop that runs passes and drain read and change the same state (the
deliveries in flight and their slots, the results a pass records, the wake-ups), kept in one
class.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Coroutine, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import cueflow.alerts as alerts
import cueflow.logs as logs
import cueflow.run_limits as run_limits
import cueflow.tracing as tracing
from cueflow.fair_share import Slot, destination, share
from cueflow.push_attempts import (
    INTERRUPTED,
    AttemptRecorder,
    FinishedAttempt,
    attempt_failed,
    delivery_of,
    record_attempts_in,
    release_unfinished,
)
from cueflow.records import DueDelivery
from cueflow.states import Event, Status, move
from cueflow.transport import (
    ConcurrencyBound,
    DeliveryResult,
    Notice,
    PushTransport,
    TaskRouter,
    conforms,
)

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)

LEASE_SWEEP_LIMIT = 500
WAITING_MARK_LIMIT = 500
_RACE_PAUSE = timedelta(milliseconds=100)
RESULT_BATCH_SECONDS = 0.002
"""How long the dispatcher loop waits, after an attempt finishes, for others to finish before
the pass that records them (and claims work for their slots): a burst's results then share
passes instead of taking one each."""
CANDIDATES_PER_SLOT = 4
"""Candidates read per free slot, so that some are left when others are over a cap."""


def tasks_of(transport: PushTransport) -> frozenset[str] | None:
    """The tasks ``transport`` can deliver in this process (a :class:`TaskRouter`), or ``None``
    when it delivers every execution."""
    return frozenset(cast(TaskRouter, transport).tasks) if conforms(transport, TaskRouter) else None


class Dispatcher:
    """Claims due push executions, runs their deliveries with bounded concurrency and records
    the results; one per engine, any number per database."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.wakeup = services.signals.dispatcher
        self.recorder = AttemptRecorder(services)
        """Records finished attempts, those finishing together in one transaction."""
        self._running: dict[asyncio.Task[None], Slot] = {}
        """Tasks in flight, with what each delivery is for."""
        self._claims: dict[asyncio.Task[None], DueDelivery] = {}
        """The claimed execution of each delivery task in flight (alert sends have none)."""
        self._settling: set[asyncio.Task[Any]] = set()
        """Delivery tasks whose result a pass recorded, about to end: their slots are free."""
        self._next_waiting_check: datetime | None = None
        self._wake_later: asyncio.TimerHandle | None = None
        self._limits_retry_at: datetime | None = None
        """When a rate limit that held work back in the last pass has room again."""
        self._full = False
        """Whether the last pass used every free slot or left due work for a cap: only then may
        a finished delivery make room for work that is already due (otherwise the loop's own
        timer covers it)."""

    def free_slots(self, transport: str | None = None) -> int:
        """How many more deliveries may start now (of ``transport``, when given: its own
        ``concurrency`` bound applies too)."""
        active = self._active()
        free = self.services.settings.delivery_concurrency - len(active)
        if transport is not None:
            own = self.services.transports.push().get(transport)
            if own is not None and conforms(own, ConcurrencyBound):
                bound = cast(ConcurrencyBound, own).concurrency
                busy = sum(1 for slot in active if slot.transport == transport)
                free = min(free, bound - busy)
        return max(0, free)

    def _active(self) -> list[Slot]:
        """The slots of the tasks in flight, but for those whose result is recorded."""
        if not self._settling:
            return list(self._running.values())
        return [slot for task, slot in self._running.items() if task not in self._settling]

    def capped_accounts(self, busy: Iterable[Slot] = ()) -> list[str]:
        """Accounts with ``delivery_per_account_concurrency`` deliveries in flight (also
        counting ``busy``): none of theirs may start now."""
        cap = self.services.settings.delivery_per_account_concurrency
        if not cap:
            return []
        counts = Counter(slot.account for slot in (*self._active(), *busy))
        return [account for account, n in counts.items() if account and n >= cap]

    async def dispatch(self) -> int:
        """One pass: record the results of attempts that finished, fail attempts whose lease
        ran out, make due retries ready, claim due executions for the free delivery slots and
        start delivering them. Returns how many deliveries started (they run on as tasks)."""
        services = self.services
        push = services.transports.push()
        if not push:
            return 0
        await self._mark_waiting(push)
        finished = self.recorder.take()
        self._settling.update(attempt.task for attempt in finished if attempt.task is not None)
        now = services.clock.now()
        self._limits_retry_at = None
        claimed: list[tuple[Slot, PushTransport, DueDelivery]] = []
        held_back = False
        first = True
        try:
            for name, transport in push.items():
                slots = min(self.free_slots() - len(claimed), self.free_slots(name))
                if tasks_of(transport) == frozenset():
                    slots = 0  # serves no task here: nothing to claim (its waiting is marked)
                if slots <= 0 and not first:
                    continue
                # a transaction per transport: each admission locks its limit keys in sorted
                # order, which two admissions in one transaction would not keep
                async with services.store.tx() as tx:
                    if first:
                        recorded, notices = await self._settle(tx, finished, list(push), now)
                        if notices:
                            slots -= 1  # sending them takes a slot too, once committed
                    rows: list[DueDelivery] = []
                    left = False
                    if slots > 0:
                        taken = [s for s, *_ in claimed]
                        rows, left = await self._claim(tx, transport, now, slots, taken)
                if first:
                    # committed: the results' slots are taken again by the claims above
                    self.recorder.settle(finished, recorded)
                    finished, first = [], False
                    if notices:
                        self._spawn(alerts.send(services, notices), Slot(None))
                held_back = held_back or left
                claimed.extend(
                    (Slot(name, row.user_id, destination(row.callback_url)), transport, row)
                    for row in rows
                )
        except BaseException:
            if finished:  # not recorded: the recorder writes them itself
                self._settling.difference_update(attempt.task for attempt in finished)
                self.recorder.give_back(finished)
            raise
        used = {name: sum(1 for s, *_ in claimed if s.transport == name) for name in push}
        self._full = (
            held_back
            or self.free_slots() <= len(claimed)
            or any(self.free_slots(name) <= used[name] for name in push)
        )
        for slot, transport, row in claimed:
            self._spawn(self._deliver(transport, row), slot, row)
        return len(claimed)

    async def _settle(
        self, tx: Any, finished: list[FinishedAttempt], transports: list[str], now: datetime
    ) -> tuple[list[Notice | None], list[Notice]]:
        """A pass's first work, in the transaction of its first claim: record the results of
        the attempts ``finished`` (their notices, in order), fail the attempts whose lease ran
        out (the notices to send) and make due retries ready."""
        recorded: list[Notice | None] = []
        if finished:
            attempts = [(attempt.run, attempt.result) for attempt in finished]
            recorded = await record_attempts_in(self.services, tx, attempts)
        notices = await self._expire_leases(tx, transports)
        await tx.promote_retries(transports, move(Event.RETRY_DUE), now, {"updated_at": now})
        return recorded, notices

    async def _claim(
        self, tx: Any, transport: PushTransport, now: datetime, slots: int, taken: list[Slot]
    ) -> tuple[list[DueDelivery], bool]:
        """Claim up to ``slots`` due executions of ``transport``, shared fairly (``taken``:
        slots this pass claimed already); also says whether due work was left for a cap."""
        settings = self.services.settings
        per_account = settings.delivery_per_account_concurrency
        capped = self.capped_accounts(taken)
        each = min(per_account, slots) if per_account else slots
        candidates = await tx.due_deliveries(
            transport.name,
            move(Event.CLAIM),
            now,
            slots * CANDIDATES_PER_SLOT,
            each,
            tasks_of(transport),
            capped,
        )
        # an account that filled its share of candidates may have more due work than it read
        more = any(n >= each for n in Counter(c.user_id for c in candidates).values())
        busy = [*self._active(), *taken]
        chosen = share(candidates, slots, busy, per_account, settings.delivery_per_host_concurrency)
        admission = await run_limits.admit(tx, chosen, now)
        if admission.retry_at is not None:
            self._limits_retry_at = min(
                self._limits_retry_at or admission.retry_at, admission.retry_at
            )
        chosen = admission.admitted
        left = more or bool(capped or admission.held) or len(chosen) < min(slots, len(candidates))
        if not chosen:
            return [], left
        values = {
            "lease_expires_at": now + timedelta(seconds=transport.lease_seconds),
            "last_attempt_at": now,
            "updated_at": now,
        }
        rows = await tx.claim_deliveries(
            transport.name,
            move(Event.CLAIM),
            now,
            len(chosen),
            values,
            tasks_of(transport),
            ids=[row.id for row in chosen],
        )
        got = {row.id for row in rows}
        await run_limits.started(tx, [run for run in chosen if run.id in got], now)
        return rows, left

    async def deliver_due(self) -> int:
        """Deliver everything due now and wait for every started delivery (and its alerts) to be
        recorded; returns how many delivery attempts were made."""
        made = 0
        while True:
            started = await self.dispatch()
            made += started
            if not started and not self._running:
                return made
            if self._running:
                await asyncio.wait(set(self._running))

    async def next_due(self) -> datetime | None:
        """When the dispatcher next has work it can take: a pending execution, a retry or a
        lease expiry of a transport with a free slot (a busy one wakes the loop when a delivery
        finishes); pending work of accounts at their cap waits for such a wake-up too."""
        push = {n: t for n, t in self.services.transports.push().items() if self.free_slots(n)}
        if not push:
            return None
        routed = {name: tasks for name, t in push.items() if (tasks := tasks_of(t)) is not None}
        now = self.services.clock.now()
        async with self.services.store.tx() as tx:
            when = await tx.next_delivery_due(list(push), routed, self.capped_accounts(), now)
        retry_at = self._limits_retry_at
        if retry_at is not None and (when is None or retry_at < when):
            return retry_at  # a rate limit held work back: its window has room then
        return when

    async def run(self) -> None:
        """Dispatch, then sleep until work is due, a delivery finishes or new executions exist."""
        clock = self.services.clock
        poll = timedelta(seconds=self.services.settings.delivery_poll_seconds)
        self.recorder.collect(self._results_waiting)  # results are recorded by the passes below
        try:
            await self._loop(clock, poll)
        finally:
            self.recorder.collect(None)

    async def _loop(self, clock: Any, poll: timedelta) -> None:
        while True:
            self.wakeup.clear()
            self.services.loops.pulse("dispatcher").busy()
            when: datetime | None = None
            try:
                await self.dispatch()
                if self.free_slots() > 0:
                    when = await self.next_due()
            except Exception:
                log.exception("delivery cycle failed; retrying in 1 s")
                when = clock.now() + timedelta(seconds=1)
            self.services.loops.pulse("dispatcher").idle()
            now = clock.now()
            if when is not None and when <= now:
                # Due work this pass could not take (rows another node holds): look again soon.
                when = now + _RACE_PAUSE
            await clock.sleep_until(min(when or now + poll, now + poll), self.wakeup)

    async def drain(self, grace: float) -> int:
        """Let deliveries in flight (and alert sends) finish for up to ``grace`` seconds, then
        cancel the rest and give their executions back to the queue at once, the interrupted
        attempt not counted (the dispatcher loop must be stopped first: nothing new starts).
        Returns how many executions went back."""
        tasks = set(self._running)
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=max(grace, 0.0))
        unfinished = [row for task, row in self._claims.items() if task in pending]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if not unfinished:
            return 0
        try:
            released = await release_unfinished(self.services, unfinished)
        except Exception:  # the database is gone: the leases run out and they are retried
            log.exception("could not give %d unfinished deliveries back", len(unfinished))
            return 0
        log.warning(
            "stopping: %d deliveries still running after %.1f s went back to the queue",
            released,
            grace,
        )
        return released

    async def _mark_waiting(self, push: dict[str, PushTransport]) -> None:
        """Say on each execution no process here can deliver what it waits for (at most every
        ``delivery_poll_seconds``; only once it has been due for twice that)."""
        services = self.services
        now = services.clock.now()
        if self._next_waiting_check is not None and now < self._next_waiting_check:
            return
        poll = timedelta(seconds=services.settings.delivery_poll_seconds)
        self._next_waiting_check = now + poll
        routers = [(n, cast(TaskRouter, t)) for n, t in push.items() if conforms(t, TaskRouter)]
        if not routers:
            return
        async with services.store.tx() as tx:
            for name, router in routers:
                rows = await tx.unserved_deliveries(
                    name, frozenset(router.tasks), now - 2 * poll, WAITING_MARK_LIMIT
                )
                for row in rows:
                    values = {
                        "error_message": router.waiting_message(row.task),
                        "updated_at": now,
                    }
                    expect = {"status": Status.PENDING.value, "error_message": None}
                    await tx.update_execution(row.id, values, expect=expect)

    async def _expire_leases(self, tx: Any, transports: list[str]) -> list[Notice]:
        """Fail the attempts whose lease ran out (in the pass's first transaction); the
        notices to send once it is committed."""
        services = self.services
        now = services.clock.now()
        notices: list[Notice] = []
        for row in await tx.expired_leases(now, now, transports, LEASE_SWEEP_LIMIT):
            services.metrics.lease_expiries.labels("delivery").inc()
            notice = await attempt_failed(services, tx, row, INTERRUPTED, None, now)
            if notice is not None:
                notices.append(notice)
        return notices

    async def _deliver(self, transport: PushTransport, row: DueDelivery) -> None:
        logs.bind_execution(row.id, row.cue_id, row.flow_run_id)
        started = time.perf_counter()
        with tracing.execution_span(
            "cueflow.deliver", row.id, transport=transport.name, attempt=row.attempts
        ) as traced:
            try:
                result = await transport.deliver(delivery_of(row, transport))
            except Exception as exc:
                log.exception("transport %r failed on execution %s", transport.name, row.id)
                result = DeliveryResult(ok=False, error=(str(exc) or type(exc).__name__)[:500])
            self.services.metrics.delivered(
                transport.name, result.ok, row, time.perf_counter() - started
            )
            if not result.ok:
                log.info("delivery attempt %d failed: %s", row.attempts, result.error)
                tracing.failed(traced, result.error)
            notice = await self.recorder.record(row, result)
        if not result.ok:
            self.wakeup.set()  # a retry is now scheduled: the loop's next wake-up may move
        if notice is not None:
            await alerts.send(self.services, [notice])

    def _spawn(
        self, work: Coroutine[Any, Any, None], slot: Slot, row: DueDelivery | None = None
    ) -> None:
        task = asyncio.create_task(work, name="cueflow-delivery")
        self._running[task] = slot
        if row is not None:
            self._claims[task] = row
        task.add_done_callback(self._finished)

    def _results_waiting(self) -> None:
        """A finished attempt waits to be recorded: wake the loop shortly, so that the results
        finishing meanwhile share its pass."""
        if self._wake_later is None:
            loop = asyncio.get_running_loop()
            self._wake_later = loop.call_later(RESULT_BATCH_SECONDS, self._wake)

    def _wake(self) -> None:
        self._wake_later = None
        self.wakeup.set()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._claims.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())
        if task in self._settling:
            self._settling.discard(task)  # the pass that recorded its result used its slot
        elif self._full:
            self.wakeup.set()
