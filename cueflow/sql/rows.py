"""Rows to records: where a result row of a SQL statement becomes a :mod:`cueflow.records`
record (the storage edge). Status and schedule-type strings become their enums; nothing is
validated, so building a record costs what building a dataclass does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cueflow.records import (
    Account,
    Alert,
    Claim,
    Cue,
    DeliveryCandidate,
    DueDelivery,
    EchoMessage,
    Execution,
    ExpiredLease,
    FinishedRun,
    FiredRun,
    FlowRecord,
    FlowRunRecord,
    OutcomeTarget,
    QueuedRun,
    StepRecord,
    UnclaimedRun,
    UnservedDelivery,
    Worker,
)
from cueflow.states import CueStatus, RunStatus, ScheduleType, Status, StepStatus

Row = Mapping[str, Any]
"""A result row of SQLAlchemy (``RowMapping``), keyed by column name or label."""


def account(row: Row) -> Account:
    """A ``users`` row."""
    return Account(**row)


def cue(row: Row) -> Cue:
    """A ``cues`` row."""
    return Cue(
        **{
            **row,
            "status": CueStatus(row["status"]),
            "schedule_type": ScheduleType(row["schedule_type"]),
        }
    )


def execution(row: Row) -> Execution:
    """An ``executions`` row."""
    return Execution(**{**row, "status": Status(row["status"])})


def worker(row: Row) -> Worker:
    """A ``workers`` row."""
    return Worker(**row)


def alert(row: Row) -> Alert:
    """An ``alerts`` row."""
    return Alert(**row)


def echo_message(row: Row) -> EchoMessage:
    """An ``echo_messages`` row."""
    return EchoMessage(**row)


def outcome_target(row: Row) -> OutcomeTarget:
    """An ``executions`` row with its cue's ``cue_verification_mode`` and
    ``cue_schedule_type`` (outer-joined: ``None`` without a cue)."""
    values = dict(row)
    mode = values.pop("cue_verification_mode")
    schedule_type = values.pop("cue_schedule_type")
    return OutcomeTarget(
        execution(values),
        mode,
        ScheduleType(schedule_type) if schedule_type is not None else None,
    )


def queued_run(row: Row) -> QueuedRun:
    """An execution waiting for a worker, with its cue's name, task and payload."""
    return QueuedRun(**row)


def claim(row: Row) -> Claim:
    """A claimed execution's ``id``, ``attempts`` and ``cue_id``."""
    return Claim(**row)


def delivery_candidate(row: Row) -> DeliveryCandidate:
    """A due push execution with its cue's ``callback_url``."""
    return DeliveryCandidate(**row)


def unserved_delivery(row: Row) -> UnservedDelivery:
    """A pending push execution's ``id`` and its cue's ``task``."""
    return UnservedDelivery(**row)


def fired_run(row: Row) -> FiredRun:
    """An inserted execution's ``id``, ``cue_id`` and ``status``."""
    return FiredRun(row["id"], row["cue_id"], Status(row["status"]))


def expired_lease(row: Row) -> ExpiredLease:
    """A lease query row (see :meth:`cueflow.sql.claim_queries.ClaimQueries.expired_leases`)."""
    return ExpiredLease(**{**row, "schedule_type": ScheduleType(row["schedule_type"])})


def due_delivery(row: Row) -> DueDelivery:
    """A claimed push execution joined with its cue and owner."""
    return DueDelivery(**{**row, "schedule_type": ScheduleType(row["schedule_type"])})


def unclaimed_run(row: Row) -> UnclaimedRun:
    """A pending execution joined with its cue's schedule type and failure policy."""
    return UnclaimedRun(
        row["id"], row["cue_id"], ScheduleType(row["schedule_type"]), row["on_failure"]
    )


def finished_run(row: Row) -> FinishedRun:
    """A finished execution's ``id``, ``status`` and ``outcome_success``."""
    return FinishedRun(row["id"], Status(row["status"]), row["outcome_success"])


def flow(row: Row) -> FlowRecord:
    """A ``flows`` row."""
    return FlowRecord(**row)


def flow_run(row: Row) -> FlowRunRecord:
    """A ``flow_runs`` row."""
    return FlowRunRecord(**{**row, "status": RunStatus(row["status"])})


def flow_step(row: Row) -> StepRecord:
    """A ``flow_steps`` row."""
    return StepRecord(**{**row, "status": StepStatus(row["status"])})
