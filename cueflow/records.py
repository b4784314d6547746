"""Typed records: the shapes that cross layers, built by the SQL layer from stored rows.

A store's unit of work (:class:`cueflow.store.StoreTx`) returns these instead of mappings: the
row becomes a record at the storage edge (:mod:`cueflow.sql.rows`), and the use cases, the
scheduler, the dispatcher, the public Python API (:class:`cueflow.engine.Engine`) and the wire
rendering (:mod:`cueflow.wire`) read attributes. Each query that joins a cue's fields onto an
execution has its own record, so what a row carries is a type, not a docstring.

Records are slotted dataclasses with no behaviour, read-only to type checkers (``@record``:
``mypy`` refuses an assignment to a field) but not frozen at run time, because a frozen
dataclass sets each field through ``object.__setattr__`` and the hot paths build thousands a
second (a frozen 31-field cue cost ~6 µs to make, a plain one ~1 µs). No validation runs when
one is made, and changing one changes nothing stored. Statuses are the enums of
:mod:`cueflow.states` (which are the wire strings themselves); timestamps are aware UTC
datetimes. Secrets — API key hashes, webhook and alert signing secrets — never appear in a
record's ``repr``, so a record can be logged.

Long because: it is the one catalogue of the shapes the store hands out, read as a whole by
whoever adds a query or a store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, dataclass_transform

from cueflow.scopes import Scope
from cueflow.states import CueStatus, RunStatus, ScheduleType, Status, StepStatus

JsonObject = dict[str, Any]

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[_T]) -> type[_T]:
    """Make ``cls`` a record: a slotted dataclass that type checkers treat as frozen."""
    return dataclass(slots=True)(cls)


@record
class Account:
    """A registered user. Only the SHA-256 of the API key is stored (``api_key_hash``)."""

    id: str
    email: str
    api_key_hash: str = field(repr=False)
    api_key_prefix: str
    plan: str
    slug: str
    webhook_secret: str = field(repr=False)
    """Signs the webhook deliveries of the account's cues (``whsec_...``)."""
    alert_webhook_url: str | None
    alert_webhook_secret: str | None = field(repr=False)
    """Signs the account's alert notices; made on first use."""
    created_at: datetime
    updated_at: datetime


@record
class Cue:
    """A named schedule with a payload and a transport."""

    id: str
    user_id: str
    name: str
    description: str | None
    status: CueStatus
    schedule_type: ScheduleType
    schedule_cron: str | None
    schedule_at: datetime | None
    schedule_timezone: str
    schedule_interval_seconds: int | None
    schedule_fall_back: str | None
    misfire_policy: str
    transport: str
    task: str | None
    """The payload's ``task``, kept beside it so that queries can filter on it."""
    callback_url: str | None
    callback_method: str
    callback_headers: dict[str, str]
    payload: JsonObject
    retry_max_attempts: int
    retry_backoff_minutes: list[int]
    on_failure: JsonObject | None
    verification_mode: str | None
    timeout_seconds: int | None
    next_run: datetime | None
    last_run: datetime | None
    run_count: int
    fired_count: int
    created_at: datetime
    updated_at: datetime
    flow_id: str | None
    """Set on a flow step's hidden cue (never listed, scheduled or counted as the user's)."""
    overlap_policy: str = "allow"
    """What a fire does while an earlier run is not over (:class:`cueflow.run_controls.Overlap`)."""
    priority: int = 0
    """Claims and deliveries take higher first (:mod:`cueflow.run_controls`)."""
    concurrency_limit: int | None = None
    """At most this many runs claimed or being delivered at once (of the cue, or of every cue
    sharing ``concurrency_key``)."""
    concurrency_key: str | None = None
    rate_limit: int | None = None
    """At most this many starts per ``rate_period_seconds`` (of the cue, or of every cue sharing
    ``rate_key``)."""
    rate_period_seconds: int | None = None
    rate_key: str | None = None
    required_payload_keys: list[str] | None = None
    """Keys every run's payload must carry (a fire without one is refused)."""
    declaration: str | None = None
    """Set on a cue declared in code (``@engine.cron`` ...): the fingerprint of the declaration
    it was last synced from, or ``removed`` (:mod:`cueflow.declared_cues`); ``None`` on a cue
    made by hand."""


