"""What agent tools need from cueflow: the :class:`WorkerClient` protocol.

Two implementations speak it: :class:`cueflow.agents.engine_client.EngineWorkerClient` calls an
embedded engine directly, :class:`cueflow.agents.http_client.HttpWorkerClient` calls any cueflow
or CueAPI server over its REST API. Both answer with the REST wire shapes (plain JSON values) and
raise :class:`ClientError` for every failure a caller can cause, so the layers above never see
which one they talk to.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import ValidationError

from cueflow.client import ApiError
from cueflow.worker_api import JSON, WorkerApi
from cueflow.worker_core import new_worker_id

__all__ = ["JSON", "ClientError", "WorkerClient", "new_worker_id", "validation_message"]

ClientError = ApiError
"""A refused request: the HTTP status, the contract's error ``code``, its message and
``retry_after`` (the one error type of :mod:`cueflow.client`)."""


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as ``field: problem; ...``, without echoing the input values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class WorkerClient(WorkerApi, Protocol):
    """The worker pull protocol (:class:`cueflow.worker_api.WorkerApi`) plus cue and flow
    management, for one account and one worker id.

    Every method answers with the REST API's JSON shapes and raises :class:`ClientError` for a
    refusal (unknown id, lost claim, invalid input). Credentials stay inside the client.
    """

    async def get_execution(self, execution_id: str) -> JSON:
        """One execution (the contract's Execution object)."""
        ...

    async def list_executions(
        self,
        *,
        cue_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> JSON:
        """A page of executions: ``{executions, total, limit, offset, ...}``."""
        ...

    async def create_cue(self, spec: JSON) -> JSON:
        """Create a cue from a ``POST /v1/cues`` body; the Cue object."""
        ...

    async def list_cues(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> JSON:
        """A page of cues: ``{cues, total, limit, offset}``."""
        ...

    async def get_cue(self, cue_id: str) -> JSON:
        """One cue."""
        ...

    async def update_cue(self, cue_id: str, patch: JSON) -> JSON:
        """Change a cue (``PATCH /v1/cues/{id}``); pause/resume is ``{"status": ...}``."""
        ...

    async def fire_cue(self, cue_id: str, body: JSON | None = None) -> JSON:
        """Fire a cue now (``POST /v1/cues/{id}/fire``; ``body`` may hold ``send_at``,
        ``payload_override``, ``merge_strategy`` and ``idempotency_key``): ``{id, cue_id,
        scheduled_for, status, triggered_by, payload}`` of the execution."""
        ...

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue and its executions."""
        ...

    async def list_flows(self, *, limit: int = 20, offset: int = 0) -> JSON:
        """A page of flows: ``{flows, total, limit, offset}``."""
        ...

    async def start_flow_run(self, flow_id: str, body: JSON) -> JSON:
        """Start a run (``POST /v1/flows/{id}/runs`` with ``input`` and ``idempotency_key``):
        the run with its steps."""
        ...

    async def get_flow_run(self, run_id: str) -> JSON:
        """One run with the state of each of its steps."""
        ...

    async def send_flow_event(self, run_id: str, name: str, data: Any = None) -> JSON:
        """Send event ``name`` with ``data`` to a run: ``{run_id, status, event, resumed}``."""
        ...

    async def aclose(self) -> None:
        """Free the client's resources (connections)."""
        ...
