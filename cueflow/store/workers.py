"""Workers known through their heartbeats."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from cueflow.records import Worker


class WorkerStore(Protocol):
    """Workers known through their heartbeats."""

    async def upsert_worker(
        self, user_id: str, worker_id: str, handlers: list[str] | None, now: datetime
    ) -> None:
        """Create or refresh a worker's heartbeat."""

    async def touch_worker(self, user_id: str, worker_id: str, now: datetime) -> None:
        """Create a worker (without handlers) or refresh its heartbeat, leaving its handlers
        as they are: a poll that names its worker."""

    async def list_workers(self, user_id: str) -> list[Worker]:
        """The user's workers, latest heartbeat first."""

    async def delete_worker(self, user_id: str, worker_id: str) -> bool:
        """Forget a worker; ``False`` if unknown."""

    async def count_live_workers(self, user_id: str, since: datetime) -> int:
        """Workers of the user with a heartbeat at or after ``since``."""
