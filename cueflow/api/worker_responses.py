"""The answers' shapes of the worker protocol (claimable, claims, leases, outcomes, release,
the worker registry), for the OpenAPI document (as :mod:`cueflow.api.responses` for the rest):
descriptions only, never used to validate or re-serialise an answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from cueflow.api.errors import ErrorDetail
from cueflow.schema_examples import with_example


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=with_example)


class ClaimableExecution(_Wire):
    """One item of ``GET /v1/executions/claimable``."""

    execution_id: str
    cue_id: str
    cue_name: str
    task: str | None
    scheduled_for: datetime
    payload: dict[str, Any]
    attempt: int


class Claimable(_Wire):
    """``GET /v1/executions/claimable``."""

    executions: list[ClaimableExecution]


class Claimed(_Wire):
    """A won claim, in both shapes: the open server's ``claimed``, ``execution_id`` and
    ``lease_seconds`` (what the official clients read), and the ``id``, ``status`` and
    ``claimed_at`` of CueAPI's Workers document."""

    claimed: Literal[True]
    execution_id: str
    lease_seconds: int
    id: str
    """The claimed execution (the same as ``execution_id``)."""
    status: Literal["claimed"]
    """Always ``claimed``; the execution itself now shows ``delivering``."""
    claimed_at: datetime


class ClaimedInBatch(ClaimableExecution):
    """One execution won by ``POST /v1/executions/claims``: a claimable item with its lease
    end and the ``id``/``status``/``claimed_at`` of a single claim's answer."""

    lease_expires_at: datetime
    id: str
    status: Literal["claimed"]
    claimed_at: datetime


class BatchRefusal(_Wire):
    """A listed execution a batch claim could not win, with the single claim's error."""

    execution_id: str
    error: ErrorDetail


class BatchClaimed(_Wire):
    """``POST /v1/executions/claims`` (cueflow extension)."""

    claimed: list[ClaimedInBatch]
    lease_seconds: int
    failed: list[BatchRefusal]


class BatchOutcome(_Wire):
    """One answer of ``POST /v1/executions/outcomes``: the single outcome's answer or error,
    with its status."""

    execution_id: str
    status: int
    error: ErrorDetail | None = None


class BatchOutcomes(_Wire):
    """``POST /v1/executions/outcomes`` (cueflow extension)."""

    results: list[BatchOutcome]


class Released(_Wire):
    """``POST /v1/executions/{id}/release`` (cueflow extension)."""

    execution_id: str
    released: bool
    status: str
    attempts: int
    next_attempt_at: datetime | None = None
    """When it is claimable again (``None``: it failed, its attempts used up)."""


class LeaseExtended(_Wire):
    """``POST /v1/executions/{id}/heartbeat``."""

    execution_id: str
    lease_extended_until: datetime
    acknowledged: bool


class OutcomeRecorded(_Wire):
    """``POST /v1/executions/{id}/outcome``."""

    execution_id: str
    outcome_recorded: bool
    outcome_state: str | None
    reason: str | None


class WorkerAcknowledged(_Wire):
    """``POST /v1/worker/heartbeat``."""

    acknowledged: bool
    server_time: datetime


class Worker(_Wire):
    """One registered worker."""

    worker_id: str
    last_heartbeat: datetime
    seconds_since_heartbeat: float
    heartbeat_status: str
    handlers: list[str] | None
    registered_since: datetime


class Workers(_Wire):
    """``GET /v1/workers``."""

    workers: list[Worker]