@record
class Execution:
    """One run of a cue; ``(cue_id, scheduled_for)`` is its fire key. ``user_id`` and
    ``transport`` are the cue's."""

    id: str
    cue_id: str
    user_id: str
    transport: str
    scheduled_for: datetime
    status: Status
    triggered_by: str | None
    http_status: int | None
    attempts: int
    error_message: str | None
    started_at: datetime | None
    delivered_at: datetime | None
    last_attempt_at: datetime | None
    next_retry: datetime | None
    claimed_by_worker: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    last_heartbeat_at: datetime | None
    payload_override: Any
    """This run's payload when it differs from the cue's (a manual fire's override)."""
    outcome_success: bool | None
    outcome_result: str | None
    outcome_error: str | None
    outcome_metadata: JsonObject | None
    outcome_recorded_at: datetime | None
    outcome_state: str | None
    evidence: JsonObject | None
    created_at: datetime
    updated_at: datetime
    outcome_output: Any
    """The outcome's ``output`` (flows: the step's output), any JSON."""
    flow_run_id: str | None
    """Set, with ``step_id``, ``item`` and ``step_attempt`` (the hand-off key), on the
    execution of a flow step."""
    step_id: str | None
    item: int | None
    step_attempt: int | None
    priority: int = 0
    """Its cue's (or flow step's) priority when it was made."""
    concurrency_key: str | None = None
    """What its concurrency limit counts it under (``cue:<id>`` or ``key:<key>``)."""
    concurrency_limit: int | None = None
    rate_key: str | None = None
    """What its rate limit counts its starts under (``cue:<id>`` or ``key:<key>``)."""
    rate_limit: int | None = None
    rate_period_seconds: int | None = None
    waiting_for: JsonObject | None = None
    """What a limit holds this ``pending`` run back for (read models only, never stored:
    :func:`cueflow.run_limits.waiting_for`)."""


@record
class Worker:
    """A worker process known through its heartbeats (unique per account and ``worker_id``)."""

    id: str
    user_id: str
    worker_id: str
    handlers: list[str] | None
    last_heartbeat: datetime
    created_at: datetime


@record
class WorkerStatus:
    """A worker as ``GET /v1/workers`` lists it (a read model, never stored): its heartbeat's
    age and what that makes it, ``active`` within the heartbeat timeout, ``stale`` within the
    claim timeout, else ``dead``."""

    worker_id: str
    last_heartbeat: datetime
    seconds_since_heartbeat: int
    heartbeat_status: str
    handlers: list[str] | None
    registered_since: datetime


@record
class AccountSummary:
    """An account with its counts and limits (``GET /v1/auth/me``; a read model)."""

    email: str
    plan: str
    active_cues: int
    active_cue_limit: int
    """0: unlimited."""
    executions_this_month: int
    monthly_execution_limit: int
    """0: unlimited."""
    rate_limit_per_minute: int
    has_webhook_secret: bool
    api_key_prefix: str
    slug: str


@record
class Alert:
    """Something an account should know went wrong (``GET /v1/alerts``); ``alert_metadata`` is
    the wire's ``metadata``."""

    id: str
    user_id: str
    cue_id: str | None
    execution_id: str | None
    alert_type: str
    severity: str
    message: str
    alert_metadata: JsonObject | None
    acknowledged: bool
    created_at: datetime


@record
class ApiKey:
    """A scoped API key of an account (the account's own key lives on :class:`Account`). Only
    the SHA-256 of the secret is stored; ``prefix`` is its first 12 characters."""

    id: str
    user_id: str
    name: str | None
    scope: Scope
    key_hash: str = field(repr=False)
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@record
class ApiKeyList:
    """An account's live scoped keys, oldest first, and its own key's prefix
    (``GET /v1/auth/keys``; a read model)."""

    account_key_prefix: str
    keys: list[ApiKey]


@record
class EchoMessage:
    """A request body kept a few minutes by ``POST /v1/echo/{token}``."""

    token: str
    payload: Any
    headers: dict[str, str]
    received_at: datetime
    expires_at: datetime


# The shapes of joined queries ---------------------------------------------------------------


@record
class OutcomeTarget:
    """An execution an outcome report names, with what its cue decides about outcomes (both
    ``None`` when the cue is gone)."""

    execution: Execution
    verification_mode: str | None
    schedule_type: ScheduleType | None


@record
class QueuedRun:
    """An execution waiting for (or just claimed by) a worker, with its cue's name, task and
    payload: an item of ``GET /v1/executions/claimable`` or of a batch claim."""

    id: str
    cue_id: str
    scheduled_for: datetime
    attempts: int
    payload_override: Any
    cue_name: str | None
    task: str | None
    payload: JsonObject | None
    """The cue's payload (``payload_override`` replaces it for this run when set)."""


