"""The answers' shapes, for the OpenAPI document.

Routes render their answers with orjson (:mod:`cueflow.api.render`) and return them as
responses, so FastAPI never validates or re-serialises them through these models: they only
describe, in ``/openapi.json``, what a client receives. ``tests/test_schema_fuzz.py`` checks
every answer against them. Extra keys are allowed (additive fields never break a client).
The worker protocol's answers are in :mod:`cueflow.api.worker_responses`, the keys', flows' and
statistics' in modules of their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cueflow.schema_examples import with_example


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=with_example)


class Schedule(_Wire):
    """A cue's schedule; ``cron``, ``at`` and ``interval_seconds`` appear by type, ``fall_back``
    when it was sent."""

    type: str
    timezone: str
    cron: str | None = None
    at: datetime | None = None
    interval_seconds: int | None = None
    fall_back: str | None = None


class Callback(_Wire):
    """Where a webhook cue is sent (``url`` is null for worker cues)."""

    url: str | None
    method: str
    headers: dict[str, str]


class Retry(_Wire):
    """The retry policy."""

    max_attempts: int
    backoff_minutes: list[int]


class Concurrency(_Wire):
    """A cue's concurrency limit (cueflow extension)."""

    limit: int
    key: str | None


class RateLimit(Concurrency):
    """A cue's rate limit (cueflow extension): ``limit`` starts per ``period_seconds``."""

    period_seconds: int


class Cue(_Wire):
    """The contract's Cue object (plus cueflow's additive fields)."""

    id: str
    name: str
    description: str | None
    status: str
    transport: str
    schedule: Schedule
    callback: Callback
    payload: dict[str, Any]
    retry: Retry
    next_run: datetime | None
    last_run: datetime | None
    run_count: int
    fired_count: int
    on_failure: dict[str, Any]
    verification: dict[str, Any] | None
    warning: str | None
    created_at: datetime
    updated_at: datetime
    overlap_policy: str = "allow"
    priority: int = 0
    concurrency: Concurrency | None = None
    rate_limit: RateLimit | None = None
    required_payload_keys: list[str] = []


class Outcome(_Wire):
    """A reported outcome."""

    success: bool | None
    result: str | None
    error: str | None
    metadata: Any
    recorded_at: datetime


class Execution(_Wire):
    """The contract's 13-key Execution object (plus cueflow's additive fields)."""

    id: str
    cue_id: str
    scheduled_for: datetime
    status: str
    http_status: int | None
    attempts: int
    error_message: str | None
    started_at: datetime | None
    delivered_at: datetime | None
    last_attempt_at: datetime | None
    outcome: Outcome | None
    created_at: datetime
    updated_at: datetime


class CueList(_Wire):
    """``GET /v1/cues``."""

    cues: list[Cue]
    total: int
    limit: int
    offset: int


class CueDetail(Cue):
    """``GET /v1/cues/{id}``: the cue and a page of its executions."""

    executions: list[Execution]
    execution_total: int
    execution_limit: int
    execution_offset: int


class ExecutionList(_Wire):
    """``GET /v1/executions``."""

    executions: list[Execution]
    total: int
    limit: int
    offset: int
    has_more: bool
    oldest_claimed_at: datetime | None


class VerificationState(_Wire):
    """The verification endpoints' answers."""

    execution_id: str
    outcome_state: str | None


class Run(_Wire):
    """A manual run: ``POST /v1/cues/{id}/fire`` and ``POST /v1/executions/{id}/replay``."""

    id: str
    cue_id: str
    scheduled_for: datetime
    status: str
    triggered_by: str
    replayed_from: str | None = None


class Registered(_Wire):
    """``POST /v1/auth/register``: the only time the key is shown."""

    api_key: str
    email: str


class Account(_Wire):
    """``GET /v1/auth/me``."""

    email: str
    plan: str
    active_cues: int
    active_cue_limit: int
    executions_this_month: int
    monthly_execution_limit: int
    rate_limit_per_minute: int
    has_webhook_secret: bool
    api_key_prefix: str
    slug: str


class AccountUpdated(_Wire):
    """``PATCH /v1/auth/me``."""

    updated_at: datetime


class KeyRegenerated(_Wire):
    """``POST /v1/auth/key/regenerate``."""

    api_key: str
    previous_key_revoked: bool


class KeyReveal(_Wire):
    """``GET /v1/auth/key``: cueflow keeps only a hash, so the key is ``null``."""

    api_key: str | None
    prefix: str | None = None
    message: str | None = None


class WebhookSecret(_Wire):
    """The webhook secret (after a rotation: ``previous_secret_revoked``, ``..._valid_until``)."""

    webhook_secret: str
    previous_secret_revoked: bool | None = None


class AlertWebhookSecret(_Wire):
    """The alert webhook secret (and, after a rotation, ``previous_secret_revoked``)."""

    alert_webhook_secret: str
    previous_secret_revoked: bool | None = None


class Alert(_Wire):
    """One alert."""

    id: Any
    cue_id: str | None
    execution_id: str | None
    alert_type: str
    severity: str
    message: str
    metadata: dict[str, Any]
    acknowledged: bool
    created_at: datetime


class Alerts(_Wire):
    """``GET /v1/alerts``."""

    alerts: list[Alert]
    total: int
    limit: int
    offset: int


class Usage(_Wire):
    """``GET /v1/usage``."""

    plan: str
    cues: dict[str, Any]
    executions: dict[str, Any]
    rate_limit: dict[str, Any]


class Info(_Wire):
    """``GET /v1/info``."""

    version: str
    authentication_paths: dict[str, bool]


class Health(_Wire):
    """``GET /health``."""

    status: str
    version: str
    timestamp: datetime
    services: dict[str, str]


class Status(_Wire):
    """``GET /status`` (503 when the database is down)."""

    status: str


class EchoStored(_Wire):
    """``POST /v1/echo/{token}``."""

    stored: bool


class EchoRead(_Wire):
    """``GET /v1/echo/{token}``: ``waiting``, or ``delivered`` with what was stored."""

    status: str
