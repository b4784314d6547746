"""Argument models of the agent tools, shared by the langchain-core tools and the MCP server.

They are what a model sees as each tool's JSON schema, so field descriptions are written for
models. No framework import here: pydantic only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

ExecutionId = Annotated[str, Field(min_length=1, max_length=64, description="The execution's id.")]
CueId = Annotated[str, Field(min_length=1, max_length=64, description="The cue's id.")]


class ToolArgs(BaseModel):
    """Base of tool arguments: unknown fields are refused, so typos surface to the model."""

    model_config = ConfigDict(extra="forbid")


class PollArgs(ToolArgs):
    limit: int = Field(10, ge=1, le=50, description="Most executions to list.")


class ClaimArgs(ToolArgs):
    execution_id: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="The execution to claim; leave it out to claim the oldest claimable one.",
    )


class ExecutionArgs(ToolArgs):
    execution_id: ExecutionId


class OutcomeFields(ToolArgs):
    """An outcome: success or failure, what came of it, and evidence."""

    success: bool = Field(description="Whether the work was done.")
    result: str | None = Field(None, max_length=2000, description="What the work produced.")
    error: str | None = Field(None, max_length=2000, description="Why it failed.")
    summary: str | None = Field(None, max_length=500, description="One-line summary.")
    external_id: str | None = Field(
        None, max_length=500, description="Id of what the work made elsewhere (evidence)."
    )
    result_url: HttpUrl | None = Field(None, description="URL of the result (evidence).")
    result_ref: str | None = Field(None, max_length=500, description="Reference to the result.")
    result_type: str | None = Field(None, max_length=100, description="Kind of result.")
    artifacts: list[dict[str, Any]] | None = Field(None, description="Produced artifacts.")
    metadata: dict[str, Any] | None = Field(None, description="Extra JSON data (under 10 KB).")

    def report(self) -> dict[str, Any]:
        """The ``POST /v1/executions/{id}/outcome`` body (fields that are set)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"execution_id"})


class ReportOutcomeArgs(OutcomeFields):
    execution_id: ExecutionId


class ReleaseArgs(ToolArgs):
    execution_id: ExecutionId
    reason: str = Field(min_length=1, max_length=500, description="Why it is given back.")


class CueIdArgs(ToolArgs):
    cue_id: CueId


class ListCuesArgs(ToolArgs):
    status: Literal["active", "paused", "completed", "failed"] | None = Field(
        None, description="Only cues in this status."
    )
    limit: int = Field(20, ge=1, le=100, description="Most cues to list.")
    offset: int = Field(0, ge=0, description="Cues to skip.")


class ListExecutionsArgs(ToolArgs):
    cue_id: str | None = Field(None, max_length=64, description="Only this cue's executions.")
    status: (
        Literal["pending", "delivering", "retrying", "retry_ready", "success", "failed", "missed"]
        | None
    ) = Field(None, description="Only executions in this status.")
    limit: int = Field(20, ge=1, le=100, description="Most executions to list.")
    offset: int = Field(0, ge=0, description="Executions to skip.")


class CreateCueArgs(ToolArgs):
    """A cue: exactly one of ``cron``, ``at`` or ``interval_seconds``."""

    name: str = Field(min_length=1, max_length=255, description="Unique name of the cue.")
    cron: str | None = Field(None, max_length=100, description="Recurring: a 5-field cron.")
    at: datetime | None = Field(None, description="One time: an ISO-8601 time in the future.")
    interval_seconds: int | None = Field(
        None, ge=1, description="Recurring every N seconds (cueflow extension)."
    )
    timezone: str = Field("UTC", max_length=64, description="IANA timezone of the cron.")
    transport: Literal["worker", "webhook"] = Field(
        "worker", description="'worker': workers claim it; 'webhook': POSTed to callback_url."
    )
    callback_url: HttpUrl | None = Field(None, description="Webhook URL (webhook cues only).")
    payload: dict[str, Any] = Field(
        default_factory=dict, description="JSON data; 'task' names the kind of work."
    )
    description: str | None = Field(None, max_length=1000, description="What the cue is for.")

    @model_validator(mode="after")
    def _one_schedule(self) -> CreateCueArgs:
        given = [self.cron, self.at, self.interval_seconds]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of cron, at or interval_seconds")
        if (self.transport == "webhook") != (self.callback_url is not None):
            raise ValueError("callback_url is required for webhook cues and only for them")
        return self

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/cues`` body."""
        if self.cron is not None:
            schedule: dict[str, Any] = {"type": "recurring", "cron": self.cron}
        elif self.at is not None:
            schedule = {"type": "once", "at": self.at.isoformat()}
        else:
            schedule = {"type": "interval", "interval_seconds": self.interval_seconds}
        schedule["timezone"] = self.timezone
        spec: dict[str, Any] = {
            "name": self.name,
            "transport": self.transport,
            "schedule": schedule,
            "payload": self.payload,
        }
        if self.callback_url is not None:
            spec["callback"] = {"url": str(self.callback_url)}
        if self.description is not None:
            spec["description"] = self.description
        return spec
