"""Flows: definitions, runs and their steps, and the executions of steps. Plain data
operations; the hand-off rules stay in :mod:`cueflow.handoff`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from cueflow.records import FlowRecord, FlowRunRecord, StepRecord
from cueflow.states import Move


class FlowStore(Protocol):
    """Flows, runs and steps (see the module)."""

    async def insert_flow(self, values: dict[str, Any]) -> None:
        """Insert a flow; raise :class:`cueflow.store.Duplicate` ``flow_name``."""

    async def get_flow(self, user_id: str, flow_id: str) -> FlowRecord | None:
        """One of the user's flows."""

    async def list_flows(
        self, user_id: str, limit: int, offset: int
    ) -> tuple[list[FlowRecord], int]:
        """A page of the user's flows, newest first, and the total."""

    async def update_flow(
        self, user_id: str, flow_id: str, values: dict[str, Any]
    ) -> FlowRecord | None:
        """Set ``values`` on one of the user's flows; raise ``Duplicate`` ``flow_name``."""

    async def delete_flow(self, user_id: str, flow_id: str) -> bool:
        """Delete a flow with its runs, its steps' hidden cues and their executions."""

    async def count_open_runs(self, flow_id: str, open_statuses: Sequence[str]) -> int:
        """How many of the flow's runs are in ``open_statuses``."""

    async def insert_run(self, values: dict[str, Any]) -> bool:
        """Insert a run; ``False`` when the flow has a run with its idempotency key already."""

    async def run_by_idempotency_key(self, flow_id: str, key: str) -> FlowRunRecord | None:
        """The flow's run started with ``key``."""

    async def get_run(self, user_id: str, run_id: str) -> FlowRunRecord | None:
        """One of the user's runs."""

    async def run_status(self, run_id: str) -> str | None:
        """A run's status (``None``: no such run)."""

    async def lock_run(self, run_id: str) -> FlowRunRecord | None:
        """A run, locked until the transaction ends: the hand-offs of one run take turns, so
        two parents finishing at once on two nodes see each other's end."""

    async def list_runs(
        self,
        user_id: str,
        flow_id: str | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[FlowRunRecord], int]:
        """A page of the user's runs (of ``flow_id``, in ``status``), newest first."""

    async def update_run(
        self, run_id: str, values: dict[str, Any], sources: Sequence[str]
    ) -> FlowRunRecord | None:
        """Set ``values`` on a run whose status is in ``sources``."""

    async def run_steps(
        self, run_id: str, step_id: str | None = None, item: int | None = None
    ) -> list[StepRecord]:
        """Every step (and item) of a run, in step then item order; only those of ``step_id``
        and with ``item`` when given (a hand-off reads what it needs, not a fan-out's every
        item each time one ends)."""

    async def count_steps(
        self, run_id: str, step_id: str, statuses: Sequence[str], items_only: bool = True
    ) -> int:
        """How many rows of the run's step ``step_id`` (its items only, by default) have a
        status in ``statuses``."""

    async def insert_step(self, values: dict[str, Any]) -> bool:
        """Insert a step (or item) of a run; ``False`` when ``(run_id, step_id, item)`` exists
        (the hand-off key)."""

    async def update_step(
        self, step_key: str, values: dict[str, Any], sources: Sequence[str]
    ) -> StepRecord | None:
        """Set ``values`` on the step row ``step_key`` (its ``id``) if its status is in
        ``sources``."""

    async def insert_step_execution(self, values: dict[str, Any]) -> bool:
        """Insert a step's execution; ``False`` when its
        ``(flow_run_id, step_id, item, step_attempt)`` exists."""

    async def cancel_step_executions(
        self, run_id: str, move: Move, values: dict[str, Any]
    ) -> list[str]:
        """Move the run's executions in ``move.sources`` to ``move.target``; their ids."""

    async def runs_with_due_waits(self, now: datetime, status: str, limit: int) -> list[str]:
        """Runs with a step in ``status`` whose ``wait_until`` is at or before ``now``."""
