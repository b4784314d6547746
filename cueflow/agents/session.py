""":class:`WorkerSession`: one agent acting as one worker, safely.

The session sits between agent tools and a :class:`~cueflow.agents.client.WorkerClient`. It
remembers which executions it holds (lease details stay here, never in tool output), keeps their
leases alive with a background task on the client's clock while a model thinks, registers the
agent as a worker (``POST /v1/worker/heartbeat`` with its task names, so it is listed in
``GET /v1/workers``), makes a repeated identical report harmless, caps how many claims it holds,
and gives back whatever it still holds when it closes. Every refusal becomes a
:class:`ToolFailure` whose text a model can act on.

The keepalive task starts with the first claim on the event loop that made it, so leases never
lapse silently even without ``async with``; synchronous callers (a sync ``tool.invoke``) run on
the session's own event loop thread (:meth:`WorkerSession.run_sync`), where the task runs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cueflow.agents.client import JSON, ClientError, WorkerClient

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
"""How soon a heartbeat that failed for a passing reason (a network error) is tried again."""
REGISTER_SECONDS = 30.0
"""How often the session refreshes its worker registration (as ``cueapi-worker`` does)."""

T = TypeVar("T")

_HINTS = {
    "claim_failed": "another worker took it, or it is not due or not claimable; poll again",
    "lease_lost": "its lease ran out and it went back to the queue; do not report it again",
    "outcome_already_recorded": "an outcome is already recorded; nothing more to do",
    "execution_not_found": "check the id (poll_executions lists claimable ones)",
    "execution_not_claiming": "it is not claimed any more",
    "not_execution_owner": "another worker holds it",
}


class ToolFailure(Exception):
    """A tool call that could not be done; its text is meant for the model."""


def _failure(exc: ClientError) -> ToolFailure:
    hint = _HINTS.get(exc.code)
    return ToolFailure(f"{exc.message} [{exc.code}]" + (f": {hint}" if hint else ""))


@dataclass
class Lease:
    """A claim this session holds."""

    execution_id: str
    lease_seconds: float
    claimed_at: datetime
    next_beat: datetime | None
    """When the keepalive task heartbeats it next (``None``: no more, held too long)."""
    item: JSON
    """The claimable item (cue, task, attempt, payload) the claim was made from."""


class WorkerSession:
    """Claims, leases and outcomes for one worker (``client.worker_id``).

    ``task`` limits polling and claiming to executions of that ``payload.task``; ``max_claims``
    is how many executions it may hold at once; heartbeats stop ``max_hold_seconds`` after a
    claim, so an agent that never finishes cannot keep work from other workers forever. Use it
    as ``async with session:`` to run the keepalive task and release what is left on exit.
    """

    def __init__(
        self,
        client: WorkerClient,
        *,
        task: str | None = None,
        max_claims: int = 1,
        max_hold_seconds: float = 3600.0,
        register: bool = True,
    ) -> None:
        self.client = client
        self.task = task
        self.register = register
        """Whether to register as a worker (``POST /v1/worker/heartbeat``) while running."""
        self.max_claims = max_claims
        self.max_hold_seconds = max_hold_seconds
        self.held: dict[str, Lease] = {}
        self.lost: dict[str, str] = {}
        """Executions whose claim this session lost, with why."""
        self.reported: dict[str, tuple[JSON, JSON]] = {}
        """Executions this session reported: the report and the server's answer."""
        self._wake = asyncio.Event()
        self._keepalive: asyncio.Task[None] | None = None
        self._depth = 0
        self._portal: asyncio.AbstractEventLoop | None = None
        self._portal_lock = threading.Lock()
        self._registered_at: datetime | None = None

    @property
    def worker_id(self) -> str:
        """The worker id of the client."""
        return self.client.worker_id

    def holds(self, execution_id: str) -> bool:
        """Whether this session holds a claim on ``execution_id``."""
        return execution_id in self.held

    # lifecycle ----------------------------------------------------------------------------------
    async def __aenter__(self) -> WorkerSession:
        self._depth += 1
        self._ensure_keepalive()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth:
            return
        await self._stop()

    def run_sync(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` to completion from synchronous code, on the session's own event loop
        (a daemon thread started on first use, which also runs the keepalive task for claims
        made there)."""
        with self._portal_lock:
            if self._portal is None or self._portal.is_closed():
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    loop.run_forever()
                    loop.close()

                threading.Thread(target=serve, name="cueflow-agent-session", daemon=True).start()
                self._portal = loop
        return asyncio.run_coroutine_threadsafe(work, self._portal).result()

    def close(self) -> None:
        """Synchronous counterpart of leaving ``async with``: give back what is held (on the
        session's own loop) and stop that loop's thread."""
        if self._portal is None:
            return
        self.run_sync(self._stop())
        portal, self._portal = self._portal, None
        portal.call_soon_threadsafe(portal.stop)

    async def _stop(self) -> None:
        await self.release_all("worker stopped")
        task, self._keepalive = self._keepalive, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _ensure_keepalive(self) -> None:
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

    # worker operations --------------------------------------------------------------------------
    async def poll(self, limit: int = 10) -> list[JSON]:
        """Claimable executions (of the session's task), oldest first."""
        try:
            items = await self.client.claimable(self.task)
        except ClientError as exc:
            raise _failure(exc) from exc
        return items[:limit]

    async def claim(self, execution_id: str | None = None) -> tuple[Lease, bool]:
        """Claim ``execution_id`` (or the oldest claimable one); returns the lease and whether
        it was already held. Raises :class:`ToolFailure` when nothing can be claimed."""
        if execution_id in self.held:
            return self.held[execution_id], True
        lease = await self.claim_next(execution_id)
        if lease is None:
            raise ToolFailure("no executions are available for claiming right now")
        return lease, False

    async def claim_next(self, execution_id: str | None = None, wait: float = 0) -> Lease | None:
        """Claim ``execution_id``, or the oldest claimable execution another worker does not
        win first; ``None`` when there is none. Without an id, a server that offers batch
        claims is asked once (waiting up to ``wait`` seconds for work); others are polled and
        claimed item by item. Raises :class:`ToolFailure` when this session holds its
        ``max_claims`` already or the claim is refused."""
        if len(self.held) >= self.max_claims:
            ids = ", ".join(self.held)
            raise ToolFailure(
                f"this worker already holds {len(self.held)} claim(s), its limit: report an "
                f"outcome for (or release) {ids} first"
            )
        await self._register()
        claim_due = getattr(self.client, "claim_due", None)
        if execution_id is None and claim_due is not None:
            try:
                item = await claim_due(self.task, wait)
            except NotImplementedError:
                pass  # an older server: poll and claim below
            except ClientError as exc:
                raise _failure(exc) from exc
            else:
                if item is None:
                    return None
                # A claim counts this attempt; a claimable item counts the ones before it.
                item = {**item, "attempt": max(0, int(item.get("attempt") or 1) - 1)}
                answer = {
                    "execution_id": item["execution_id"],
                    "lease_seconds": item.get("lease_seconds"),
                }
                return self._hold(item, answer)
        try:
            items = await self.client.claimable(self.task)
        except ClientError as exc:
            raise _failure(exc) from exc
        if execution_id is not None:
            items = [i for i in items if i["execution_id"] == execution_id] or [
                {"execution_id": execution_id}
            ]
        for item in items:
            try:
                answer = await self.client.claim(item["execution_id"])
            except ClientError as exc:
                if execution_id is not None or exc.code != "claim_failed":
                    raise _failure(exc) from exc
                continue  # another worker won this one: try the next
            return self._hold(item, answer)
        return None

    def _hold(self, item: JSON, answer: JSON) -> Lease:
        now = self.client.clock.now()
        lease = Lease(
            execution_id=answer["execution_id"],
            lease_seconds=float(answer.get("lease_seconds") or 900),
            claimed_at=now,
            next_beat=None,
            item=item,
        )
        lease.next_beat = now + timedelta(seconds=lease.lease_seconds / 3)
        self.held[lease.execution_id] = lease
        self.lost.pop(lease.execution_id, None)
        self._ensure_keepalive()
        return lease

    async def report(self, execution_id: str, report: JSON) -> tuple[JSON, bool]:
        """Report the outcome of a held execution; returns the server's answer and whether it
        repeats an identical earlier report (which changes nothing)."""
        if execution_id in self.reported:
            earlier, answer = self.reported[execution_id]
            if earlier == report:
                return answer, True
            raise ToolFailure(
                f"an outcome for {execution_id} was already reported and cannot be changed"
            )
        self._check_held(execution_id)
        try:
            answer = await self.client.report_outcome(execution_id, report)
        except ClientError as exc:
            if exc.code in ("lease_lost", "outcome_already_recorded"):
                self._drop(execution_id, exc.code)
            raise _failure(exc) from exc
        self.held.pop(execution_id, None)
        self.reported[execution_id] = (report, answer)
        return answer, False

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give a held execution back unfinished, to be claimable again after ``retry_after``
        seconds (default: the cue's retry backoff); a failure outcome on servers without the
        release extension."""
        self._check_held(execution_id)
        try:
            answer = await self.client.release(execution_id, reason, retry_after)
        except ClientError as exc:
            self._drop(execution_id, exc.code)
            raise _failure(exc) from exc
        self.held.pop(execution_id, None)
        return answer

    async def get(self, execution_id: str) -> JSON:
        """One execution."""
        try:
            return await self.client.get_execution(execution_id)
        except ClientError as exc:
            raise _failure(exc) from exc

    async def heartbeat(self, execution_id: str) -> bool:
        """Extend the lease of ``execution_id`` if held (and held for less than
        ``max_hold_seconds``); whether it is still held after."""
        lease = self.held.get(execution_id)
        if lease is None:
            return False
        now = self.client.clock.now()
        if now >= lease.claimed_at + timedelta(seconds=self.max_hold_seconds):
            lease.next_beat = None  # held too long: the lease is left to run out
            return True
        try:
            await self.client.heartbeat(execution_id)
        except ClientError as exc:
            if exc.status in (403, 404, 409):
                self._drop(execution_id, exc.code)
                return False
            log.warning("heartbeat of %s failed: %s", execution_id, exc)
            lease.next_beat = now + timedelta(seconds=min(RETRY_SECONDS, lease.lease_seconds / 3))
            return True
        lease.next_beat = now + timedelta(seconds=lease.lease_seconds / 3)
        return True

    async def _register(self) -> None:
        """Register (or refresh) this worker with its task names, at most every
        :data:`REGISTER_SECONDS`; a failure only logs (claims work without it).

        Not while a claim is held past ``max_hold_seconds``: a worker heartbeat extends every
        lease the worker holds, and that claim is meant to run out."""
        if not self.register:
            return
        now = self.client.clock.now()
        if self._registered_at is not None and now < self._registered_at + timedelta(
            seconds=REGISTER_SECONDS
        ):
            return
        self._registered_at = now  # tried (or skipped) now: the next try is due in a while
        held_too_long = now - timedelta(seconds=self.max_hold_seconds)
        if any(lease.claimed_at <= held_too_long for lease in self.held.values()):
            return
        try:
            await self.client.register([self.task] if self.task else [])
        except ClientError as exc:
            log.warning("worker registration failed: %s", exc)

    async def release_all(self, reason: str) -> list[str]:
        """Give back everything still held (on shutdown); returns the released ids."""
        released = []
        for execution_id in list(self.held):
            try:
                await self.release(execution_id, reason)
                released.append(execution_id)
            except ToolFailure as exc:
                log.warning("could not release %s: %s", execution_id, exc)
        return released

    def _check_held(self, execution_id: str) -> None:
        if execution_id in self.held:
            return
        why = self.lost.get(execution_id)
        if why is not None:
            raise ToolFailure(f"this worker lost its claim on {execution_id} [{why}]")
        raise ToolFailure(f"this worker holds no claim on {execution_id}; claim it first")

    def _drop(self, execution_id: str, why: str) -> None:
        if self.held.pop(execution_id, None) is not None:
            self.lost[execution_id] = why

    # keepalive ----------------------------------------------------------------------------------
    async def _keep_alive(self) -> None:
        """Heartbeat each held lease a third of a lease after the last, on the client's clock,
        so leases outlive long model calls."""
        clock = self.client.clock
        while True:
            self._wake.clear()
            due = [lease.next_beat for lease in self.held.values() if lease.next_beat]
            if self.register and self._registered_at is not None:
                due.append(self._registered_at + timedelta(seconds=REGISTER_SECONDS))
            await clock.sleep_until(min(due) if due else None, self._wake)
            now = clock.now()
            try:
                await self._register()
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

    def describe(self, lease: Lease) -> dict[str, Any]:
        """What a model may see of a claim: the work, never the lease."""
        item = lease.item
        return {
            "execution_id": lease.execution_id,
            "cue_id": item.get("cue_id"),
            "cue_name": item.get("cue_name"),
            "task": item.get("task"),
            "attempt": int(item.get("attempt") or 0) + 1,  # claimable counts claims before
            "scheduled_for": item.get("scheduled_for"),
            "payload": item.get("payload"),
        }
