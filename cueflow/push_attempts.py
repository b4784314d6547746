"""Push attempts: what a delivery attempt hands its transport, and how its result is
recorded.

A claimed execution (:class:`cueflow.records.DueDelivery`) becomes a
:class:`cueflow.transport.Delivery` (:func:`delivery_of`). Its result moves the execution on
through the state machine (:func:`record_attempt`): ``success``; ``retrying`` with
``next_retry`` stored when attempts are left; or ``failed``, and then the cue's
``on_failure`` applies and an alert is raised (:func:`attempt_failed`, also used for attempts
whose lease ran out). A transport whose results are outcomes (``is_outcome``) has the outcome
written in the same transaction.

Retry waits are data: after failed attempt *n* the wait is ``backoff_minutes[min(n-1, len-1)]``
minutes (one minute when the list is empty), plus up to ``retry_jitter_seconds`` of random
jitter (:func:`retry_wait`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.alert_rules as alert_rules
import cueflow.handoff as handoff
from cueflow.outcomes import outcome_state
from cueflow.records import DueDelivery, Execution, FailedAttempt
from cueflow.states import CueEvent, Event, Status, move, one_time_cue_end
from cueflow.transport import (
    Callback,
    CallbackSender,
    Delivery,
    DeliveryResult,
    Notice,
    PushTransport,
    conforms,
)

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)

INTERRUPTED = "Delivery interrupted: no result was recorded before its lease expired"
RELEASED_ON_STOP = "Delivery interrupted by a shutdown: back in the queue, attempt not counted"
MAX_OUTCOME_CHARS = 2000
"""Outcome ``result``/``error`` text is cut to this length, as reported outcomes are."""


def retry_wait(
    backoff_minutes: Sequence[int],
    attempt: int,
    jitter_seconds: float = 0.0,
    rand: Callable[[], float] = random.random,
) -> timedelta:
    """How long to wait after failed attempt ``attempt`` (1-based) before the next one."""
    minutes = backoff_minutes[min(attempt - 1, len(backoff_minutes) - 1)] if backoff_minutes else 1
    return timedelta(minutes=max(minutes, 0), seconds=jitter_seconds * rand())


def delivery_of(run: DueDelivery, transport: PushTransport) -> Delivery:
    """The :class:`Delivery` of ``transport`` for a run claimed by ``claim_deliveries``. The
    cue's callback and its owner's signing secret go only to a :class:`CallbackSender`."""
    callback = None
    if conforms(transport, CallbackSender) and run.callback_url:
        callback = Callback(
            url=run.callback_url,
            method=run.callback_method,
            headers=run.callback_headers or {},
            signing_secret=run.webhook_secret,
            previous_signing_secret=run.previous_webhook_secret,
        )
    return Delivery(
        execution_id=run.id,
        cue_id=run.cue_id,
        cue_name=run.cue_name,
        user_id=run.user_id,
        scheduled_for=run.scheduled_for,
        attempt=run.attempts,
        payload=run.payload_override if run.payload_override is not None else (run.payload or {}),
        task=run.task,
        timeout_seconds=run.timeout_seconds,
        callback=callback,
    )


def _held(run: FailedAttempt) -> dict[str, Any]:
    """The claim a result belongs to: a late result of an expired or taken-over attempt finds
    the execution moved on (another status or attempt count) and changes nothing."""
    return {"status": Status.DELIVERING.value, "attempts": run.attempts}


async def _write_outcome(tx: Any, run: DueDelivery, result: DeliveryResult, now: datetime) -> None:
    """Record ``result`` as the execution's outcome unless one was reported already."""
    values = {
        "outcome_success": result.ok,
        "outcome_result": result.result[:MAX_OUTCOME_CHARS] if result.result is not None else None,
        "outcome_error": None if result.ok else (result.error or "")[:MAX_OUTCOME_CHARS],
        "outcome_recorded_at": now,
        "outcome_state": outcome_state(result.ok, run.verification_mode, {}),
    }
    await tx.update_execution(run.id, values, expect={"outcome_recorded_at": None})


async def record_attempt(
    services: Services, run: DueDelivery, result: DeliveryResult
) -> Notice | None:
    """Record the result of the attempt claimed as ``run`` (and, when it ``is_outcome``, the
    outcome, in the same transaction); returns the ``cue.failed`` notice to send when it was the
    last attempt and failed."""
    return (await record_attempts(services, [(run, result)]))[0]


def _plain_success(run: DueDelivery, result: DeliveryResult) -> bool:
    """Whether recording ``result`` is only the status change (no outcome, no step output)."""
    return result.ok and not result.is_outcome and (result.output is None or not run.flow_run_id)


async def record_attempts(
    services: Services, attempts: Sequence[tuple[DueDelivery, DeliveryResult]]
) -> list[Notice | None]:
    """Record the results of several attempts in one transaction, as :func:`record_attempt`
    does each (see :func:`record_attempts_in`). Returns the notice (or ``None``) of each
    attempt, in order."""
    async with services.store.tx() as tx:
        return await record_attempts_in(services, tx, attempts)