@record
class LimitedRun:
    """An execution a claim or a delivery may start, with the limits it is stamped with
    (:mod:`cueflow.run_limits` admits it or holds it back)."""

    id: str
    user_id: str
    concurrency_key: str | None
    concurrency_limit: int | None
    rate_key: str | None
    rate_limit: int | None
    rate_period_seconds: int | None


@dataclass(slots=True)
class KeyLoad:
    """What holds a limit key now: executions in flight and live rate-limit starts (with the
    time the first of those expires). A tally, not a snapshot: admission counts what it admits
    into it."""

    in_flight: int = 0
    starts: int = 0
    first_expiry: datetime | None = None


@record
class FiredRun:
    """An execution the scheduler inserted for a due cue."""

    id: str
    cue_id: str
    status: Status


@record
class ExpiredLease:
    """A claim whose lease ended (or whose worker went silent), with its cue's retry and
    failure policy."""

    id: str
    cue_id: str
    user_id: str
    attempts: int
    claimed_by_worker: str | None
    lease_expires_at: datetime | None
    cue_name: str
    retry_max_attempts: int
    retry_backoff_minutes: list[int]
    schedule_type: ScheduleType
    on_failure: JsonObject | None


@record
class DeliveryCandidate:
    """A due push execution the dispatcher may claim, with what fair sharing weighs: its
    account and its cue's ``callback_url`` (the destination)."""

    id: str
    user_id: str
    scheduled_for: datetime
    callback_url: str | None
    concurrency_key: str | None = None
    concurrency_limit: int | None = None
    rate_key: str | None = None
    rate_limit: int | None = None
    rate_period_seconds: int | None = None


@record
class DueDelivery:
    """A push execution claimed for delivery, with everything its attempt needs: the cue's
    callback, payload, retry and failure policy, and the owner's signing secret."""

    id: str
    cue_id: str
    user_id: str
    scheduled_for: datetime
    attempts: int
    payload_override: Any
    cue_name: str
    task: str | None
    callback_url: str | None
    callback_method: str
    callback_headers: dict[str, str] | None
    payload: JsonObject | None
    retry_max_attempts: int
    retry_backoff_minutes: list[int]
    schedule_type: ScheduleType
    on_failure: JsonObject | None
    verification_mode: str | None
    timeout_seconds: int | None
    flow_run_id: str | None
    """Set on a flow step's execution (its output is kept)."""
    webhook_secret: str = field(repr=False)
    previous_webhook_secret: str | None = field(default=None, repr=False)
    """The secret a rotation replaced, while its overlap window lasts: deliveries are signed
    with both."""


FailedAttempt = ExpiredLease | DueDelivery
"""An attempt whose failure the dispatcher records (a delivery that failed or was cut off)."""


@record
class UnservedDelivery:
    """A pending push execution no process here serves the task of."""

    id: str
    task: str | None


@record
class UnclaimedRun:
    """A pull execution nobody claimed in time, with its cue's schedule type and failure
    policy."""

    id: str
    cue_id: str
    schedule_type: ScheduleType
    on_failure: JsonObject | None


@record
class FinishedRun:
    """A cue's finished or reported execution, as failure streaks count them."""

    id: str
    status: Status
    outcome_success: bool | None


# Flows -------------------------------------------------------------------------------------


@record
class FlowRecord:
    """A flow: its definition (``steps``, as validated) and the hidden cue of each task step."""

    id: str
    user_id: str
    name: str
    description: str | None
    input_schema: JsonObject | None
    steps: list[JsonObject]
    step_cues: dict[str, str]
    created_at: datetime
    updated_at: datetime
    schedule: Cue | None = None
    """The hidden cue holding the flow's schedule (:mod:`cueflow.flow_schedule`), when it has
    one; not a column: the flow use cases attach it."""


@record
class FlowRunRecord:
    """A run: its status, input, and the definition it started with."""

    id: str
    flow_id: str
    user_id: str
    status: RunStatus
    input: Any
    idempotency_key: str | None
    steps: list[JsonObject]
    step_cues: dict[str, str]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    trigger: str | None = None
    scheduled_for: datetime | None = None


@record
class StepRecord:
    """One step of a run (``item`` -1) or one item of a ``for_each`` step (``item`` 0...)."""

    id: str
    run_id: str
    step_id: str
    item: int
    status: StepStatus
    attempts: int
    execution_ids: list[str]
    item_input: Any
    output: Any
    error: JsonObject | None
    event: str | None
    wait_until: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
