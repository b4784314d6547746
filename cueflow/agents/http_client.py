""":class:`HttpWorkerClient`: the agents' :class:`~cueflow.agents.client.WorkerClient` over the
REST API of any cueflow or CueAPI server: the worker protocol of
:class:`cueflow.worker_api.HttpWorker` plus cue, execution and flow management through the
typed :class:`cueflow.client.AsyncClient` (one connection for both)."""

from __future__ import annotations

from typing import Any

import httpx

from cueflow.agents.client import JSON
from cueflow.client import AsyncClient, Retries
from cueflow.worker_api import HttpWorker
from cueflow.worker_core import new_worker_id


class HttpWorkerClient(HttpWorker):
    """A :class:`~cueflow.agents.client.WorkerClient` for the account owning ``api_key`` on the
    server at ``base_url``. ``transport`` lets tests talk to an ASGI app in process."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        worker_id: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        api = AsyncClient(
            base_url, api_key, timeout=timeout, transport=transport, retries=Retries(attempts=0)
        )
        super().__init__(api, worker_id or new_worker_id("agent"))

    def __repr__(self) -> str:
        return f"HttpWorkerClient({self.api.base_url!r}, worker_id={self.worker_id!r})"

    async def get_execution(self, execution_id: str) -> JSON:
        """One execution."""
        return (await self.api.executions.get(execution_id)).wire()

    async def list_executions(
        self,
        *,
        cue_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> JSON:
        """A page of executions, newest first."""
        page = await self.api.executions.list(
            cue_id=cue_id or None, status=status or None, limit=limit, offset=offset
        )
        return page.wire()

    async def create_cue(self, spec: JSON) -> JSON:
        """Create a cue."""
        return (await self.api.cues.create(spec)).wire()

    async def list_cues(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> JSON:
        """A page of cues, newest first."""
        page = await self.api.cues.list(status=status or None, limit=limit, offset=offset)
        return page.wire()

    async def get_cue(self, cue_id: str) -> JSON:
        """One cue."""
        return (await self.api.cues.get(cue_id)).wire()

    async def update_cue(self, cue_id: str, patch: JSON) -> JSON:
        """Change a cue."""
        return (await self.api.cues.update(cue_id, patch)).wire()

    async def fire_cue(self, cue_id: str, body: JSON | None = None) -> JSON:
        """Fire a cue now or at ``send_at``."""
        return (await self.api.cues.fire(cue_id, body or {})).wire()

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue."""
        await self.api.cues.delete(cue_id)

    async def list_flows(self, *, limit: int = 20, offset: int = 0) -> JSON:
        """A page of flows, newest first."""
        return (await self.api.flows.list(limit=limit, offset=offset)).wire()

    async def start_flow_run(self, flow_id: str, body: JSON) -> JSON:
        """Start a run of a flow."""
        return (await self.api.flows.run(flow_id, body)).wire()

    async def get_flow_run(self, run_id: str) -> JSON:
        """One run with its steps."""
        return (await self.api.flow_runs.get(run_id)).wire()

    async def send_flow_event(self, run_id: str, name: str, data: Any = None) -> JSON:
        """Send an event to a run."""
        return (await self.api.flow_runs.send_event(run_id, name, {"data": data})).wire()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.api.aclose()
