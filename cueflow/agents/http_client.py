""":class:`HttpWorkerClient`: the worker protocol over the REST API of any cueflow or CueAPI
server. Only standard endpoints are used, except ``POST /v1/executions/{id}/release`` (a cueflow
extension): against a server without it, a release is reported as a failure outcome instead."""

from __future__ import annotations

from typing import Any

import httpx

from cueflow.agents.client import JSON, ClientError, new_worker_id
from cueflow.clock import Clock, SystemClock
from cueflow.states import Status


def _error(response: httpx.Response) -> ClientError:
    """The error envelope (``{"error": {"code", "message"}}``) of a refused request."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "error")
        message = str(error.get("message") or response.reason_phrase)
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        code, message = "error", body["detail"]
    else:
        code, message = "error", response.reason_phrase or f"HTTP {response.status_code}"
    return ClientError(response.status_code, code, message[:500])


class HttpWorkerClient:
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
        self.worker_id = worker_id or new_worker_id()
        self.clock: Clock = SystemClock()
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )
        self._no_batch = False

    def __repr__(self) -> str:
        return f"HttpWorkerClient({str(self._http.base_url)!r}, worker_id={self.worker_id!r})"

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(503, "unreachable", f"cueflow server unreachable: {exc}") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response.json() if response.content else None

    async def claimable(self, task: str | None = None) -> list[JSON]:
        """Claimable executions, oldest first."""
        params = {"task": task} if task else None
        body = await self._request("GET", "/v1/executions/claimable", params=params)
        return list(body.get("executions", []))

    async def claim_due(self, task: str | None = None, wait: float = 0) -> JSON | None:
        """Claim the oldest due execution with ``POST /v1/executions/claims`` (long-polling
        up to ``wait`` seconds); :class:`NotImplementedError` on a server without it (then
        remembered, so the extension is probed once)."""
        if self._no_batch:
            raise NotImplementedError("the server has no batch claim endpoint")
        body: JSON = {"worker_id": self.worker_id, "limit": 1, "wait": max(0.0, min(wait, 60))}
        if task:
            body["task"] = task
        timeout = self._http.timeout.read
        read = None if timeout is None else timeout + body["wait"]
        try:
            answer = await self._request(
                "POST",
                "/v1/executions/claims",
                json=body,
                timeout=httpx.Timeout(self._http.timeout.connect, read=read),
            )
        except ClientError as exc:
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
        result: JSON = await self._request("POST", path, json={"worker_id": self.worker_id})
        return result

    async def heartbeat(self, execution_id: str) -> JSON:
        """Extend a held claim's lease."""
        headers = {"X-Worker-Id": self.worker_id}
        path = f"/v1/executions/{execution_id}/heartbeat"
        result: JSON = await self._request("POST", path, headers=headers)
        return result

    async def report_outcome(self, execution_id: str, report: JSON) -> JSON:
        """Record an outcome as this worker."""
        body = {**report, "worker_id": self.worker_id}
        headers = {"X-Worker-Id": self.worker_id}
        path = f"/v1/executions/{execution_id}/outcome"
        result: JSON = await self._request("POST", path, json=body, headers=headers)
        return result

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give a held claim back; a server without the extension gets a failure outcome."""
        body: JSON = {"worker_id": self.worker_id, "reason": reason}
        if retry_after is not None:
            body["retry_after_seconds"] = retry_after
        try:
            result: JSON = await self._request(
                "POST", f"/v1/executions/{execution_id}/release", json=body
            )
            return result
        except ClientError as exc:
            no_endpoint = exc.status in (404, 405) and exc.code != "execution_not_found"
            if not no_endpoint:
                raise
        error = f"released by worker: {reason}" if reason else "released by worker"
        await self.report_outcome(execution_id, {"success": False, "error": error})
        return {"execution_id": execution_id, "released": False, "status": Status.FAILED.value}

    async def register(self, handlers: list[str]) -> JSON:
        """Register or refresh this worker."""
        body = {"worker_id": self.worker_id, "handlers": handlers}
        result: JSON = await self._request("POST", "/v1/worker/heartbeat", json=body)
        return result

    async def get_execution(self, execution_id: str) -> JSON:
        """One execution."""
        result: JSON = await self._request("GET", f"/v1/executions/{execution_id}")
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
        result: JSON = await self._request("GET", "/v1/executions", params=params)
        return result

    async def create_cue(self, spec: JSON) -> JSON:
        """Create a cue."""
        result: JSON = await self._request("POST", "/v1/cues", json=spec)
        return result

    async def list_cues(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> JSON:
        """A page of cues, newest first."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status:
            params["status"] = status
        result: JSON = await self._request("GET", "/v1/cues", params=params)
        return result

    async def get_cue(self, cue_id: str) -> JSON:
        """One cue."""
        result: JSON = await self._request("GET", f"/v1/cues/{cue_id}")
        return result

    async def update_cue(self, cue_id: str, patch: JSON) -> JSON:
        """Change a cue."""
        result: JSON = await self._request("PATCH", f"/v1/cues/{cue_id}", json=patch)
        return result

    async def fire_cue(self, cue_id: str, body: JSON | None = None) -> JSON:
        """Fire a cue now or at ``send_at``."""
        result: JSON = await self._request("POST", f"/v1/cues/{cue_id}/fire", json=body or {})
        return result

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue."""
        await self._request("DELETE", f"/v1/cues/{cue_id}")

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
