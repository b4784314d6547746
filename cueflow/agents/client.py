"""What agent tools need from cueflow: the :class:`WorkerClient` protocol.

Two implementations speak it: :class:`cueflow.agents.engine_client.EngineWorkerClient` calls an
embedded engine directly, :class:`cueflow.agents.http_client.HttpWorkerClient` calls any cueflow
or CueAPI server over its REST API. Both answer with the REST wire shapes (plain JSON values) and
raise :class:`ClientError` for every failure a caller can cause, so the layers above never see
which one they talk to.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any, Protocol

from pydantic import ValidationError

from cueflow.clock import Clock

JSON = dict[str, Any]


class ClientError(Exception):
    """A refused request: the HTTP status, the contract's error ``code`` and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.status = status
        self.code = code
        self.message = message


def validation_message(exc: ValidationError) -> str:
    """A pydantic error as ``field: problem; ...``, without echoing the input values."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def new_worker_id(prefix: str = "agent") -> str:
    """A worker id unique to this process and call: ``agent-<host>-<pid>-<random>``."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"{prefix}-{host}-{os.getpid()}-{secrets.token_hex(3)}"


class WorkerClient(Protocol):
    """The worker pull protocol plus cue management, for one account and one worker id.

    Every method answers with the REST API's JSON shapes and raises :class:`ClientError` for a
    refusal (unknown id, lost claim, invalid input). Credentials stay inside the client.
    """

    worker_id: str
    """The id this client claims, heartbeats and reports as."""
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

    async def release(self, execution_id: str, reason: str | None = None) -> JSON:
        """Give a claim back unfinished: ``{execution_id, released, status}``."""
        ...

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

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue and its executions."""
        ...

    async def fire_cue(self, cue_id: str) -> JSON:
        """Fire a cue now (``POST /v1/cues/{id}/fire``): ``{id, cue_id, scheduled_for, status,
        triggered_by}`` of the new execution."""
        ...

    async def aclose(self) -> None:
        """Free the client's resources (connections)."""
        ...