async def record_attempts_in(
    services: Services, tx: Any, attempts: Sequence[tuple[DueDelivery, DeliveryResult]]
) -> list[Notice | None]:
    """Record the results of several attempts in the transaction ``tx``; the plain successes
    of one attempt number and HTTP status take one statement together. Returns the notice (or
    ``None``) of each attempt, in order."""
    now = services.clock.now()
    notices: list[Notice | None] = [None] * len(attempts)
    plain: dict[tuple[int, int | None], list[DueDelivery]] = {}
    for n, (run, result) in enumerate(attempts):
        if _plain_success(run, result):
            plain.setdefault((run.attempts, result.http_status), []).append(run)
        elif result.ok:
            await _succeeded(services, tx, run, result, now)
        else:
            notices[n] = await attempt_failed(
                services, tx, run, result.error, result.http_status, now, result
            )
    for (attempt, http_status), runs in plain.items():
        values = {**_success_values(now), "http_status": http_status}
        ids = sorted(run.id for run in runs)
        done = await tx.move_executions(ids, attempt, values, move(Event.SUCCEEDED))
        await _runs_ended(services, tx, runs, done, now)
    return notices


def _success_values(now: datetime) -> dict[str, Any]:
    return {
        "error_message": None,
        "delivered_at": now,
        "next_retry": None,
        "lease_expires_at": None,
        "updated_at": now,
    }


async def _succeeded(
    services: Services, tx: Any, run: DueDelivery, result: DeliveryResult, now: datetime
) -> None:
    """Record one successful attempt that also writes an outcome or a step's output."""
    values = {**_success_values(now), "http_status": result.http_status}
    if result.output is not None and run.flow_run_id is not None:
        values["outcome_output"] = result.output  # a flow step's output
    done = await tx.update_execution(run.id, values, move=move(Event.SUCCEEDED), expect=_held(run))
    if done is None:
        return
    if result.is_outcome:
        await _write_outcome(tx, run, result, now)
    await _runs_ended(services, tx, [run], [done], now)


async def _runs_ended(
    services: Services,
    tx: Any,
    runs: Sequence[DueDelivery],
    done: Sequence[Execution],
    now: datetime,
) -> None:
    """Count the successful attempts ``done`` (updated rows of ``runs``) on their cues, end the
    one-time cues among them, and hand off the flow steps."""
    schedule = {run.id: run.schedule_type for run in runs}
    counts = Counter(row.cue_id for row in done)
    groups: dict[tuple[CueEvent | None, int], list[str]] = {}
    for row in done:
        ended = one_time_cue_end(schedule[row.id], row.status)
        groups.setdefault((ended, counts[row.cue_id]), []).append(row.cue_id)
    for (ended, runs_counted), cue_ids in groups.items():
        await tx.bump_cues(
            sorted(set(cue_ids)),
            run_count=runs_counted,
            values={"last_run": now, "updated_at": now},
            finish=move(ended) if ended is not None else None,
        )
    await handoff.executions_ended(services, tx, list(done), now)


RECORD_BATCH = 200
"""Most attempts one transaction of :class:`AttemptRecorder` records."""


@dataclass(eq=False)
class FinishedAttempt:
    """A result waiting to be recorded, and the delivery task that waits for it."""

    run: DueDelivery
    result: DeliveryResult
    future: asyncio.Future[Notice | None]
    task: asyncio.Task[Any] | None


