"""SQLModel table declarations: the one source of the schema.

The Alembic migrations under ``cueflow/migrations`` create exactly these tables; a test compares
the migrated database with this metadata so the two can never drift apart.

Long because: it is the one declaration of every table, kept together so the schema reads whole.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from cueflow.sql.types import JSONType, SealedJSON, SealedText, UTCDateTime
from cueflow.states import CUE_INITIAL, Status


def _dt(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONType, nullable=nullable))


def _sealed(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(SealedText(), nullable=nullable))


class User(SQLModel, table=True):
    """An account. Only the SHA-256 of its API key is stored; its signing secrets are
    encrypted at rest when ``CUEFLOW_SECRET_KEY`` is set (:mod:`cueflow.sql.secret_box`)."""

    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=36)
    email: str = Field(max_length=320, unique=True)
    api_key_hash: str = Field(max_length=64, unique=True)
    api_key_prefix: str = Field(max_length=12)
    plan: str = Field(default="free", max_length=50)
    slug: str = Field(max_length=80, unique=True)
    webhook_secret: str = _sealed(nullable=False)
    alert_webhook_url: str | None = Field(default=None, max_length=2048)
    alert_webhook_secret: str | None = _sealed()
    created_at: datetime = _dt(nullable=False)
    updated_at: datetime = _dt(nullable=False)
    previous_webhook_secret: str | None = _sealed()
    """The webhook secret a rotation replaced; it also signs deliveries until
    ``previous_webhook_secret_until`` (the rotation's overlap window)."""
    previous_webhook_secret_until: datetime | None = _dt()


class Cue(SQLModel, table=True):
    """A named schedule with a payload and a transport."""

    __tablename__ = "cues"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_cues_user_name"),
        Index("ix_cues_due", "status", "next_run"),
        Index("ix_cues_user_listed", "user_id", "flow_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=20)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    status: str = Field(default=CUE_INITIAL.value, max_length=20)
    schedule_type: str = Field(max_length=10)
    schedule_cron: str | None = Field(default=None, max_length=100)
    schedule_at: datetime | None = _dt()
    schedule_timezone: str = Field(default="UTC", max_length=64)
    schedule_interval_seconds: int | None = Field(default=None)
    schedule_fall_back: str | None = Field(default=None, max_length=10)
    misfire_policy: str = Field(default="fire_once", max_length=20)
    transport: str = Field(max_length=64)
    task: str | None = Field(default=None, max_length=255)
    callback_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    callback_method: str = Field(default="POST", max_length=10)
    callback_headers: dict[str, str] = Field(
        default=None, sa_column=Column(SealedJSON(), nullable=False)
    )
    """Encrypted at rest when ``CUEFLOW_SECRET_KEY`` is set: they often hold tokens."""
    payload: dict[str, Any] = _json(nullable=False)
    retry_max_attempts: int = Field(default=3)
    retry_backoff_minutes: list[int] = _json(nullable=False)
    on_failure: dict[str, Any] | None = _json()
    verification_mode: str | None = Field(default=None, max_length=50)
    timeout_seconds: int | None = Field(default=None)
    next_run: datetime | None = _dt()
    last_run: datetime | None = _dt()
    run_count: int = Field(default=0)
    fired_count: int = Field(default=0)
    created_at: datetime = _dt(nullable=False)
    updated_at: datetime = _dt(nullable=False)
    flow_id: str | None = Field(default=None, max_length=20)
    """Set on a flow step's hidden cue (never listed, scheduled or counted as the user's)."""
    overlap_policy: str = Field(
        default="allow", sa_column=Column(String(20), nullable=False, server_default="allow")
    )
    """What a fire does while an earlier run is not over (:class:`cueflow.run_controls.Overlap`)."""
    priority: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    concurrency_limit: int | None = Field(default=None)
    concurrency_key: str | None = Field(default=None, max_length=255)
    rate_limit: int | None = Field(default=None)
    rate_period_seconds: int | None = Field(default=None)
    rate_key: str | None = Field(default=None, max_length=255)
    required_payload_keys: list[str] | None = _json()
    declaration: str | None = Field(default=None, max_length=64)
    """Set on a cue declared in code: the fingerprint of the declaration it was last synced
    from, or ``removed`` (:mod:`cueflow.declared_cues`); ``NULL`` on a cue made by hand."""


FIRE_KEY = ["cue_id", "scheduled_for"]
FIRE_KEY_WHERE = text("flow_run_id IS NULL")
"""The fire key is unique among executions that are not flow steps (a partial index)."""


class Execution(SQLModel, table=True):
    """One run of a cue: the fire key is ``(cue_id, scheduled_for)``.

    ``user_id`` and ``transport`` are copied from the cue so that the hot worker queries
    (claimable, claim-next) read one table with one index. An execution of a flow step carries
    ``flow_run_id``, ``step_id``, ``item`` (-1: the step itself; 0...: an item of a
    ``for_each`` step) and ``step_attempt``: the hand-off key, unique, in place of the fire key
    (items of one step share their hidden cue and may share a time).
    """

    __tablename__ = "executions"
    __table_args__ = (
        Index(
            "uq_executions_fire_key",
            "cue_id",
            "scheduled_for",
            unique=True,
            sqlite_where=FIRE_KEY_WHERE,
            postgresql_where=FIRE_KEY_WHERE,
        ),
        Index(
            "uq_executions_step_key",
            "flow_run_id",
            "step_id",
            "item",
            "step_attempt",
            unique=True,
        ),
        Index("ix_executions_concurrency", "user_id", "concurrency_key", "status"),
        Index("ix_executions_user_created", "user_id", "created_at"),
        Index("ix_executions_cue_created", "cue_id", "created_at"),
        Index("ix_executions_lease", "status", "lease_expires_at"),
        Index("ix_executions_dispatch", "status", "transport", "scheduled_for"),
        Index("ix_executions_retry", "status", "next_retry"),
        Index("ix_executions_retention", "status", "updated_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    cue_id: str = Field(
        sa_column=Column(String(20), ForeignKey("cues.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: str = Field(max_length=36)
    transport: str = Field(max_length=64)
    scheduled_for: datetime = _dt(nullable=False)
    status: str = Field(default=Status.PENDING.value, max_length=20)
    triggered_by: str | None = Field(default=None, max_length=50)
    http_status: int | None = Field(default=None)
    attempts: int = Field(default=0)
    error_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime | None = _dt()
    delivered_at: datetime | None = _dt()
    last_attempt_at: datetime | None = _dt()
    next_retry: datetime | None = _dt()
    claimed_by_worker: str | None = Field(default=None, max_length=255)
    claimed_at: datetime | None = _dt()
    lease_expires_at: datetime | None = _dt()
    last_heartbeat_at: datetime | None = _dt()
    payload_override: Any = _json()
    """The payload of this run when it differs from the cue's (a fire's ``payload_override``)."""
    outcome_success: bool | None = Field(default=None)
    outcome_result: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    outcome_metadata: dict[str, Any] | None = _json()
    outcome_recorded_at: datetime | None = _dt()
    outcome_state: str | None = Field(default=None, max_length=30)
    evidence: dict[str, Any] | None = _json()
    created_at: datetime = _dt(nullable=False)
    updated_at: datetime = _dt(nullable=False)
    outcome_output: Any = _json()
    """The outcome's ``output`` (flows: the step's output), any JSON."""
    flow_run_id: str | None = Field(default=None, max_length=20)
    step_id: str | None = Field(default=None, max_length=64)
    item: int | None = Field(default=None)
    step_attempt: int | None = Field(default=None)
    priority: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    """The cue's (or flow step's) ``priority`` when this run was made: claims and deliveries
    take higher first (:mod:`cueflow.run_controls`)."""
    concurrency_key: str | None = Field(default=None, max_length=300)
    """What a concurrency limit counts this run under (``cue:<id>`` or ``key:<key>``), with
    its ``concurrency_limit``; ``None``: no limit."""
    concurrency_limit: int | None = Field(default=None)
    rate_key: str | None = Field(default=None, max_length=300)
    """What a rate limit counts this run's starts under, with ``rate_limit`` starts per
    ``rate_period_seconds``; ``None``: no rate limit."""
    rate_limit: int | None = Field(default=None)
    rate_period_seconds: int | None = Field(default=None)


class Worker(SQLModel, table=True):
    """A worker process known through its heartbeats, unique per user and ``worker_id``."""

    __tablename__ = "workers"
    __table_args__ = (UniqueConstraint("user_id", "worker_id", name="uq_workers_user_worker"),)

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    worker_id: str = Field(max_length=255)
    handlers: list[str] | None = _json()
    last_heartbeat: datetime = _dt(nullable=False)
    created_at: datetime = _dt(nullable=False)


class Alert(SQLModel, table=True):
    """Something a user should know went wrong, listed by ``GET /v1/alerts``.

    ``alert_metadata`` is the wire's ``metadata`` (the name is taken in SQLModel classes).
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_user_created", "user_id", "created_at"),
        Index("ix_alerts_created", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    cue_id: str | None = Field(default=None, max_length=20)
    execution_id: str | None = Field(default=None, max_length=36)
    alert_type: str = Field(max_length=50)
    severity: str = Field(default="warning", max_length=20)
    message: str = Field(sa_column=Column(Text, nullable=False))
    alert_metadata: dict[str, Any] | None = _json()
    acknowledged: bool = Field(default=False)
    created_at: datetime = _dt(nullable=False)


class RotatedKey(SQLModel, table=True):
    """The hash of an API key replaced by a regeneration, kept a day so that the old key answers
    401 ``key_rotated`` (rather than ``invalid_api_key``) on every node."""

    __tablename__ = "rotated_keys"

    key_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    rotated_at: datetime = _dt(nullable=False, index=True)


class ApiKey(SQLModel, table=True):
    """A scoped API key (``full``, ``worker`` or ``read``) of an account, besides the account's
    own key. Only the SHA-256 of the secret is stored; a revoked key keeps its row (so it
    answers 401 ``key_revoked``)."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_user_created", "user_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=20)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    name: str | None = Field(default=None, max_length=100)
    scope: str = Field(max_length=20)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=12)
    created_at: datetime = _dt(nullable=False)
    last_used_at: datetime | None = _dt()
    revoked_at: datetime | None = _dt()


class EchoMessage(SQLModel, table=True):
    """A request body stored by ``POST /v1/echo/{token}`` for a few minutes (the CLI's
    ``quickstart`` delivery target)."""

    __tablename__ = "echo_messages"

    token: str = Field(primary_key=True, max_length=255)
    payload: Any = _json()
    headers: dict[str, str] = _json(nullable=False)
    received_at: datetime = _dt(nullable=False)
    expires_at: datetime = _dt(nullable=False, index=True)


class Flow(SQLModel, table=True):
    """A named DAG of steps (``steps``: the definition as sent, validated) and the hidden cue
    of each task step (``step_cues``: step id → cue id)."""

    __tablename__ = "flows"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_flows_user_name"),
        Index("ix_flows_user_created", "user_id", "created_at"),
    )

    id: str = Field(primary_key=True, max_length=20)
    user_id: str = Field(
        sa_column=Column(String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=255)
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    input_schema: dict[str, Any] | None = _json()
    steps: list[dict[str, Any]] = _json(nullable=False)
    step_cues: dict[str, str] = _json(nullable=False)
    created_at: datetime = _dt(nullable=False)
    updated_at: datetime = _dt(nullable=False)


class FlowRun(SQLModel, table=True):
    """One execution of a flow with an ``input``; ``steps`` and ``step_cues`` are the flow's
    definition as the run started (a later change of the flow does not reach it)."""

    __tablename__ = "flow_runs"
    __table_args__ = (
        UniqueConstraint("flow_id", "idempotency_key", name="uq_flow_runs_idempotency"),
        Index("ix_flow_runs_user_created", "user_id", "created_at"),
        Index("ix_flow_runs_retention", "status", "finished_at"),
    )

    id: str = Field(primary_key=True, max_length=20)
    flow_id: str = Field(
        sa_column=Column(String(20), ForeignKey("flows.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: str = Field(max_length=36)
    status: str = Field(max_length=20)
    input: Any = _json()
    idempotency_key: str | None = Field(default=None, max_length=255)
    steps: list[dict[str, Any]] = _json(nullable=False)
    step_cues: dict[str, str] = _json(nullable=False)
    created_at: datetime = _dt(nullable=False)
    updated_at: datetime = _dt(nullable=False)
    finished_at: datetime | None = _dt()
    trigger: str | None = Field(default=None, max_length=20)
    """What started the run: ``api`` (a start request) or ``schedule`` (the flow's schedule);
    ``None`` on runs started before schedules existed (shown as ``api``)."""
    scheduled_for: datetime | None = _dt()
    """The fire time of a run its flow's schedule started."""


class FlowStep(SQLModel, table=True):
    """The state of one step of a run (``item`` -1) or of one item of a ``for_each`` step
    (``item`` 0...). ``(run_id, step_id, item)`` is unique: the hand-off creates each once."""

    __tablename__ = "flow_steps"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id", "item", name="uq_flow_steps_key"),
        Index("ix_flow_steps_waits", "status", "wait_until"),
        Index("ix_flow_steps_open", "run_id", "step_id", "status"),
    )

    id: str = Field(primary_key=True, max_length=36)
    run_id: str = Field(
        sa_column=Column(String(20), ForeignKey("flow_runs.id", ondelete="CASCADE"), nullable=False)
    )
    step_id: str = Field(max_length=64)
    item: int = Field(sa_column=Column(Integer, nullable=False))
    status: str = Field(max_length=20)
    attempts: int = Field(default=0)
    execution_ids: list[str] = _json(nullable=False)
    item_input: Any = _json()
    """The item of the parent's output this unit works on (``for_each`` items only)."""
    output: Any = _json()
    error: dict[str, Any] | None = _json()
    event: str | None = Field(default=None, max_length=255)
    wait_until: datetime | None = _dt()
    started_at: datetime | None = _dt()
    finished_at: datetime | None = _dt()


class RateLimitStart(SQLModel, table=True):
    """One start a rate limit counts (a claim or a delivery of an execution under
    ``rate_key``), live until ``expires_at`` (its start plus its period)."""

    __tablename__ = "rate_limit_starts"

    user_id: str = Field(primary_key=True, max_length=36)
    rate_key: str = Field(primary_key=True, max_length=300)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    execution_id: str = Field(primary_key=True, max_length=36)


class ConcurrencyGate(SQLModel, table=True):
    """One row per account and concurrency key: the lock that serialises the moves of the
    key's executions into ``delivering`` across nodes (PostgreSQL: the gate trigger of
    migration 0014 and :meth:`~cueflow.sql.limit_queries.LimitQueries.lock_limit_keys`).
    It holds no count, so it cannot drift; SQLite, one writer at a time, leaves it empty."""

    __tablename__ = "concurrency_gates"

    user_id: str = Field(primary_key=True, max_length=36)
    concurrency_key: str = Field(primary_key=True, max_length=300)


class FireIdempotency(SQLModel, table=True):
    """A manual fire's ``idempotency_key``: a second fire of the cue with the key (within 24 h)
    answers with ``execution_id`` instead of firing again."""

    __tablename__ = "fire_idempotency"

    user_id: str = Field(primary_key=True, max_length=36)
    cue_id: str = Field(
        sa_column=Column(
            String(20), ForeignKey("cues.id", ondelete="CASCADE"), primary_key=True, nullable=False
        )
    )
    idempotency_key: str = Field(primary_key=True, max_length=255)
    execution_id: str = Field(max_length=36)
    created_at: datetime = _dt(nullable=False)


metadata = SQLModel.metadata
users: Table = metadata.tables[User.__tablename__]
cues: Table = metadata.tables[Cue.__tablename__]
executions: Table = metadata.tables[Execution.__tablename__]
workers: Table = metadata.tables[Worker.__tablename__]
alerts: Table = metadata.tables[Alert.__tablename__]
rotated_keys: Table = metadata.tables[RotatedKey.__tablename__]
api_keys: Table = metadata.tables[ApiKey.__tablename__]
echo_messages: Table = metadata.tables[EchoMessage.__tablename__]
flows: Table = metadata.tables[Flow.__tablename__]
flow_runs: Table = metadata.tables[FlowRun.__tablename__]
flow_steps: Table = metadata.tables[FlowStep.__tablename__]
Index(
    "ix_executions_queue",
    executions.c.user_id,
    executions.c.status,
    executions.c.priority.desc(),
    executions.c.scheduled_for,
)
"""The worker queue: an account's executions by status, higher priority first, then oldest."""
WAITING_WHERE = text("status IN ('pending', 'retry_ready')")
"""The executions waiting to start (:data:`cueflow.states.WAITING`), in the form a statement
must repeat for SQLite to use an index limited to them."""
Index(
    "ix_executions_waiting",
    executions.c.transport,
    executions.c.user_id,
    executions.c.priority.desc(),
    executions.c.scheduled_for,
    executions.c.id,
    sqlite_where=WAITING_WHERE,
    postgresql_where=WAITING_WHERE,
)
"""The dispatcher's candidates: each account's waiting executions of a transport, in the order
they are handed out, so a pass reads a few of each account rather than ranking every due one."""
rate_limit_starts: Table = metadata.tables[RateLimitStart.__tablename__]
concurrency_gates: Table = metadata.tables[ConcurrencyGate.__tablename__]
fire_idempotency: Table = metadata.tables[FireIdempotency.__tablename__]
