"""The worker registry: who is polling, from their ``POST /v1/worker/heartbeat`` calls and
from polls that name their worker (``X-Worker-Id`` on ``GET /v1/executions/claimable``).

A poll is a read, and workers poll every second or two, so a poll does not write the worker's
row every time: :class:`PollSightings` remembers when this process last wrote each polling
worker and skips the write within :data:`POLL_REFRESH_SECONDS` of it. Liveness is measured in
minutes (``active`` within ``WORKER_HEARTBEAT_TIMEOUT_SECONDS``), so a last-seen time a few
seconds old changes no answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.scopes as scopes
from cueflow.authentication import Principal
from cueflow.errors import NotFound
from cueflow.records import WorkerStatus

if TYPE_CHECKING:
    from cueflow.services import Services


HEARTBEAT_ROUTE = "POST /v1/worker/heartbeat"
"""The route whose scope a poll that names its worker needs (a read key may poll, but not
register workers)."""
POLL_REFRESH_SECONDS = 5.0
"""A poll that names its worker writes the worker's row at most once in this many seconds (in
each process); the polls in between only read."""
REMEMBERED_WORKERS = 10_000
"""Most (account, worker) pairs :class:`PollSightings` remembers; past that the pair written
longest ago is forgotten (its next poll writes again), so made-up worker ids cannot grow the
memory of a long-running process."""


class PollSightings:
    """When this process last wrote each polling worker's row, so that a poll within
    :data:`POLL_REFRESH_SECONDS` of that write skips it."""

    def __init__(
        self,
        refresh_seconds: float = POLL_REFRESH_SECONDS,
        capacity: int = REMEMBERED_WORKERS,
    ) -> None:
        self.refresh = timedelta(seconds=refresh_seconds)
        self.capacity = capacity
        self._written: dict[tuple[str, str], datetime] = {}
        """(account, worker) → last write, oldest write first."""

    def claim_write(self, user_id: str, worker_id: str, now: datetime) -> bool:
        """Whether a poll at ``now`` should write the worker's row; if so, the write is
        counted as made (so concurrent polls of one worker write once)."""
        key = (user_id, worker_id)
        last = self._written.get(key)
        if last is not None and now - last < self.refresh:
            return False
        self.wrote(user_id, worker_id, now)
        return True

    def wrote(self, user_id: str, worker_id: str, now: datetime) -> None:
        """Note that the worker's row was written at ``now``."""
        key = (user_id, worker_id)
        self._written.pop(key, None)
        while len(self._written) >= self.capacity:
            del self._written[next(iter(self._written))]
        self._written[key] = now

    def forget(self, user_id: str, worker_id: str) -> None:
        """Forget the worker (its row is gone, or its write failed): its next poll writes."""
        self._written.pop((user_id, worker_id), None)


async def heartbeat(
    services: Services,
    user: Principal,
    worker_id: str,
    handlers: list[str] | None,
    sightings: PollSightings | None = None,
) -> dict[str, Any]:
    """Create or refresh a worker; ``handlers`` is informational (replaced on every call).

    A live worker keeps its claims: each heartbeat extends the lease of every execution it holds
    (the official ``cueapi-worker`` never sends execution heartbeats, only these).
    """
    now = services.clock.now()
    lease_until = now + timedelta(seconds=services.settings.worker_claim_timeout_seconds)
    async with services.store.tx() as tx:
        await tx.upsert_worker(user.user_id, worker_id, handlers, now)
        await tx.extend_worker_leases(
            user.user_id, worker_id, services.transports.pull(), lease_until
        )
    if sightings is not None:
        sightings.wrote(user.user_id, worker_id, now)
    return {"acknowledged": True, "server_time": now}


async def polled(
    services: Services, sightings: PollSightings, user: Principal, worker_id: str
) -> None:
    """A poll for claimable work that names its worker counts as that worker's heartbeat, as
    CueAPI's Workers document says polling does: the worker is registered (without handlers)
    or its last heartbeat refreshed, its handlers left as they are. The row is written at most
    once per :data:`POLL_REFRESH_SECONDS` (see :class:`PollSightings`). A key whose scope may
    not send worker heartbeats (a ``read`` key) is refused 403 ``insufficient_scope``.

    A registered worker is watched: once it is silent (no poll, no heartbeat) for
    ``WORKER_HEARTBEAT_TIMEOUT_SECONDS``, the sweeper releases its claims that saw no execution
    heartbeat either, as the document says of stale workers. Unlike
    ``POST /v1/worker/heartbeat``, a poll does not extend the leases the worker holds: the
    document makes ``WORKER_CLAIM_TIMEOUT_SECONDS`` the longest a worker holds a claim without
    reporting, and says nothing of polls extending it. Heartbeats (the execution's own, or the
    daemon's, which ``cueapi-worker`` needs) still do.
    """
    # naming a worker registers it: only a key that may send worker heartbeats may do that
    scopes.require(user.scope, HEARTBEAT_ROUTE)
    now = services.clock.now()
    if not sightings.claim_write(user.user_id, worker_id, now):
        return
    try:
        async with services.store.tx() as tx:
            await tx.touch_worker(user.user_id, worker_id, now)
    except BaseException:
        sightings.forget(user.user_id, worker_id)
        raise


async def list_workers(services: Services, user: Principal) -> list[WorkerStatus]:
    """The caller's workers with their liveness: ``active`` within the heartbeat timeout,
    ``stale`` within the claim timeout, else ``dead``."""
    now = services.clock.now()
    settings = services.settings
    async with services.store.tx() as tx:
        rows = await tx.list_workers(user.user_id)
    found = []
    for row in rows:
        silent = max(0, int((now - row.last_heartbeat).total_seconds()))
        if silent < settings.worker_heartbeat_timeout_seconds:
            status = "active"
        elif silent < settings.worker_claim_timeout_seconds:
            status = "stale"
        else:
            status = "dead"
        found.append(
            WorkerStatus(
                worker_id=row.worker_id,
                last_heartbeat=row.last_heartbeat,
                seconds_since_heartbeat=silent,
                heartbeat_status=status,
                handlers=row.handlers,
                registered_since=row.created_at,
            )
        )
    return found


async def delete_worker(
    services: Services,
    user: Principal,
    worker_id: str,
    sightings: PollSightings | None = None,
) -> None:
    """Forget a worker (its claims are left alone), or 404 ``worker_not_found``; its next
    poll that names it registers it again."""
    if sightings is not None:
        sightings.forget(user.user_id, worker_id)
    async with services.store.tx() as tx:
        deleted = await tx.delete_worker(user.user_id, worker_id)
    if not deleted:
        raise NotFound("Worker not found", code="worker_not_found")