class AttemptRecorder:
    """Records finished attempts in batches (group commit): while one transaction writes, the
    results finishing meanwhile wait and are written together by the next, so a burst of
    deliveries costs a few transactions instead of one each. An attempt's :meth:`record`
    returns once its result is committed, as :func:`record_attempt` would.

    While a dispatcher loop runs it :meth:`collects <collect>` the results: each one waiting
    wakes that loop, whose next pass records them (:meth:`take`, :meth:`settle`) in the
    transaction that also claims work for the slots they free. Otherwise, and for results a
    pass gives back, the recorder writes them itself."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._waiting: list[FinishedAttempt] = []
        self._writer: asyncio.Task[None] | None = None
        self._collector: Callable[[], None] | None = None

    async def record(self, run: DueDelivery, result: DeliveryResult) -> Notice | None:
        """Record ``result`` with the others finishing now; its notice, as
        :func:`record_attempt` returns it."""
        future: asyncio.Future[Notice | None] = asyncio.get_running_loop().create_future()
        self._waiting.append(FinishedAttempt(run, result, future, asyncio.current_task()))
        if self._collector is not None:
            self._collector()
        else:
            self._start_writer()
        return await future

    def collect(self, wake: Callable[[], None] | None) -> None:
        """Let a dispatcher loop record the results (``wake``: called when one waits), or,
        with ``None``, write them here again (those waiting at once)."""
        self._collector = wake
        if wake is None and self._waiting:
            self._start_writer()

    def take(self) -> list[FinishedAttempt]:
        """The results waiting (at most :data:`RECORD_BATCH`), for the caller to record and
        then :meth:`settle`, or :meth:`give_back` when it could not."""
        taken, self._waiting = self._waiting[:RECORD_BATCH], self._waiting[RECORD_BATCH:]
        return taken

    @staticmethod
    def settle(taken: Sequence[FinishedAttempt], notices: Sequence[Notice | None]) -> None:
        """Tell the attempts ``taken`` their results are committed, with their notices."""
        for attempt, notice in zip(taken, notices, strict=True):
            if not attempt.future.done():
                attempt.future.set_result(notice)

    def give_back(self, taken: Sequence[FinishedAttempt]) -> None:
        """Results taken but not recorded: written here instead."""
        self._waiting[:0] = taken
        self._start_writer()

    def _start_writer(self) -> None:
        if self._writer is None and self._waiting:
            self._writer = asyncio.create_task(self._write(), name="cueflow-attempt-recorder")

    async def _write(self) -> None:
        batch: list[FinishedAttempt] = []
        try:
            while self._waiting:
                batch = self.take()
                try:
                    pairs = [(attempt.run, attempt.result) for attempt in batch]
                    notices = await record_attempts(self.services, pairs)
                except Exception as exc:
                    if len(batch) == 1:
                        batch[0].future.set_exception(exc)
                        batch = []
                        continue
                    # one attempt the batch could not record must not fail the others
                    notices = [await self._one(a.run, a.result) for a in batch]
                self.settle(batch, notices)
                batch = []
        except BaseException as exc:
            for attempt in (*batch, *self._waiting):
                if not attempt.future.done():
                    attempt.future.set_exception(
                        exc if isinstance(exc, Exception) else RuntimeError()
                    )
            self._waiting = []
            if not isinstance(exc, Exception):
                raise
        finally:
            self._writer = None

    async def _one(self, run: DueDelivery, result: DeliveryResult) -> Notice | None:
        try:
            return (await record_attempts(self.services, [(run, result)]))[0]
        except Exception:  # its lease runs out and the attempt counts as interrupted
            log.exception("could not record the attempt on execution %s", run.id)
            return None


async def release_unfinished(services: Services, runs: Sequence[DueDelivery]) -> int:
    """Give back the executions of attempts this process claimed but will not finish (it is
    stopping): ``pending`` again and deliverable at once by any node, the interrupted attempt
    not counted in ``attempts`` (a shutdown is not the receiver's failure). An attempt whose
    result was recorded meanwhile, or whose lease another node took over, is left alone.
    Returns how many went back."""
    now = services.clock.now()
    released = 0
    async with services.store.tx() as tx:
        for run in runs:
            values = {
                "attempts": max(run.attempts - 1, 0),
                "lease_expires_at": None,
                "next_retry": None,
                "error_message": RELEASED_ON_STOP,
                "updated_at": now,
            }
            done = await tx.update_execution(
                run.id, values, move=move(Event.RELEASED), expect=_held(run)
            )
            released += done is not None
    if released:
        services.signals.dispatcher.set()
    return released


async def attempt_failed(
    services: Services,
    tx: Any,
    run: FailedAttempt,
    error: str | None,
    http_status: int | None,
    now: datetime,
    result: DeliveryResult | None = None,
) -> Notice | None:
    """Record that the attempt ``run`` failed with ``error``: a retry is scheduled, or, when it
    was the last attempt, the execution fails, its cue's failure policy applies and the
    ``cue.failed`` notice to send is returned (``result``: the transport's result, for an
    outcome to write)."""
    attempt = run.attempts
    final = attempt >= run.retry_max_attempts
    values: dict[str, Any] = {
        "http_status": http_status,
        "error_message": error,
        "lease_expires_at": None,
        "updated_at": now,
        "next_retry": None,
    }
    if not final:
        wait = retry_wait(
            run.retry_backoff_minutes or [], attempt, services.settings.retry_jitter_seconds
        )
        values["next_retry"] = now + wait
    event = Event.FAILED if final else Event.RETRY_SCHEDULED
    done = await tx.update_execution(run.id, values, move=move(event), expect=_held(run))
    if done is None:
        return None
    cue_values: dict[str, Any] = {"updated_at": now}
    if final:
        cue_values["last_run"] = now
    await tx.bump_cue(run.cue_id, run_count=1, values=cue_values)
    if not final:
        return None
    if result is not None and result.is_outcome and isinstance(run, DueDelivery):
        await _write_outcome(tx, run, result, now)
    ended = one_time_cue_end(run.schedule_type, done.status)
    if ended is not None:
        change = move(ended)
        await tx.bump_cue(
            run.cue_id, values={"status": change.target}, only_if_status=change.sources
        )
    elif (run.on_failure or {}).get("pause"):
        change = move(CueEvent.PAUSE_ON_FAILURE)
        await tx.bump_cue(
            run.cue_id,
            values={"status": change.target, "next_run": None},
            only_if_status=change.sources,
        )
    await handoff.executions_ended(services, tx, [done], now)
    return await alert_rules.delivery_failed(tx, run, error, http_status, now)
