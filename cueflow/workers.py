"""The worker registry: who is polling, from their ``POST /v1/worker/heartbeat`` calls."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cueflow.authentication import Principal
from cueflow.errors import NotFound
from cueflow.records import WorkerStatus

if TYPE_CHECKING:
    from cueflow.services import Services


async def heartbeat(
    services: Services, user: Principal, worker_id: str, handlers: list[str] | None
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
    return {"acknowledged": True, "server_time": now}


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


async def delete_worker(services: Services, user: Principal, worker_id: str) -> None:
    """Forget a worker (its claims are left alone), or 404 ``worker_not_found``."""
    async with services.store.tx() as tx:
        deleted = await tx.delete_worker(user.user_id, worker_id)
    if not deleted:
        raise NotFound("Worker not found", code="worker_not_found")
