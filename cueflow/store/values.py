"""The plain values that travel with store calls: errors, filters, pages and fire plans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cueflow.records import Execution
from cueflow.states import CueEnds


class Duplicate(Exception):
    """A unique constraint refused a write; ``constraint`` names which (``email``, ``name``)."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


@dataclass
class ExecutionPage:
    """One page of executions plus the figures the list endpoint reports."""

    rows: list[Execution]
    total: int
    oldest_claimed_at: datetime | None = None


@dataclass(frozen=True)
class ReportGate:
    """Which executions a report of the worker ``worker_id`` may land on: one in an ``open``
    status, one no worker holds, or one in a ``held`` status that ``worker_id`` holds. The use
    case decides the statuses (:func:`cueflow.outcomes.report_gate`); the store only applies
    them."""

    worker_id: str
    open: tuple[str, ...]
    held: tuple[str, ...]


@dataclass(frozen=True)
class CueRun:
    """The run an outcome counts on its execution's cue (``run_count`` plus one), written with
    the outcome where the store can (:meth:`~cueflow.store.ExecutionStore.record_outcome`):
    ``values`` set on the cue, and ``ends``, for each group of the execution's statuses after
    the write, the move of the cue that ends it. The use case decides them
    (:func:`cueflow.states.cue_end_moves`); the store only applies them."""

    values: dict[str, Any]
    ends: CueEnds = ()


@dataclass
class ExecutionFilter:
    """Filters of ``GET /v1/executions``; ``None`` means "any"."""

    cue_id: str | None = None
    flow_run_id: str | None = None
    step_id: str | None = None
    statuses: Sequence[str] | None = None
    worker_id: str | None = None
    outcome_state: str | None = None


@dataclass
class FirePlan:
    """What the engine decided for one due cue: new executions and the cue's next state."""

    executions: list[dict[str, Any]] = field(default_factory=list)
    cue_values: dict[str, Any] = field(default_factory=dict)
    cue_values_if_fired: dict[str, Any] = field(default_factory=dict)
    """Set on the cue only when at least one of ``executions`` was inserted (a fire key that
    already existed leaves the cue as it was)."""


@dataclass(frozen=True)
class PruneCut:
    """Which ended history a prune may delete, as the engine decided it
    (:mod:`cueflow.retention`): executions in ``statuses`` last changed before ``before``, but
    not the ``keep_latest`` newest runs of a cue in ``finished`` statuses (or with a reported
    outcome); flow runs in ``run_statuses`` that finished before ``before``."""

    before: datetime
    statuses: tuple[str, ...]
    finished: tuple[str, ...]
    keep_latest: int
    run_statuses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """What :meth:`cueflow.store.stats.StatsStore.execution_stats` aggregates: the executions
    created since ``since``, in buckets of ``bucket_seconds`` counted from ``since``, with
    their delays counted at or under each of ``bounds`` (seconds, ascending)."""

    since: datetime
    bucket_seconds: int
    bounds: tuple[float, ...]
    queued: tuple[str, ...]
    """The statuses counted as the queue (the use case names them)."""
    finished: tuple[str, ...] = ()
    """The statuses an execution may end in without ever starting (missed)."""


@dataclass(frozen=True, slots=True)
class ExecutionStats:
    """Aggregates of one account's recent executions (no row leaves the database).

    ``counts``: ``(bucket, status) -> executions`` created in that bucket. ``lag`` and
    ``latency``: ``bucket -> (n at or under bounds[0], ..., n at or under bounds[-1], n)``
    for the schedule-to-start lag (``started_at - scheduled_for``) and the delivery latency
    (``delivered_at``, else ``outcome_recorded_at``, minus ``started_at``) of the bucket's
    executions that have them. ``queue``: the executions in each queued status now, whatever
    their age, and ``oldest_queued`` the earliest ``scheduled_for`` among them. ``left``: see
    the field."""

    counts: dict[tuple[int, str], int]
    lag: dict[int, tuple[int, ...]]
    latency: dict[int, tuple[int, ...]]
    queue: dict[str, int]
    oldest_queued: datetime | None
    left: dict[int, int]
    """``bucket -> executions`` that stopped waiting to start in that bucket (those of the
    window, and those carried in): they started (``started_at``) or ended unstarted
    (``updated_at`` of one in a ``finished`` status with no ``started_at``)."""
    carried: int = 0
    """Executions created before the window that were still waiting to start at its start."""
