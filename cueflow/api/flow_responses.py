"""The answers' shapes of the flow routes, for the OpenAPI document (as
:mod:`cueflow.api.responses` for the rest): descriptions only, never used to validate or
re-serialise an answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cueflow.schema_examples import with_example


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=with_example)


class Flow(_Wire):
    """A flow definition."""

    id: str
    name: str
    description: str | None
    input_schema: dict[str, Any] | None
    schedule: dict[str, Any] | None
    misfire_policy: str | None
    schedule_input: Any
    schedule_status: str | None
    next_run: datetime | None
    steps: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class FlowList(_Wire):
    """A page of flows."""

    flows: list[Flow]
    total: int
    limit: int
    offset: int


class StepState(_Wire):
    """One step of a run (``items`` too for a ``for_each`` step)."""

    status: str
    attempts: int
    execution_ids: list[str]
    output: Any
    error: Any
    started_at: datetime | None
    finished_at: datetime | None


class FlowRun(_Wire):
    """A run; ``steps`` when one run is read."""

    id: str
    flow_id: str
    status: str
    input: Any
    idempotency_key: str | None
    trigger: str
    scheduled_for: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    steps: dict[str, StepState] | None = None


class FlowRunList(_Wire):
    """A page of runs."""

    runs: list[FlowRun]
    total: int
    limit: int
    offset: int


class FlowEvent(_Wire):
    """What an event did: the run's status and which wait steps it resumed."""

    run_id: str
    status: str
    event: str
    resumed: list[str]
