""":class:`WorkerSession`: one agent acting as one worker, safely.

The session sits between agent tools and a :class:`~cueflow.agents.client.WorkerClient`, on
the worker core (:class:`cueflow.worker_core.Leases`). It remembers which executions it holds
(lease details stay here, never in tool output), keeps their leases alive with a background task
on the client's clock while a model thinks, registers the agent as a worker
(``POST /v1/worker/heartbeat`` with its task names, so it is listed in ``GET /v1/workers``),
makes a repeated identical report harmless, caps how many claims it holds, and gives back
whatever it still holds when it closes. Every refusal becomes a :class:`ToolFailure` whose text
a model can act on.

The keepalive task starts with the first claim on the event loop that made it, so leases never
lapse silently even without ``async with``; synchronous callers (a sync ``tool.invoke``) run on
the session's own event loop thread (:meth:`WorkerSession.run_sync`), where the task runs too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from cueflow.agents.client import JSON, ClientError, WorkerClient
from cueflow.worker_core import Lease, Leases

__all__ = ["Lease", "ToolFailure", "WorkerSession"]

log = logging.getLogger(__name__)

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
        self.leases = Leases(
            client, tasks=[task] if task else [], register=register,
            max_hold_seconds=max_hold_seconds,
        )  # fmt: skip
        """The worker core holding the claims and keeping them alive."""
        self.task = task
        self.max_claims = max_claims
        self.held: dict[str, Lease] = self.leases.held
        self.lost: dict[str, str] = self.leases.lost
        """Executions whose claim this session lost, with why."""
        self.reported: dict[str, tuple[JSON, JSON]] = {}
        """Executions this session reported: the report and the server's answer."""
        self._depth = 0
        self._portal: asyncio.AbstractEventLoop | None = None
        self._portal_lock = threading.Lock()

    @property
    def worker_id(self) -> str:
        """The worker id of the client."""
        return self.client.worker_id

    @property
    def register(self) -> bool:
        """Whether to register as a worker (``POST /v1/worker/heartbeat``) while running."""
        return self.leases.register

    @register.setter
    def register(self, value: bool) -> None:
        self.leases.register = value

    @property
    def max_hold_seconds(self) -> float | None:
        """How long after a claim its lease is still heartbeated."""
        return self.leases.max_hold_seconds

    @max_hold_seconds.setter
    def max_hold_seconds(self, value: float | None) -> None:
        self.leases.max_hold_seconds = value

    def holds(self, execution_id: str) -> bool:
        """Whether this session holds a claim on ``execution_id``."""
        return execution_id in self.held

    # lifecycle ----------------------------------------------------------------------------------
    async def __aenter__(self) -> WorkerSession:
        self._depth += 1
        self.leases.start()
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
        await self.leases.stop()

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
        try:
            return await self.leases.claim_next(self.task, execution_id, wait)
        except ClientError as exc:
            raise _failure(exc) from exc

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
            answer = await self.leases.report(execution_id, report)
        except ClientError as exc:
            raise _failure(exc) from exc
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
            return await self.leases.release(execution_id, reason, retry_after)
        except ClientError as exc:
            raise _failure(exc) from exc

    async def get(self, execution_id: str) -> JSON:
        """One execution."""
        try:
            return await self.client.get_execution(execution_id)
        except ClientError as exc:
            raise _failure(exc) from exc

    async def heartbeat(self, execution_id: str) -> bool:
        """Extend the lease of ``execution_id`` if held (and held for less than
        ``max_hold_seconds``); whether it is still held after."""
        return await self.leases.heartbeat(execution_id)

    async def release_all(self, reason: str) -> list[str]:
        """Give back everything still held (on shutdown), claimable again at once (the work was
        interrupted, not failed: no retry backoff); returns the released ids."""
        released = []
        for execution_id in list(self.held):
            try:
                await self.release(execution_id, reason, retry_after=0)
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
