""":class:`EngineWorkerClient`: the worker protocol straight on an embedded engine.

Each call first checks that the principal's key may call the REST route it stands for
(:mod:`cueflow.scopes`), so a worker-scoped key does over MCP exactly what it could over HTTP:
a refusal is the same 403 ``insufficient_scope``."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import ValidationError

from cueflow.agents.client import JSON, ClientError, new_worker_id, validation_message
from cueflow.authentication import Principal
from cueflow.clock import Clock
from cueflow.errors import CueflowError
from cueflow.flow_wire import flow_json
from cueflow.flow_wire import run_json as flow_run_json
from cueflow.manual_runs import FireRequest
from cueflow.scopes import require
from cueflow.store import ExecutionFilter
from cueflow.wire import claimable_json, cue_json, execution_json, run_json

if TYPE_CHECKING:
    from cueflow.engine import Engine

T = TypeVar("T")
_OPTS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _wire(value: Any) -> JSON:
    """``value`` (a wire dict) as the REST API would send it (datetimes as ISO text)."""
    sent: JSON = orjson.loads(orjson.dumps(value, option=_OPTS))
    return sent


async def _call(work: Awaitable[T]) -> T:
    try:
        return await work
    except CueflowError as exc:
        raise ClientError(exc.status, exc.code, exc.message) from exc
    except ValidationError as exc:
        raise ClientError(422, "validation_error", validation_message(exc)) from exc


async def _validated(model: Any, body: JSON) -> Any:
    return model.model_validate(body)


def _may(user: Principal, route: str) -> None:
    """Raise the REST API's 403 ``insufficient_scope`` unless ``user``'s key may call
    ``route``."""
    try:
        require(user.scope, route)
    except CueflowError as exc:
        raise ClientError(exc.status, exc.code, exc.message) from exc


class EngineWorkerClient:
    """A :class:`~cueflow.agents.client.WorkerClient` for ``user`` on an embedded engine (which
    the caller opens or starts; its clock measures leases)."""

    def __init__(self, engine: Engine, user: Principal, *, worker_id: str | None = None) -> None:
        self.engine = engine
        self.user = user
        self.worker_id = worker_id or new_worker_id("agent")
        self.clock: Clock = engine.clock

    async def claimable(self, task: str | None = None) -> list[JSON]:
        """Claimable executions, oldest first."""
        _may(self.user, "GET /v1/executions/claimable")
        runs = await _call(self.engine.claimable(self.user, task))
        return [_wire(claimable_json(run)) for run in runs]

    async def claim_due(self, task: str | None = None, wait: float = 0) -> JSON | None:
        """Claim the oldest due execution (of ``task``), waiting up to ``wait`` seconds."""
        _may(self.user, "POST /v1/executions/claims")
        batch = await _call(
            self.engine.claim_batch(self.user, self.worker_id, limit=1, task=task, wait=wait)
        )
        if not batch.claimed:
            return None
        item = claimable_json(batch.claimed[0])
        return _wire({**item, "lease_seconds": batch.lease_seconds})

    async def claim(self, execution_id: str | None = None) -> JSON:
        """Claim one execution (or the oldest due one)."""
        _may(self.user, "POST /v1/executions/claim")
        return _wire(await _call(self.engine.claim(self.user, self.worker_id, execution_id)))

    async def heartbeat(self, execution_id: str) -> JSON:
        """Extend a held claim's lease."""
        _may(self.user, "POST /v1/executions/{execution_id}/heartbeat")
        work = self.engine.heartbeat_execution(self.user, execution_id, self.worker_id)
        return _wire(await _call(work))

    async def report_outcome(self, execution_id: str, report: JSON) -> JSON:
        """Record an outcome as this worker."""
        _may(self.user, "POST /v1/executions/{execution_id}/outcome")
        body = {**report, "worker_id": self.worker_id}
        work = self.engine.report_outcome(self.user, execution_id, body, self.worker_id)
        return _wire(await _call(work))

    async def release(
        self, execution_id: str, reason: str | None = None, retry_after: float | None = None
    ) -> JSON:
        """Give a held claim back unfinished."""
        _may(self.user, "POST /v1/executions/{execution_id}/release")
        work = self.engine.release_execution(
            self.user, execution_id, self.worker_id, reason, retry_after_seconds=retry_after
        )
        return _wire(await _call(work))

    async def register(self, handlers: list[str]) -> JSON:
        """Register or refresh this worker."""
        _may(self.user, "POST /v1/worker/heartbeat")
        work = self.engine.worker_heartbeat(self.user, self.worker_id, handlers)
        return _wire(await _call(work))

    async def get_execution(self, execution_id: str) -> JSON:
        """One execution."""
        _may(self.user, "GET /v1/executions/{execution_id}")
        found = self.engine.get_execution_with_payload(self.user, execution_id)
        execution, payload = await _call(found)
        return _wire({**execution_json(execution), "payload": payload})

    async def list_executions(
        self,
        *,
        cue_id: str | None = None,
        status: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> JSON:
        """A page of executions, newest first."""
        _may(self.user, "GET /v1/executions")
        where = ExecutionFilter(cue_id=cue_id, statuses=[status] if status else None)
        work = self.engine.list_executions(self.user, where, limit=limit, offset=offset)
        page = await _call(work)
        return _wire(
            {
                "executions": [execution_json(execution) for execution in page.rows],
                "total": page.total,
                "limit": limit,
                "offset": offset,
                "has_more": offset + limit < page.total,
            }
        )

    async def create_cue(self, spec: JSON) -> JSON:
        """Create a cue."""
        _may(self.user, "POST /v1/cues")
        cue, warning = await _call(self.engine.create_cue(self.user, spec))
        return _wire(cue_json(cue, warning))

    async def list_cues(
        self, *, status: str | None = None, limit: int = 20, offset: int = 0
    ) -> JSON:
        """A page of cues, newest first."""
        _may(self.user, "GET /v1/cues")
        work = self.engine.list_cues(self.user, status=status, limit=limit, offset=offset)
        found, total = await _call(work)
        cues = [cue_json(cue) for cue in found]
        return _wire({"cues": cues, "total": total, "limit": limit, "offset": offset})

    async def get_cue(self, cue_id: str) -> JSON:
        """One cue."""
        _may(self.user, "GET /v1/cues/{cue_id}")
        return _wire(cue_json(await _call(self.engine.get_cue(self.user, cue_id))))

    async def update_cue(self, cue_id: str, patch: JSON) -> JSON:
        """Change a cue."""
        _may(self.user, "PATCH /v1/cues/{cue_id}")
        return _wire(cue_json(await _call(self.engine.update_cue(self.user, cue_id, patch))))

    async def fire_cue(self, cue_id: str, body: JSON | None = None) -> JSON:
        """Fire a cue now or at ``send_at``, with ``payload_override`` (``merge_strategy``) and
        ``idempotency_key`` as ``POST /v1/cues/{id}/fire`` takes them."""
        _may(self.user, "POST /v1/cues/{cue_id}/fire")
        request = await _call(_validated(FireRequest, body or {}))
        run = await _call(
            self.engine.fire_cue(
                self.user,
                cue_id,
                send_at=request.send_at,
                payload_override=request.payload_override,
                merge_strategy=request.merge_strategy or "merge",
                idempotency_key=request.idempotency_key,
            )
        )
        return _wire(run_json(run, payload=run.fire_payload))

    async def delete_cue(self, cue_id: str) -> None:
        """Delete a cue."""
        _may(self.user, "DELETE /v1/cues/{cue_id}")
        await _call(self.engine.delete_cue(self.user, cue_id))

    async def list_flows(self, *, limit: int = 20, offset: int = 0) -> JSON:
        """A page of flows, newest first."""
        _may(self.user, "GET /v1/flows")
        found, total = await _call(self.engine.list_flows(self.user, limit=limit, offset=offset))
        flows = [flow_json(flow) for flow in found]
        return _wire({"flows": flows, "total": total, "limit": limit, "offset": offset})

    async def start_flow_run(self, flow_id: str, body: JSON) -> JSON:
        """Start a run of a flow."""
        _may(self.user, "POST /v1/flows/{flow_id}/runs")
        run, steps, _ = await _call(self.engine.start_flow_run(self.user, flow_id, body))
        return _wire(flow_run_json(run, steps))

    async def get_flow_run(self, run_id: str) -> JSON:
        """One run with its steps."""
        _may(self.user, "GET /v1/flow-runs/{run_id}")
        return _wire(flow_run_json(*await _call(self.engine.get_flow_run(self.user, run_id))))

    async def send_flow_event(self, run_id: str, name: str, data: Any = None) -> JSON:
        """Send an event to a run."""
        _may(self.user, "POST /v1/flow-runs/{run_id}/events/{name}")
        run, resumed = await _call(self.engine.send_flow_event(self.user, run_id, name, data))
        return _wire({"run_id": run.id, "status": run.status, "event": name, "resumed": resumed})

    async def aclose(self) -> None:
        """Nothing to free: the engine belongs to the caller."""
