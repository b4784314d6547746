""":class:`HttpWorkerClient`: the agents' :class:`~cueflow.agents.client.WorkerClient` over the
REST API of any cueflow or CueAPI server: the worker protocol of
:class:`cueflow.worker_api.HttpWorker` plus cue and execution management, all through the one
:class:`cueflow.http_client.ApiClient`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from cueflow.agents.client import JSON
from cueflow.http_client import ApiClient
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
        api = ApiClient(base_url, api_key, timeout=timeout, transport=transport)
        super().__init__(api, worker_id or new_worker_id("agent"))

    def __repr__(self) -> str:
        return f"HttpWorkerClient({self.api.base_url!r}, worker_id={self.worker_id!r})"

    async def get_execution(self, execution_id: str) -> JSON:
        """One execution."""
        result: JSON = await self.api.get(f"/v1/executions/{execution_id}")
        return result

    async def list_executions(
        self,
        *,
        cue_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> JSON:
        """A page of executions, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        params.update({k: v for k, v in {"cue_id": cue_id, "status": status}.items() if v})
        result: JSON = await self.api.get("/v1/executions", **params)
        return result

    async def create_cue(self, spec: JSON) -> JSON:
        """Create a cue."""
        result: JSON = await self.api.post("/v1/cues", spec)
        return result

    async def list_cues(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> JSON:
        """A page of cues, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        result: JSON = await self.api.get("/v1/cues", **params)
        return result

    async def get_cue(self, cue_id: str) -> JSON:
        """One cue."""
        result: JSON = await self.api.get(f"/v1/cues/{cue_id}")
        return result

    async def update_cue(self, cue_id: str, patch: JSON) -> JSON:
        """Change a cue."""
        result: JSON = await self.api.patch(f"/v1/cues/{cue_id}", patch)
        return result

    async def fire_cue(self, cue_id: str, body: JSON | None = None) -> JSON:
        """Fire a cue now or at ``send_at``."""
        result: JSON = await self.api.post(f"/v1/cues/{cue_id}/fire", body or {})
        return result

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue."""
        await self.api.delete(f"/v1/cues/{cue_id}")

    async def list_flows(self, *, limit: int = 20, offset: int = 0) -> JSON:
        """A page of flows, newest first."""
        result: JSON = await self.api.get("/v1/flows", limit=limit, offset=offset)
        return result

    async def start_flow_run(self, flow_id: str, body: JSON) -> JSON:
        """Start a run of a flow."""
        result: JSON = await self.api.post(f"/v1/flows/{_part(flow_id)}/runs", body)
        return result

    async def get_flow_run(self, run_id: str) -> JSON:
        """One run with its steps."""
        result: JSON = await self.api.get(f"/v1/flow-runs/{_part(run_id)}")
        return result

    async def send_flow_event(self, run_id: str, name: str, data: Any = None) -> JSON:
        """Send an event to a run."""
        path = f"/v1/flow-runs/{_part(run_id)}/events/{_part(name)}"
        result: JSON = await self.api.post(path, {"data": data})
        return result

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.api.aclose()


def _part(value: str) -> str:
    """``value`` as one path segment (a model's argument cannot reach another route)."""
    return quote(value, safe="")
