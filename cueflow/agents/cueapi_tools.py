"""The agent tools under the names and arguments of CueAPI's own MCP server (``@cueapi/mcp``:
``cueapi_create_cue`` ... ``cueapi_report_outcome``), so prompts written for it carry over to
``cueflow mcp --tool-names cueapi`` (or ``both``).

Where CueAPI's tool and cueflow's take the same arguments, the cueflow tool is reused under the
CueAPI name. The rest map CueAPI's arguments onto the same session and client calls:

* ``worker_id`` (claim, claim next, heartbeat) is accepted for compatibility; the server acts
  as its own worker id (shown in the result) and keeps held leases alive itself.
* ``payload_override`` on ``cueapi_fire_cue`` is merged over the cue's payload for that one
  run (``merge_strategy`` ``merge``, the default) or replaces it (``replace``).
  Arguments CueAPI's server sends on to hosted-only features (``agent``,
  ``require_payload_override``, ``required_payload_keys``) are not arguments here: passing one
  is an error, never silently dropped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, HttpUrl, model_validator

from cueflow.agents.client import JSON
from cueflow.agents.schemas import CueId, ExecutionId, ToolArgs
from cueflow.agents.session import ToolFailure, WorkerSession
from cueflow.agents.tools import TOOLS, ToolSpec
from cueflow.states import ScheduleType

_WORKER_ID = Field(
    None,
    max_length=255,
    description="Accepted for compatibility with CueAPI's MCP server: this server claims, "
    "heartbeats and reports as its own worker id, and keeps held leases alive itself.",
)


class CreateCueArgs(ToolArgs):
    """CueAPI's create: exactly one of ``cron`` or ``at``; a webhook cue when
    ``callback_url`` is given, a worker cue otherwise."""

    name: str = Field(min_length=1, max_length=255, description="Unique name of the cue.")
    cron: str | None = Field(None, max_length=100, description="Recurring: a 5-field cron.")
    at: datetime | None = Field(None, description="One time: an ISO-8601 time in the future.")
    callback_url: HttpUrl | None = Field(
        None, description="Webhook URL fired when the cue triggers (omit for worker mode)."
    )
    worker: bool | None = Field(
        None, description="True: worker transport, no callback URL (the default without one)."
    )
    timezone: str = Field("UTC", max_length=64, description="IANA timezone of the cron.")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="JSON data delivered with each execution."
    )
    description: str | None = Field(None, max_length=1000, description="What the cue is for.")

    @model_validator(mode="after")
    def _consistent(self) -> CreateCueArgs:
        if (self.cron is None) == (self.at is None):
            raise ValueError("give exactly one of cron or at")
        if self.callback_url is not None and self.worker:
            raise ValueError("give callback_url (a webhook cue) or worker true, not both")
        if self.callback_url is None and self.worker is False:
            raise ValueError("a cue that is not a worker cue needs callback_url")
        return self

    def body(self) -> JSON:
        """The ``POST /v1/cues`` body."""
        schedule: JSON = (
            {"type": ScheduleType.RECURRING.value, "cron": self.cron}
            if self.cron is not None
            else {"type": ScheduleType.ONCE.value, "at": self.at.isoformat() if self.at else None}
        )
        body: JSON = {
            "name": self.name,
            "transport": "worker" if self.callback_url is None else "webhook",
            "schedule": {**schedule, "timezone": self.timezone},
            "payload": self.payload,
        }
        if self.callback_url is not None:
            body["callback"] = {"url": str(self.callback_url)}
        if self.description is not None:
            body["description"] = self.description
        return body


class UpdateCueArgs(ToolArgs):
    """CueAPI's update: only the fields given change."""

    cue_id: CueId
    name: str | None = Field(None, min_length=1, max_length=255, description="New cue name.")
    cron: str | None = Field(None, max_length=100, description="New cron (recurring).")
    at: datetime | None = Field(None, description="New ISO-8601 time (one time).")
    callback_url: HttpUrl | None = Field(None, description="New webhook URL.")
    timezone: str | None = Field(
        None, max_length=64, description="New IANA timezone (with cron or at)."
    )
    payload: dict[str, Any] | None = Field(None, description="New stored payload.")
    description: str | None = Field(None, max_length=1000, description="New description.")

    @model_validator(mode="after")
    def _consistent(self) -> UpdateCueArgs:
        if self.cron is not None and self.at is not None:
            raise ValueError("give cron or at, not both")
        if self.timezone is not None and self.cron is None and self.at is None:
            raise ValueError("timezone changes with a schedule: give cron or at too")
        return self

    def patch(self) -> JSON:
        """The ``PATCH /v1/cues/{id}`` body."""
        patch: JSON = {
            key: value
            for key, value in {
                "name": self.name,
                "description": self.description,
                "payload": self.payload,
            }.items()
            if value is not None
        }
        if self.callback_url is not None:
            patch["callback"] = {"url": str(self.callback_url)}
        if self.cron is not None:
            patch["schedule"] = {"type": ScheduleType.RECURRING.value, "cron": self.cron}
        elif self.at is not None:
            patch["schedule"] = {"type": ScheduleType.ONCE.value, "at": self.at.isoformat()}
        if self.timezone is not None:
            patch["schedule"]["timezone"] = self.timezone
        return patch


class FireCueArgs(ToolArgs):
    json_text_fields = ("payload_override",)

    cue_id: CueId
    payload_override: dict[str, Any] | None = Field(
        None, description="Payload keys for this one run, merged over the cue's payload."
    )
    merge_strategy: Literal["merge", "replace"] | None = Field(
        None, description="merge (default): override keys win; replace: override is the payload."
    )


