"""Input models: what callers may send, validated the way CueAPI validates it.

The REST API uses these as request bodies and the Python API takes the same objects, so both
reach the engine through one path. Limits and messages follow the wire contract; cueflow's
additions (``interval`` schedules, ``schedule.fall_back``, ``misfire_policy``, ``timeout_seconds``,
the run controls of :mod:`cueflow.run_controls`) are optional fields old clients never send.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    UrlConstraints,
    field_validator,
    model_validator,
)

from cueflow.jsonvalues import has_nul, strip_nul
from cueflow.run_controls import (
    MAX_CONCURRENCY_LIMIT,
    MAX_RATE_LIMIT,
    MAX_RATE_PERIOD_SECONDS,
    PRIORITY_MAX,
    PRIORITY_MIN,
)
from cueflow.schema_examples import with_example
from cueflow.states import CueStatus

HttpUrl = Annotated[AnyHttpUrl, UrlConstraints(max_length=2083, allowed_schemes=["http", "https"])]

TimeoutSeconds = Annotated[int, Field(ge=1, le=86_400)]
"""A cue's ``timeout_seconds``: how long one in-process handler run may take (other transports
ignore it; the in-process transport also caps it at ``CUEFLOW_HANDLER_TIMEOUT_SECONDS``)."""

MisfirePolicy = Literal["fire_once", "skip", "fire_all"]

OverlapPolicy = Literal["allow", "skip", "buffer_one", "cancel_other"]
"""A cue's ``overlap_policy`` (:class:`cueflow.run_controls.Overlap`)."""

Priority = Annotated[int, Field(ge=PRIORITY_MIN, le=PRIORITY_MAX)]
"""A cue's ``priority``: higher is claimed and delivered first (default 0)."""

LimitKey = Annotated[str, Field(min_length=1, max_length=255)]
"""A key several cues of an account share a concurrency or rate limit under."""

PayloadKey = Annotated[str, Field(min_length=1, max_length=255)]


def _nfc(value: Any) -> Any:
    return unicodedata.normalize("NFC", value) if isinstance(value, str) else value


CueName = Annotated[str, BeforeValidator(_nfc), Field(min_length=1, max_length=255)]
"""A cue's name, in Unicode NFC: canonically equivalent spellings ("café" composed or as "e" +
combining accent) are one name, stored and compared composed. The length limit counts the
composed characters."""


CALLBACK_METHODS = ("POST", "GET", "PUT", "PATCH")


def _refuse_nul(data: Any) -> Any:
    """Refuse NUL characters in any field but ``payload`` (checked later, with its own 400)."""
    if isinstance(data, dict):
        fields = {k: v for k, v in data.items() if k != "payload"}
        if has_nul(fields):
            raise ValueError("text must not contain NUL characters")
    return data


class _Input(BaseModel):
    """Base of every input model: no NUL characters (PostgreSQL cannot store them)."""

    model_config = ConfigDict(json_schema_extra=with_example)

    _no_nul = model_validator(mode="before")(_refuse_nul)


class _Lenient(_Input):
    """Unknown fields are ignored (POST bodies, as CueAPI does)."""

    model_config = ConfigDict(extra="ignore")


def _check_method(method: str | None) -> str | None:
    if method is not None and method not in CALLBACK_METHODS:
        raise ValueError("method must be one of POST, GET, PUT, PATCH")
    return method


class WebhookSecretRotation(_Lenient):
    """``POST /v1/auth/webhook-secret/regenerate`` (an optional body; CueAPI sends none)."""

    overlap_seconds: int | None = Field(default=None, ge=0, le=604_800)
    """How long the replaced secret keeps signing deliveries beside the new one (default: the
    server's ``CUEFLOW_WEBHOOK_SECRET_OVERLAP_SECONDS``; at most 7 days)."""


class RegisterRequest(_Lenient):
    """``POST /v1/auth/register``."""

    email: EmailStr


