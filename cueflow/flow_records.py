"""Typed records of flows, their runs and their steps, built in the SQL layer
(:mod:`cueflow.sql.flow_queries`) from rows and read by the use cases."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A flow: its definition (``steps``, as validated) and the hidden cue of each task step."""

    id: str
    user_id: str
    name: str
    description: str | None
    input_schema: dict[str, Any] | None
    steps: list[dict[str, Any]]
    step_cues: dict[str, str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FlowRecord:
        """The record of a ``flows`` row."""
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class FlowRunRecord:
    """A run: its status, input, and the definition it started with."""

    id: str
    flow_id: str
    user_id: str
    status: str
    input: Any
    idempotency_key: str | None
    steps: list[dict[str, Any]]
    step_cues: dict[str, str]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> FlowRunRecord:
        """The record of a ``flow_runs`` row."""
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]

    def step(self, step_id: str) -> dict[str, Any]:
        """The definition of one of its steps."""
        return next(step for step in self.steps if step["id"] == step_id)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a run (``item`` -1) or one item of a ``for_each`` step (``item`` 0...)."""

    id: str
    run_id: str
    step_id: str
    item: int
    status: str
    attempts: int
    execution_ids: list[str]
    item_input: Any
    output: Any
    error: dict[str, Any] | None
    event: str | None
    wait_until: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> StepRecord:
        """The record of a ``flow_steps`` row."""
        return cls(**{name: row[name] for name in cls.__slots__})  # type: ignore[attr-defined]
