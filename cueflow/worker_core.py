"""The worker core: what every cueflow worker does, whatever runs the work.

A worker has an identity (:func:`new_worker_id`), registers with its task names
(``POST /v1/worker/heartbeat``, again every :data:`REGISTER_SECONDS`), claims executions (one by
id, the next due one, or a long-poll for one), keeps each claim's lease alive by heartbeating it
a third of a lease after the last beat, notices a lease it lost, reports outcomes and gives back
what it still holds when it stops. :class:`Leases` does all of that over a
:class:`~cueflow.worker_api.WorkerApi`: :class:`~cueflow.worker_api.HttpWorker` (any cueflow or
CueAPI server) or the agents' engine client. The ``cueflow worker`` daemon and the agents'
:class:`~cueflow.agents.session.WorkerSession` are both built on it, and differ only in what
runs an execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cueflow.client import ApiError
from cueflow.worker_api import JSON, WorkerApi

log = logging.getLogger(__name__)

REGISTER_SECONDS = 30.0
"""How often a worker refreshes its registration (the server calls a worker stale after 180 s)."""
LEASE_FRACTION = 1 / 3
"""A claim is heartbeated when this much of its lease has passed since the last beat."""
RETRY_SECONDS = 5.0
"""How soon a heartbeat that failed for a passing reason (a network error) is tried again."""
LOST = (403, 404, 409)
"""Heartbeat refusals that mean the claim is gone (expired, taken, finished)."""


def new_worker_id(prefix: str = "worker") -> str:
    """A worker id unique to this process and call: ``<prefix>-<host>-<pid>-<random>``."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{prefix}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class Lease:
    """A claim this worker holds."""

    execution_id: str
    lease_seconds: float
    claimed_at: datetime
    next_beat: datetime | None
    """When the keepalive task heartbeats it next (``None``: no more, held too long)."""
    item: JSON
    """The claimable item (cue, task, attempt, payload) the claim was made from."""


LostCallback = Callable[[str, ApiError], None]
Warn = Callable[[str], None]