class ScheduleIn(_Lenient):
    """A cue's schedule. ``type``: ``recurring`` (cron), ``once`` (``at``) or ``interval``."""

    type: str
    cron: str | None = None
    at: datetime | None = None
    timezone: str = "UTC"
    interval_seconds: int | None = None
    fall_back: Literal["both", "first"] | None = None
    """Recurring schedules: a wall time the clocks repeat when daylight saving time ends fires
    at ``both`` occurrences (the default, as CueAPI) or only the ``first``."""


class CallbackIn(_Lenient):
    """Where and how a webhook is sent."""

    url: HttpUrl | None = None
    method: str = "POST"
    headers: dict[str, str] | None = None

    _method = field_validator("method")(_check_method)


class CallbackPatch(_Lenient):
    """A PATCH of the callback: only the keys sent change."""

    url: HttpUrl | None = None
    method: str | None = None
    headers: dict[str, str] | None = None

    _method = field_validator("method")(_check_method)


class RetryIn(_Lenient):
    """``max_attempts`` counts the first attempt; waits come from ``backoff_minutes``."""

    max_attempts: int = Field(3, ge=1, le=10)
    # CueAPI bounds no wait; cueflow caps each at a year so a retry time stays in the calendar
    # (a negative wait, accepted as CueAPI accepts it, counts as 0).
    backoff_minutes: list[Annotated[int, Field(le=525_600)]] = Field(
        default_factory=lambda: [1, 5, 15]
    )


class ConcurrencyIn(_Input):
    """A cue's ``concurrency``: at most ``limit`` runs claimed or being delivered at once, of
    the cue or of every cue sharing ``key``. ``{}`` (no ``limit``) removes the limit."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, le=MAX_CONCURRENCY_LIMIT)
    key: LimitKey | None = None

    @model_validator(mode="after")
    def _key_needs_limit(self) -> ConcurrencyIn:
        if self.key is not None and self.limit is None:
            raise ValueError("concurrency.key needs a concurrency.limit")
        return self


class RateLimitIn(_Input):
    """A cue's ``rate_limit``: at most ``limit`` runs started per ``period_seconds``, of the cue
    or of every cue sharing ``key``. ``{}`` (no ``limit``) removes the rate limit."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=1, le=MAX_RATE_LIMIT)
    period_seconds: int | None = Field(None, ge=1, le=MAX_RATE_PERIOD_SECONDS)
    key: LimitKey | None = None

    @model_validator(mode="after")
    def _whole(self) -> RateLimitIn:
        if (self.limit is None) != (self.period_seconds is None):
            raise ValueError("rate_limit needs both limit and period_seconds")
        if self.key is not None and self.limit is None:
            raise ValueError("rate_limit.key needs a rate_limit.limit")
        return self


RequiredPayloadKeys = Annotated[list[PayloadKey], Field(max_length=50)]
"""Keys every run's payload must carry; ``[]`` removes the requirement."""


class OnFailureIn(_Lenient):
    """What happens when an execution finally fails."""

    email: bool = True
    webhook: str | None = None
    pause: bool = False


class VerificationIn(_Lenient):
    """How a reported success is checked."""

    mode: Literal[
        "none", "require_external_id", "require_result_url", "require_artifacts", "manual"
    ] = "none"


def _reject_nested_transport(data: Any) -> Any:
    if isinstance(data, dict):
        callback = data.get("callback")
        if isinstance(callback, dict) and "transport" in callback:
            raise ValueError("transport must be specified at the top level, not inside callback")
    return data


class CueCreate(_Lenient):
    """``POST /v1/cues``."""

    name: CueName
    description: str | None = None
    schedule: ScheduleIn
    callback: CallbackIn | None = None
    transport: str = "webhook"
    payload: dict[str, Any] | None = None
    retry: RetryIn | None = None
    on_failure: OnFailureIn | None = None
    verification: VerificationIn | None = None
    misfire_policy: MisfirePolicy | None = None
    timeout_seconds: TimeoutSeconds | None = None
    overlap_policy: OverlapPolicy | None = None
    priority: Priority | None = None
    concurrency: ConcurrencyIn | None = None
    rate_limit: RateLimitIn | None = None
    required_payload_keys: RequiredPayloadKeys | None = None

    _no_nested_transport = model_validator(mode="before")(_reject_nested_transport)


