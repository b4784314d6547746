"""The public Python API of flows: definitions, runs, cancels and events, one-line
delegations to :mod:`cueflow.flows` and :mod:`cueflow.flow_runs` (methods of
:class:`cueflow.engine.Engine`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cueflow.flow_runs as flow_runs
import cueflow.flows as flows
from cueflow.authentication import Principal
from cueflow.flow_schemas import FlowCreate, FlowUpdate, RunCreate
from cueflow.records import FlowRecord, FlowRunRecord, StepRecord

if TYPE_CHECKING:
    from cueflow.services import Services


class FlowMethods:
    """Flows, runs, cancels and events."""

    services: Services

    async def create_flow(self, user: Principal, spec: FlowCreate | dict[str, Any]) -> FlowRecord:
        """Create a flow (400 ``invalid_flow`` naming the step when its definition is wrong)."""
        return await flows.create_flow(self.services, user, FlowCreate.model_validate(spec))

    async def list_flows(
        self, user: Principal, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[FlowRecord], int]:
        """A page of the caller's flows, newest first, and their total."""
        return await flows.list_flows(self.services, user, limit, offset)

    async def get_flow(self, user: Principal, flow_id: str) -> FlowRecord:
        """One of the caller's flows."""
        return await flows.get_flow(self.services, user, flow_id)

    async def update_flow(
        self, user: Principal, flow_id: str, spec: FlowUpdate | dict[str, Any]
    ) -> FlowRecord:
        """Change a flow (runs already started keep their definition)."""
        return await flows.update_flow(
            self.services, user, flow_id, FlowUpdate.model_validate(spec)
        )

    async def delete_flow(self, user: Principal, flow_id: str) -> None:
        """Delete a flow and its finished runs (409 while a run is open)."""
        await flows.delete_flow(self.services, user, flow_id)

    async def start_flow_run(
        self, user: Principal, flow_id: str, spec: RunCreate | dict[str, Any]
    ) -> tuple[FlowRunRecord, list[StepRecord], bool]:
        """Start a run; also whether it is new (``False``: its idempotency key had one)."""
        return await flow_runs.start_run(
            self.services, user, flow_id, RunCreate.model_validate(spec)
        )

    async def list_flow_runs(
        self,
        user: Principal,
        *,
        flow_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[FlowRunRecord], int]:
        """A page of the caller's runs, newest first, and their total."""
        return await flow_runs.list_runs(self.services, user, flow_id, status, limit, offset)

    async def get_flow_run(
        self, user: Principal, run_id: str
    ) -> tuple[FlowRunRecord, list[StepRecord]]:
        """One of the caller's runs with its steps."""
        return await flow_runs.get_run(self.services, user, run_id)

    async def cancel_flow_run(
        self, user: Principal, run_id: str
    ) -> tuple[FlowRunRecord, list[StepRecord]]:
        """Cancel an open run, for good."""
        return await flow_runs.cancel_run(self.services, user, run_id)

    async def send_flow_event(
        self, user: Principal, run_id: str, name: str, data: Any = None
    ) -> tuple[FlowRunRecord, list[str]]:
        """Resume the run's wait steps for ``name`` with ``data``; the steps resumed."""
        return await flow_runs.send_event(self.services, user, run_id, name, data)