class ClaimableArgs(ToolArgs):
    task_name: str | None = Field(
        None, max_length=255, description="Only executions whose payload.task is this."
    )


class ClaimArgs(ToolArgs):
    execution_id: ExecutionId
    worker_id: str | None = _WORKER_ID


class ClaimNextArgs(ToolArgs):
    worker_id: str | None = _WORKER_ID
    task_name: str | None = Field(
        None, max_length=255, description="Only an execution whose payload.task is this."
    )


class HeartbeatArgs(ToolArgs):
    execution_id: ExecutionId
    worker_id: str | None = _WORKER_ID


def _task(session: WorkerSession, task_name: str | None) -> str | None:
    if session.task is not None and task_name not in (None, session.task):
        raise ToolFailure(f"this server only serves task {session.task!r}")
    return task_name or session.task


async def _create_cue(session: WorkerSession, args: CreateCueArgs) -> JSON:
    return await session.client.create_cue(args.body())


async def _update_cue(session: WorkerSession, args: UpdateCueArgs) -> JSON:
    return await session.client.update_cue(args.cue_id, args.patch())


async def _fire_cue(session: WorkerSession, args: FireCueArgs) -> JSON:
    body: JSON = {}
    if args.payload_override is not None:
        body["payload_override"] = args.payload_override
    if args.merge_strategy is not None:
        body["merge_strategy"] = args.merge_strategy
    return await session.client.fire_cue(args.cue_id, body or None)


async def _claimable(session: WorkerSession, args: ClaimableArgs) -> JSON:
    task = _task(session, args.task_name)
    items = await session.client.claimable(task)
    return {"executions": items, "count": len(items)}


async def _claimed(session: WorkerSession, execution_id: str | None) -> JSON:
    lease, already = await session.claim(execution_id)
    return {
        "claimed": True,
        "already_held": already,
        "worker_id": session.worker_id,
        "lease_seconds": lease.lease_seconds,
        **session.describe(lease),
    }


async def _claim(session: WorkerSession, args: ClaimArgs) -> JSON:
    return await _claimed(session, args.execution_id)


async def _claim_next(session: WorkerSession, args: ClaimNextArgs) -> JSON:
    task = _task(session, args.task_name)
    if task == session.task:
        return await _claimed(session, None)
    for item in await session.client.claimable(task):
        try:
            return await _claimed(session, item["execution_id"])
        except ToolFailure as exc:
            if "claim_failed" not in str(exc):
                raise  # another worker won it: try the next
    raise ToolFailure(f"no executions of task {task!r} are available for claiming right now")


async def _heartbeat(session: WorkerSession, args: HeartbeatArgs) -> JSON:
    execution_id = args.execution_id
    if not session.holds(execution_id):
        why = session.lost.get(execution_id)
        if why is not None:
            raise ToolFailure(f"this worker lost its claim on {execution_id} [{why}]")
        raise ToolFailure(f"this worker holds no claim on {execution_id}; claim it first")
    if not await session.heartbeat(execution_id):
        why = session.lost.get(execution_id, "lease_lost")
        raise ToolFailure(f"this worker lost its claim on {execution_id} [{why}]")
    lease = session.held[execution_id]
    return {
        "execution_id": execution_id,
        "held": True,
        "worker_id": session.worker_id,
        "lease_seconds": lease.lease_seconds,
    }


_BY_NAME = {spec.name: spec for spec in TOOLS}


def _same(name: str) -> ToolSpec:
    """The cueflow tool taking the same arguments, under CueAPI's ``name``."""
    return replace(_BY_NAME[name.removeprefix("cueapi_")], name=name)


CUEAPI_TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "cueapi_list_claimable_executions",
        "List worker executions that are due and unclaimed, oldest first (optionally only of "
        "one payload.task). Read-only.",
        ClaimableArgs,
        _claimable,
        read_only=True,
    ),
    ToolSpec(
        "cueapi_claim_execution",
        "Claim one execution so that only you work on it; returns its payload (the work). "
        "Finish with cueapi_report_outcome. The lease is kept alive while this server runs.",
        ClaimArgs,
        _claim,
    ),
    ToolSpec(
        "cueapi_claim_next_execution",
        "Claim the oldest claimable execution (optionally only of one payload.task); returns "
        "its payload (the work). Finish with cueapi_report_outcome.",
        ClaimNextArgs,
        _claim_next,
    ),
    ToolSpec(
        "cueapi_execution_heartbeat",
        "Extend the lease of an execution you claimed (this server also does it on its own).",
        HeartbeatArgs,
        _heartbeat,
    ),
    _same("cueapi_report_outcome"),
    _same("cueapi_get_execution"),
    ToolSpec(
        "cueapi_create_cue",
        "Create a cue: a schedule (cron, or once at a time) that fires a webhook "
        "(callback_url) or creates worker executions (worker true) with its payload.",
        CreateCueArgs,
        _create_cue,
        "manage",
    ),
    _same("cueapi_list_cues"),
    _same("cueapi_get_cue"),
    _same("cueapi_pause_cue"),
    _same("cueapi_resume_cue"),
    _same("cueapi_list_executions"),
    ToolSpec(
        "cueapi_update_cue",
        "Change a cue's name, schedule, callback URL, timezone, payload or description; only "
        "the fields given change. Use cueapi_pause_cue / cueapi_resume_cue for its status.",
        UpdateCueArgs,
        _update_cue,
        "manage",
    ),
    ToolSpec(
        "cueapi_fire_cue",
        "Fire a cue now, whatever its schedule: creates an execution with the cue's payload.",
        FireCueArgs,
        _fire_cue,
        "manage",
    ),
    _same("cueapi_delete_cue"),
)
"""Every CueAPI-named tool, worker tools first."""
