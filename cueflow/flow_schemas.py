"""Flow definitions as requests: the pydantic models of ``POST /v1/flows`` and
``POST /v1/flows/{id}/runs``, and the checks a definition must pass before it is stored.

A definition is a DAG of steps. :func:`check_definition` refuses (400 ``invalid_flow``, the
message naming the step) a duplicate step id, a ``needs`` naming no step, a cycle, a
``for_each`` naming a step that is not among ``needs``, a wait step without ``event`` and
``timeout_seconds``, and a JSON Schema (``input_schema``, ``output_schema``) that is not itself
a valid schema.

JSON Schemas are checked and applied with the ``jsonschema`` library: it implements every
draft (2020-12 included) with its meta-schemas and is the reference implementation in Python,
so "valid schema" and "valid value" mean what schema authors expect, which no home-made subset
could promise. It is imported at the first schema checked (about 3 MB a server without flow
contracts need not carry).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cueflow.errors import CueflowError
from cueflow.schema_examples import with_example
from cueflow.schemas import (
    CallbackIn,
    ConcurrencyIn,
    CueName,
    MisfirePolicy,
    Priority,
    RateLimitIn,
    RetryIn,
    ScheduleIn,
    TimeoutSeconds,
)
from cueflow.states import CueStatus, StepType, When

StepId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
MAX_STEPS = 100
"""Most steps one flow may have."""


class InvalidFlow(CueflowError):
    """A definition that is not a valid DAG of valid steps (400)."""

    code = "invalid_flow"
    status = 400


class StepIn(BaseModel):
    """One step of a flow definition."""

    model_config = ConfigDict(extra="forbid")

    id: StepId
    needs: list[StepId] = Field(default_factory=list, max_length=MAX_STEPS)
    type: StepType = StepType.TASK
    transport: str = "worker"
    payload: dict[str, Any] = Field(default_factory=dict)
    callback: CallbackIn | None = None
    retry: RetryIn | None = None
    timeout_seconds: TimeoutSeconds | None = None
    output_schema: dict[str, Any] | None = None
    when: When = When.SUCCESS
    for_each: StepId | None = None
    event: str | None = Field(None, min_length=1, max_length=255)
    priority: Priority | None = None
    """Run controls of the step's executions, shaped as a cue's (``docs/run-controls.md``)."""
    concurrency: ConcurrencyIn | None = None
    rate_limit: RateLimitIn | None = None


class FlowCreate(BaseModel):
    """``POST /v1/flows``."""

    model_config = ConfigDict(json_schema_extra=with_example)

    name: CueName
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    schedule: ScheduleIn | None = None
    """When given, the schedule starts runs the way a cue fires (:mod:`cueflow.flow_schedule`)."""
    misfire_policy: MisfirePolicy | None = None
    schedule_input: Any = None
    """The ``input`` of the runs the schedule starts (checked against ``input_schema``)."""
    steps: list[StepIn] = Field(min_length=1, max_length=MAX_STEPS)


class FlowUpdate(BaseModel):
    """``PATCH /v1/flows/{id}``: the fields sent change; runs already started keep the
    definition they started with."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=with_example)

    name: CueName | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    steps: list[StepIn] | None = Field(None, min_length=1, max_length=MAX_STEPS)
    schedule: ScheduleIn | None = None
    """A new schedule; an explicit ``null`` removes the flow's schedule."""
    misfire_policy: MisfirePolicy | None = None
    schedule_input: Any = None
    schedule_status: str | None = None
    """``paused`` (no run starts; the times missed while paused are skipped on resume) or
    ``active`` (resumed)."""

    @field_validator("schedule_status")
    @classmethod
    def _schedule_status(cls, value: str | None) -> str | None:
        if value is not None and value not in (CueStatus.ACTIVE, CueStatus.PAUSED):
            raise ValueError("schedule_status must be 'active' or 'paused'")
        return value


class RunCreate(BaseModel):
    """``POST /v1/flows/{id}/runs``."""

    model_config = ConfigDict(json_schema_extra=with_example)

    input: Any = None
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)


class EventIn(BaseModel):
    """``POST /v1/flow-runs/{id}/events/{name}``."""

    model_config = ConfigDict(json_schema_extra=with_example)

    data: Any = None


def check_schema(schema: dict[str, Any], where: str) -> None:
    """Refuse a JSON Schema that its own draft's meta-schema rejects."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidFlow(f"{where} is not a valid JSON Schema: {exc.message}") from exc


def schema_error(schema: dict[str, Any], value: Any) -> str | None:
    """Why ``value`` does not validate against ``schema`` (``None`` when it does)."""
    import jsonschema
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    if error is None:
        return None
    path = "".join(f"[{p!r}]" for p in error.absolute_path)
    return f"output{path}: {error.message}"


def check_definition(steps: list[StepIn], input_schema: dict[str, Any] | None = None) -> None:
    """Refuse a definition that is not a valid DAG of valid steps (see the module's text)."""
    if input_schema is not None:
        check_schema(input_schema, "input_schema")
    known: set[str] = set()
    for step in steps:
        if step.id in known:
            raise InvalidFlow(f"Step '{step.id}' is defined twice")
        known.add(step.id)
    for step in steps:
        for parent in step.needs:
            if parent not in known:
                raise InvalidFlow(f"Step '{step.id}' needs '{parent}', which is not a step")
            if parent == step.id:
                raise InvalidFlow(f"Step '{step.id}' needs itself")
        if step.for_each is not None and step.for_each not in step.needs:
            raise InvalidFlow(
                f"Step '{step.id}' runs for_each '{step.for_each}', which is not among its needs"
            )
        if step.type == StepType.WAIT:
            if step.event is None or step.timeout_seconds is None:
                raise InvalidFlow(f"Wait step '{step.id}' needs an event and timeout_seconds")
            if step.for_each is not None:
                raise InvalidFlow(f"Wait step '{step.id}' cannot run for_each")
            if step.priority is not None or step.concurrency or step.rate_limit:
                raise InvalidFlow(f"Wait step '{step.id}' runs nothing to limit or prioritise")
        if step.output_schema is not None:
            check_schema(step.output_schema, f"Step '{step.id}' output_schema")
    cycle = find_cycle({step.id: step.needs for step in steps})
    if cycle is not None:
        raise InvalidFlow(f"Step '{cycle[0]}' is part of a cycle: {' -> '.join(cycle)}")


def find_cycle(needs: dict[str, list[str]]) -> list[str] | None:
    """A cycle of the graph ``needs`` (step → its parents) as a closed path, or ``None``."""
    done: set[str] = set()
    for start in needs:
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                path.append(node)
                on_path.add(node)
            parents = needs.get(node, [])
            if index < len(parents):
                stack.append((node, index + 1))
                parent = parents[index]
                if parent in on_path:
                    return [*path[path.index(parent) :], parent]
                if parent not in done:
                    stack.append((parent, 0))
                continue
            done.add(node)
            on_path.discard(node)
            path.pop()
    return None


def topological(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``steps`` (stored definitions) with every step after its parents."""
    by_id = {step["id"]: step for step in steps}
    ordered: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(step_id: str) -> None:
        if step_id in seen:
            return
        seen.add(step_id)
        for parent in by_id[step_id]["needs"]:
            visit(parent)
        ordered.append(by_id[step_id])

    for step in steps:
        visit(step["id"])
    return ordered