class Leases:
    """The claims one worker holds, kept alive by a background task on ``api.clock``.

    ``tasks`` are the task names it registers with (if ``register``); heartbeats stop
    ``max_hold_seconds`` after a claim (``None``: never), so work that never finishes cannot
    keep an execution from other workers forever. ``on_lost`` hears of every claim a heartbeat
    found lost (the execution id and the refusal); ``warn`` of registrations and heartbeats that
    failed for a passing reason (default: logged). Claims start the keepalive task (so does
    :meth:`start`); :meth:`stop` ends it."""

    def __init__(
        self,
        api: WorkerApi,
        *,
        tasks: list[str],
        register: bool = True,
        max_hold_seconds: float | None = None,
        on_lost: LostCallback | None = None,
        warn: Warn | None = None,
    ) -> None:
        self.api = api
        self.tasks = tasks
        self.register = register
        self.max_hold_seconds = max_hold_seconds
        self.on_lost = on_lost
        self.warn: Warn = warn or log.warning
        self.held: dict[str, Lease] = {}
        self.lost: dict[str, str] = {}
        """Executions whose claim was lost, with the refusal's code."""
        self.registered_at: datetime | None = None
        self._wake = asyncio.Event()
        self._keepalive: asyncio.Task[None] | None = None

    # registration -------------------------------------------------------------------------------
    async def register_now(self, *, quietly: bool = True) -> None:
        """Register (or refresh) this worker, at most every :data:`REGISTER_SECONDS`; a failure
        only logs when ``quietly`` (claims work without it).

        Not while a claim is held past ``max_hold_seconds``: a worker heartbeat extends every
        lease the worker holds, and that claim is meant to run out."""
        if not self.register:
            return
        now = self.api.clock.now()
        if self.registered_at is not None and now < self.registered_at + timedelta(
            seconds=REGISTER_SECONDS
        ):
            return
        self.registered_at = now  # tried (or skipped) now: the next try is due in a while
        if self.max_hold_seconds is not None:
            held_too_long = now - timedelta(seconds=self.max_hold_seconds)
            if any(lease.claimed_at <= held_too_long for lease in self.held.values()):
                return
        try:
            await self.api.register(self.tasks)
        except ApiError as exc:
            if not quietly:
                raise
            self.warn(f"worker registration failed: {exc}")

    # claiming -----------------------------------------------------------------------------------
    async def claim_next(
        self, task: str | None, execution_id: str | None = None, wait: float = 0
    ) -> Lease | None:
        """Claim ``execution_id``, or the oldest claimable execution (of ``task``) another
        worker does not win first; ``None`` when there is none. Without an id, a server that
        offers batch claims is asked once (waiting up to ``wait`` seconds for work); others
        are polled and claimed item by item. Raises :class:`ApiError` when refused."""
        await self.register_now()
        claim_due = getattr(self.api, "claim_due", None)  # optional for hand-written clients
        if execution_id is None and claim_due is not None:
            try:
                item = await claim_due(task, wait)
            except NotImplementedError:
                pass  # an older server: poll and claim below
            else:
                if item is None:
                    return None
                # A claim counts this attempt; a claimable item counts the ones before it.
                item = {**item, "attempt": max(0, int(item.get("attempt") or 1) - 1)}
                return self.hold(item, item.get("lease_seconds"))
        items = await self.api.claimable(task)
        if execution_id is not None:
            items = [i for i in items if i["execution_id"] == execution_id] or [
                {"execution_id": execution_id}
            ]
        for item in items:
            try:
                return await self.claim(item)
            except ApiError as exc:
                if execution_id is not None or exc.code != "claim_failed":
                    raise
        return None

    async def claim(self, item: JSON) -> Lease:
        """Claim the listed ``item`` (a claimable execution); :class:`ApiError` if refused."""
        answer = await self.api.claim(item["execution_id"])
        return self.hold(item, answer.get("lease_seconds"))

    def hold(self, item: JSON, lease_seconds: Any) -> Lease:
        """Remember a claim just made on ``item`` and keep its lease alive from now on."""
        now = self.api.clock.now()
        seconds = float(lease_seconds or 900)
        lease = Lease(
            execution_id=item["execution_id"],
            lease_seconds=seconds,
            claimed_at=now,
            next_beat=now + timedelta(seconds=seconds * LEASE_FRACTION),
            item=item,
        )
        self.held[lease.execution_id] = lease
        self.lost.pop(lease.execution_id, None)
        self.start()
        return lease

    # leases -------------------------------------------------------------------------------------
    async def heartbeat(self, execution_id: str) -> bool:
        """Extend the lease of ``execution_id`` if held (and held for less than
        ``max_hold_seconds``); whether it is still held after."""
        lease = self.held.get(execution_id)
        if lease is None:
            return False
        now = self.api.clock.now()
        if self.max_hold_seconds is not None and now >= lease.claimed_at + timedelta(
            seconds=self.max_hold_seconds
        ):
            lease.next_beat = None  # held too long: the lease is left to run out
            return True
        try:
            await self.api.heartbeat(execution_id)
        except ApiError as exc:
            if exc.status in LOST:
                self.drop(execution_id, exc)
                if self.on_lost is not None:
                    self.on_lost(execution_id, exc)
                return False
            self.warn(f"heartbeat of {execution_id} failed: {exc}")
            retry = min(RETRY_SECONDS, lease.lease_seconds * LEASE_FRACTION)
            lease.next_beat = now + timedelta(seconds=retry)
            return True
        lease.next_beat = now + timedelta(seconds=lease.lease_seconds * LEASE_FRACTION)
        return True

    def drop(self, execution_id: str, exc: ApiError) -> None:
        """Forget a claim the server says this worker lost, remembering why."""
        if self.held.pop(execution_id, None) is not None:
            self.lost[execution_id] = exc.code

    def forget(self, execution_id: str) -> None:
        """Stop keeping the lease of ``execution_id`` (its work is over, reported or not)."""
        self.held.pop(execution_id, None)

    # outcomes -----------------------------------------------------------------------------------
    async def report(self, execution_id: str, report: JSON) -> JSON:
        """Report the outcome of ``execution_id`` and stop keeping its lease; a refusal saying
        the claim is gone also forgets it."""
        try:
            answer = await self.api.report_outcome(execution_id, report)
        except ApiError as exc:
            if exc.code in ("lease_lost", "outcome_already_recorded"):
                self.drop(execution_id, exc)
            raise
        self.held.pop(execution_id, None)
        return answer

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give ``execution_id`` back unfinished (claimable again after ``retry_after`` seconds,
        default: the cue's retry backoff); forgotten either way."""
        try:
            answer = await self.api.release(execution_id, reason, retry_after)
        except ApiError as exc:
            self.drop(execution_id, exc)
            raise
        self.held.pop(execution_id, None)
        return answer

    # keepalive task -----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the keepalive task on the running loop unless one is running already (on this
        loop or another), and wake it to look at the leases again."""
        task = self._keepalive
        if task is not None and not task.done():
            loop = task.get_loop()
            if loop is asyncio.get_running_loop():
                self._wake.set()
            else:
                loop.call_soon_threadsafe(self._wake.set)
            return
        self._wake = asyncio.Event()
        self._keepalive = asyncio.get_running_loop().create_task(
            self._keep_alive(), name="cueflow-keepalive"
        )

    async def stop(self) -> None:
        """End the keepalive task (if it runs on this loop)."""
        task, self._keepalive = self._keepalive, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _keep_alive(self) -> None:
        """Heartbeat each held lease a third of a lease after the last, and refresh the
        registration, on the worker's clock, so leases outlive long work."""
        clock = self.api.clock
        while True:
            self._wake.clear()
            due = [lease.next_beat for lease in self.held.values() if lease.next_beat]
            if self.register and self.registered_at is not None:
                due.append(self.registered_at + timedelta(seconds=REGISTER_SECONDS))
            await clock.sleep_until(min(due) if due else None, self._wake)
            now = clock.now()
            try:
                await self.register_now()
            except Exception:  # keep the task alive whatever one registration does
                log.exception("worker registration failed")
            for execution_id, lease in list(self.held.items()):
                if lease.next_beat is None or lease.next_beat > now:
                    continue
                try:
                    await self.heartbeat(execution_id)
                except Exception:  # keep the task alive whatever one heartbeat does
                    log.exception("heartbeat of %s failed", execution_id)
                    lease.next_beat = now + timedelta(seconds=RETRY_SECONDS)
