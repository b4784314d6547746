"""Argument models of the agent tools, shared by the langchain-core tools and the MCP server.

They are what a model sees as each tool's JSON schema, so field descriptions are written for
models. :func:`model_schema` gives the schema a model is shown: one that also satisfies OpenAI's
strict function-calling rules (every property required, optional ones nullable, no ``default``
and no length, range or format keywords, which move into the description; free-form JSON objects
travel as JSON text). The pydantic models still check every constraint. No framework import
here: pydantic only.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from cueflow.states import CueStatus, ScheduleType, Status

ExecutionId = Annotated[str, Field(min_length=1, max_length=64, description="The execution's id.")]
CueId = Annotated[str, Field(min_length=1, max_length=64, description="The cue's id.")]


class ToolArgs(BaseModel):
    """Base of tool arguments: unknown fields are refused, so typos surface to the model.

    A ``None`` argument means "not given" (strict models must send every property, ``null``
    for the ones they leave out); the fields named in ``json_text_fields`` hold free-form JSON
    and may also be given as JSON text (how :func:`model_schema` shows them)."""

    model_config = ConfigDict(extra="forbid")
    json_text_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _given(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        given = {key: value for key, value in data.items() if value is not None}
        for key in cls.json_text_fields:
            text = given.get(key)
            if isinstance(text, str):
                try:
                    given[key] = json.loads(text) if text.strip() else None
                except ValueError:
                    raise ValueError(f"{key} must be JSON text") from None
                if given[key] is None:
                    del given[key]
        return given


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

    json_text_fields = ("artifacts", "metadata", "output")

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
    output: Any = Field(
        None,
        description="A flow step's output: the JSON value the step hands to the steps after it "
        "(it must match the step's output schema when it has one).",
    )

    def report(self) -> dict[str, Any]:
        """The ``POST /v1/executions/{id}/outcome`` body (fields that are set)."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"execution_id"})


class ReportOutcomeArgs(OutcomeFields):
    execution_id: ExecutionId


class ReleaseArgs(ToolArgs):
    execution_id: ExecutionId
    reason: str = Field(min_length=1, max_length=500, description="Why it is given back.")
    retry_after_seconds: float | None = Field(
        None,
        ge=0,
        le=86400,
        description="Seconds until it may be tried again; leave out for the cue's retry backoff.",
    )


class CueIdArgs(ToolArgs):
    cue_id: CueId


