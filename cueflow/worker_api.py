"""The worker pull protocol (:class:`WorkerApi`) and its HTTP implementation
(:class:`HttpWorker`), which the worker core (:mod:`cueflow.worker_core`) drives."""

from __future__ import annotations

from typing import Any, Protocol

from cueflow.client import ApiError, AsyncClient
from cueflow.clock import Clock, SystemClock
from cueflow.states import Status

JSON = dict[str, Any]


class WorkerApi(Protocol):
    """The worker pull protocol for one account and one worker id. Every method answers with
    the REST API's JSON shapes and raises :class:`~cueflow.client.ApiError` when refused."""

    worker_id: str
    """The id this worker claims, heartbeats and reports as."""
    clock: Clock
    """The clock leases are measured on (the engine's, or the wall clock over HTTP)."""

    async def claimable(self, task: str | None = None) -> list[JSON]:
        """``GET /v1/executions/claimable`` items, oldest first."""
        ...

    async def claim_due(self, task: str | None = None, wait: float = 0) -> JSON | None:
        """Claim the oldest due execution (of ``task``) in one request, waiting up to ``wait``
        seconds for one to arrive (cueflow's batch claim extension,
        ``POST /v1/executions/claims``). Returns the claimed item (the claimable shape plus
        ``lease_seconds``) or ``None``; raises :class:`NotImplementedError` when the server
        does not offer the extension, and the caller falls back to poll and claim."""
        ...

    async def claim(self, execution_id: str | None = None) -> JSON:
        """Claim one execution (or the oldest due one): ``{claimed, execution_id,
        lease_seconds}``."""
        ...

    async def heartbeat(self, execution_id: str) -> JSON:
        """Extend the lease of a claim this worker holds."""
        ...

    async def report_outcome(self, execution_id: str, report: JSON) -> JSON:
        """Record an outcome (an ``OutcomeReport`` body) as this worker, once."""
        ...

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give a claim back unfinished, claimable again after ``retry_after`` seconds (default:
        the cue's retry backoff): ``{execution_id, released, status, ...}``."""
        ...

    async def register(self, handlers: list[str]) -> JSON:
        """Register or refresh this worker (``POST /v1/worker/heartbeat``) with the task names
        it handles, so it is listed in ``GET /v1/workers``."""
        ...


class HttpWorker:
    """The :class:`WorkerApi` over the REST API of any cueflow or CueAPI server. Only standard
    endpoints are needed: the batch claim and ``POST /v1/executions/{id}/release`` are cueflow
    extensions, and without the release one a release is reported as a failure instead.

    It sends through :class:`cueflow.client.AsyncClient` (its errors, URL check and retries)
    but reads answers as JSON, not as the client's models: a CueAPI server's answers need not
    carry every field cueflow's own schemas require."""

    def __init__(self, api: AsyncClient, worker_id: str) -> None:
        self.api = api
        self.worker_id = worker_id
        self.clock: Clock = SystemClock()
        self._no_batch = False
        self._named: dict[str, str | None] = {"X-Worker-Id": worker_id}

    async def claimable(
        self, task: str | None = None, *, wait: float | None = None, limit: int | None = None
    ) -> list[JSON]:
        """Claimable executions, oldest first; ``wait`` asks the server to hold an empty answer
        that long and ``limit`` to list no more (cueflow extensions other servers ignore)."""
        params = {"task": task, "wait": wait, "limit": limit}
        path = "/v1/executions/claimable"
        body = await self.api.request("GET", path, params=params, waits=wait or 0)
        return list(body.get("executions", []))

    async def claim_due(self, task: str | None = None, wait: float = 0) -> JSON | None:
        """Claim the oldest due execution with ``POST /v1/executions/claims`` (long-polling up
        to ``wait`` seconds); :class:`NotImplementedError` on a server without it (remembered,
        so the extension is probed once)."""
        if self._no_batch:
            raise NotImplementedError("the server has no batch claim endpoint")
        body: JSON = {"worker_id": self.worker_id, "limit": 1, "wait": max(0.0, min(wait, 60))}
        if task:
            body["task"] = task
        try:
            path = "/v1/executions/claims"
            answer = await self.api.request("POST", path, body=body, waits=body["wait"])
        except ApiError as exc:
            if exc.status in (404, 405):
                self._no_batch = True
                raise NotImplementedError("the server has no batch claim endpoint") from exc
            raise
        claimed = answer.get("claimed") or []
        if not claimed:
            return None
        return {**claimed[0], "lease_seconds": answer.get("lease_seconds")}

    async def claim(self, execution_id: str | None = None) -> JSON:
        """Claim one execution (or the oldest due one)."""
        path = f"/v1/executions/{execution_id}/claim" if execution_id else "/v1/executions/claim"
        result: JSON = await self.api.request("POST", path, body={"worker_id": self.worker_id})
        return result

    async def heartbeat(self, execution_id: str) -> JSON:
        """Extend a held claim's lease."""
        path = f"/v1/executions/{execution_id}/heartbeat"
        result: JSON = await self.api.request("POST", path, headers=self._named)
        return result

    async def report_outcome(self, execution_id: str, report: JSON) -> JSON:
        """Record an outcome as this worker."""
        body = {**report, "worker_id": self.worker_id}
        path = f"/v1/executions/{execution_id}/outcome"
        result: JSON = await self.api.request("POST", path, body=body, headers=self._named)
        return result

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give a held claim back; a server without the extension gets a failure outcome."""
        body: JSON = {"worker_id": self.worker_id, "reason": reason}
        if retry_after is not None:
            body["retry_after_seconds"] = retry_after
        try:
            path = f"/v1/executions/{execution_id}/release"
            result: JSON = await self.api.request("POST", path, body=body)
            return result
        except ApiError as exc:
            no_endpoint = exc.status in (404, 405) and exc.code != "execution_not_found"
            if not no_endpoint:
                raise
        error = f"released by worker: {reason}" if reason else "released by worker"
        await self.report_outcome(execution_id, {"success": False, "error": error})
        return {"execution_id": execution_id, "released": False, "status": Status.FAILED.value}

    async def register(self, handlers: list[str]) -> JSON:
        """Register or refresh this worker."""
        body = {"worker_id": self.worker_id, "handlers": handlers}
        result: JSON = await self.api.request("POST", "/v1/worker/heartbeat", body=body)
        return result