class CueUpdate(_Input):
    """``PATCH /v1/cues/{id}``: every field optional, ``null`` leaves it unchanged, unknown
    fields are refused. Unlike CueAPI, a partial ``callback`` changes only the keys it sends."""

    model_config = ConfigDict(extra="forbid")

    name: CueName | None = None
    description: str | None = None
    status: str | None = None
    schedule: ScheduleIn | None = None
    callback: CallbackPatch | None = None
    payload: dict[str, Any] | None = None
    retry: RetryIn | None = None
    on_failure: OnFailureIn | None = None
    verification: VerificationIn | None = None
    misfire_policy: MisfirePolicy | None = None
    timeout_seconds: TimeoutSeconds | None = None
    overlap_policy: OverlapPolicy | None = None
    priority: Priority | None = None
    concurrency: ConcurrencyIn | None = None
    rate_limit: RateLimitIn | None = None
    required_payload_keys: RequiredPayloadKeys | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is not None and value not in (CueStatus.ACTIVE, CueStatus.PAUSED):
            raise ValueError("status must be 'active' or 'paused'")
        return value

    _no_nested_transport = model_validator(mode="before")(_reject_nested_transport)


class ClaimRequest(_Lenient):
    """Claim bodies: the claiming worker's id."""

    worker_id: str = Field(min_length=1, max_length=255)


class OutcomeReport(_Lenient):
    """``POST /v1/executions/{id}/outcome``.

    ``result`` and ``error`` longer than 2000 characters are truncated rather than refused, so
    a chatty worker's outcome is never lost (CueAPI answers 422 and the outcome is dropped).
    ``worker_id`` (or the ``X-Worker-Id`` header) is a cueflow extension: when given, a worker
    whose claim was taken over by another worker cannot overwrite the new holder's result.
    """

    success: bool
    result: str | None = None
    error: str | None = None
    metadata: dict[str, Any] | None = None
    external_id: str | None = Field(None, max_length=500)
    result_url: HttpUrl | None = None
    result_ref: str | None = Field(None, max_length=500)
    result_type: str | None = Field(None, max_length=100)
    summary: str | None = Field(None, max_length=500)
    artifacts: list[Any] | None = None
    worker_id: str | None = Field(None, max_length=255)
    output: Any = None
    """A flow step's output, any JSON (cueflow extension; without it the step's output is
    ``result``)."""

    # Outcomes are never refused for a stray NUL (the official worker does not retry): strip it.
    _no_nul = model_validator(mode="before")(strip_nul)

    @field_validator("result", "error")
    @classmethod
    def _truncate(cls, value: str | None) -> str | None:
        return value[:2000] if value is not None else None


class BatchClaimRequest(ClaimRequest):
    """``POST /v1/executions/claims`` (cueflow extension): claim the listed executions, or up
    to ``limit`` of the oldest due ones (of ``task``), waiting up to ``wait`` seconds for work
    when there is none."""

    limit: int = Field(10, ge=1, le=100)
    execution_ids: list[str] | None = Field(None, min_length=1, max_length=100)
    task: str | None = Field(None, max_length=255)
    wait: float = Field(0, ge=0, le=60)


class BatchOutcomeItem(OutcomeReport):
    """One outcome of a batch: the execution it is for, and the single outcome's fields."""

    execution_id: str = Field(min_length=1, max_length=64)


class BatchOutcomeRequest(_Lenient):
    """``POST /v1/executions/outcomes`` (cueflow extension): up to 100 outcomes."""

    outcomes: list[BatchOutcomeItem] = Field(min_length=1, max_length=100)
    worker_id: str | None = Field(None, max_length=255)


class WorkerHeartbeat(_Lenient):
    """``POST /v1/worker/heartbeat``."""

    worker_id: str = Field(max_length=255)
    handlers: list[str] | None = None