class FollowUpArgs(ToolArgs):
    """A follow-up run of a cue: now, or at ``send_at``, optionally with another payload."""

    json_text_fields = ("payload",)

    cue_id: CueId
    payload: dict[str, Any] | None = Field(
        None, description="The payload of this one run, replacing the cue's; leave out to keep it."
    )
    send_at: datetime | None = Field(
        None, description="When to run it (ISO-8601 with offset); leave out for now."
    )

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/cues/{id}/fire`` body."""
        body: dict[str, Any] = {}
        if self.payload is not None:
            body.update(payload_override=self.payload, merge_strategy="replace")
        if self.send_at is not None:
            body["send_at"] = self.send_at.isoformat()
        return body


class ListCuesArgs(ToolArgs):
    status: (
        Literal[CueStatus.ACTIVE, CueStatus.PAUSED, CueStatus.COMPLETED, CueStatus.FAILED] | None
    ) = Field(None, description="Only cues in this status.")
    limit: int = Field(20, ge=1, le=100, description="Most cues to list.")
    offset: int = Field(0, ge=0, description="Cues to skip.")


class ListExecutionsArgs(ToolArgs):
    cue_id: str | None = Field(None, max_length=64, description="Only this cue's executions.")
    status: (
        Literal[
            Status.PENDING,
            Status.DELIVERING,
            Status.RETRYING,
            Status.RETRY_READY,
            Status.SUCCESS,
            Status.FAILED,
            Status.MISSED,
        ]
        | None
    ) = Field(None, description="Only executions in this status.")
    limit: int = Field(20, ge=1, le=100, description="Most executions to list.")
    offset: int = Field(0, ge=0, description="Executions to skip.")


class CreateCueArgs(ToolArgs):
    """A cue: exactly one of ``cron``, ``at`` or ``interval_seconds``."""

    json_text_fields = ("payload",)

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
            schedule: dict[str, Any] = {"type": ScheduleType.RECURRING.value, "cron": self.cron}
        elif self.at is not None:
            schedule = {"type": ScheduleType.ONCE.value, "at": self.at.isoformat()}
        else:
            schedule = {
                "type": ScheduleType.INTERVAL.value,
                "interval_seconds": self.interval_seconds,
            }
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


_ID = r"^[A-Za-z0-9_-]+$"
FlowId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=_ID, description="The flow's id (flw_...).")
]
RunId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=_ID, description="The run's id (run_...).")
]


class ListFlowsArgs(ToolArgs):
    limit: int = Field(20, ge=1, le=100, description="Most flows to list.")
    offset: int = Field(0, ge=0, description="Flows to skip.")


class StartFlowRunArgs(ToolArgs):
    """A run of a flow with its input."""

    json_text_fields = ("input",)

    flow_id: FlowId
    input: Any = Field(None, description="The run's input (any JSON; the flow may require it).")
    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        description="Starting again with the same key answers the run it started instead.",
    )

    def body(self) -> dict[str, Any]:
        """The ``POST /v1/flows/{id}/runs`` body."""
        body: dict[str, Any] = {"input": self.input}
        if self.idempotency_key is not None:
            body["idempotency_key"] = self.idempotency_key
        return body


class FlowRunArgs(ToolArgs):
    run_id: RunId


class FlowEventArgs(ToolArgs):
    """An event sent to a run: it resumes the run's wait steps waiting for it."""

    json_text_fields = ("data",)

    run_id: RunId
    event: str = Field(
        min_length=1, max_length=255, description="The event's name (a wait step's event)."
    )
    data: Any = Field(None, description="JSON data: the output of the wait steps it resumes.")


_MOVED = {
    "minLength": "at least {} characters",
    "maxLength": "at most {} characters",
    "minimum": "at least {}",
    "maximum": "at most {}",
    "exclusiveMinimum": "more than {}",
    "exclusiveMaximum": "less than {}",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "format": "{}",
    "pattern": "matching {}",
}
"""Keywords strict function calling refuses, and how the description says them instead."""
_FORMATS = {"uri": "a URL", "date-time": "an ISO-8601 date-time", "email": "an e-mail address"}


def _strict(node: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``node`` without the keywords strict mode refuses; the constraints it had, as words."""
    notes = []
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _MOVED:
            shown = _FORMATS.get(value, value) if key == "format" else value
            notes.append(_MOVED[key].format(shown))
        elif key in ("default", "title"):
            continue
        elif key == "anyOf":
            branches = []
            for branch in value:
                clean, more = _strict(branch)
                branches.append(clean)
                notes.extend(more)
            out[key] = branches
        elif key == "items" and isinstance(value, dict):
            out[key], more = _strict(value)
            notes.extend(more)
        else:
            out[key] = value
    return out, notes


def model_schema(args: type[ToolArgs]) -> dict[str, Any]:
    """The JSON schema a model is shown for ``args``: strict-mode compatible (see the module
    docstring); a field left out (``null``) takes its default."""
    full = args.model_json_schema()
    required = set(full.get("required", []))
    properties: dict[str, Any] = {}
    for name, prop in full.get("properties", {}).items():
        description = prop.get("description", "")
        if name in args.json_text_fields:
            node: dict[str, Any] = {"type": "string"}
            notes = ["a JSON value as text"]
        else:
            node, notes = _strict({k: v for k, v in prop.items() if k != "description"})
        default = args.model_fields[name].get_default(call_default_factory=True)
        if name not in required:
            if default not in (None, {}, []):
                notes.append(f"null means {json.dumps(default)}")
            nullable = node.get("anyOf", [node])
            if not any(branch.get("type") == "null" for branch in nullable):
                node = {"anyOf": [node, {"type": "null"}]}
        text = description + (f" ({'; '.join(notes)})" if notes else "")
        properties[name] = {**node, "description": text.strip()}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if full.get("description"):
        schema["description"] = full["description"]
    return schema
