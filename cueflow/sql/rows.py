"""Rows to records: where a result row of a SQL statement becomes a :mod:`cueflow.records`
record (the storage edge). Status and schedule-type strings become their enums; nothing is
validated, so building a record costs what building a dataclass does.

Each record type has a :class:`RecordBuilder`. Given a whole result, it works out once per
column layout where each field sits in the row and then builds records positionally from the
row tuples: no mapping per row, no dict merge (a 31-field cue costs ~3 µs instead of ~19 µs,
which is what a page of 20 cues costs the API). Called with a mapping (``builder(row)``) it
reads the fields by name, for rows that were put together in Python."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from enum import Enum
from operator import itemgetter
from typing import Any, Generic, TypeVar

from cueflow.records import (
    Account,
    Alert,
    ApiKey,
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
    LimitedRun,
    OutcomeTarget,
    QueuedRun,
    StepRecord,
    UnclaimedRun,
    UnservedDelivery,
    Worker,
)
from cueflow.scopes import Scope
from cueflow.states import CueStatus, RunStatus, ScheduleType, Status, StepStatus

Row = Mapping[str, Any]
"""A result row of SQLAlchemy (``RowMapping``), keyed by column name or label."""

R = TypeVar("R")


def _members(enum: type[Enum]) -> Callable[[Any], Any]:
    """A stored value to its enum member, by a dict lookup (cheaper than calling the enum)."""
    return {member.value: member for member in enum}.__getitem__


class RecordBuilder(Generic[R]):
    """Builds ``record`` (a dataclass whose fields are among the row's columns, in any order)
    from rows; ``convert`` maps a field to what turns its stored value into the record's (an
    enum)."""

    def __init__(self, record: type[R], **convert: Callable[[Any], Any]) -> None:
        self.record = record
        self.names = tuple(f.name for f in fields(record))  # type: ignore[arg-type]
        self._optional = {
            f.name
            for f in fields(record)  # type: ignore[arg-type]
            if f.default is not MISSING or f.default_factory is not MISSING
        }
        self._convert = tuple((self.names.index(name), fn) for name, fn in convert.items())
        self._plans: dict[tuple[str, ...], Callable[[Any], tuple[Any, ...]]] = {}
        self._named: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, row: Row) -> R:
        """The record of one row read by column name."""
        keys = tuple(row)
        names = self._named.get(keys)
        if names is None:
            names = self._named[keys] = self._present(keys)
        return self._build([row[name] for name in names])

    def many(self, keys: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[R]:
        """The records of ``rows`` (tuples whose columns are named by ``keys``)."""
        if not rows:
            return []
        pick = self._plan(tuple(keys))
        if not self._convert:
            record = self.record
            return [record(*pick(row)) for row in rows]
        return [self._build(list(pick(row))) for row in rows]

    def _build(self, values: list[Any]) -> R:
        for index, fn in self._convert:
            value = values[index] if index < len(values) else None
            if value is not None:
                values[index] = fn(value)
        return self.record(*values)

    def _present(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        """The fields the row gives: all of them, or all but trailing ones with defaults
        (filled in by the record, so they are passed by position up to the first missing)."""
        given = set(keys)
        missing = [name for name in self.names if name not in given]
        count = len(self.names) - len(missing)
        if any(name not in self._optional for name in missing) or any(
            name not in given for name in self.names[:count]
        ):
            raise TypeError(f"{self.record.__name__} rows lack {sorted(missing)}")
        return self.names[:count]

    def _plan(self, keys: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
        plan = self._plans.get(keys)
        if plan is None:
            positions = [keys.index(name) for name in self._present(keys)]
            if len(positions) == 1:
                only = positions[0]
                plan = lambda row: (row[only],)  # noqa: E731 - itemgetter of one is a scalar
            else:
                plan = itemgetter(*positions)
            self._plans[keys] = plan
        return plan


_cue_status = _members(CueStatus)
_schedule_type = _members(ScheduleType)
_status = _members(Status)

account = RecordBuilder(Account)
"""A ``users`` row."""
api_key = RecordBuilder(ApiKey, scope=_members(Scope))
"""An ``api_keys`` row."""
cue = RecordBuilder(Cue, status=_cue_status, schedule_type=_schedule_type)
"""A ``cues`` row."""
execution = RecordBuilder(Execution, status=_status)
"""An ``executions`` row."""
worker = RecordBuilder(Worker)
"""A ``workers`` row."""
alert = RecordBuilder(Alert)
"""An ``alerts`` row."""
echo_message = RecordBuilder(EchoMessage)
"""An ``echo_messages`` row."""
queued_run = RecordBuilder(QueuedRun)
"""An execution waiting for a worker, with its cue's name, task and payload."""
limited_run = RecordBuilder(LimitedRun)
"""A claim candidate: an execution's ``id``, ``user_id`` and stamped limits."""
delivery_candidate = RecordBuilder(DeliveryCandidate)
"""A due push execution with its cue's ``callback_url``."""
unserved_delivery = RecordBuilder(UnservedDelivery)
"""A pending push execution's ``id`` and its cue's ``task``."""
fired_run = RecordBuilder(FiredRun, status=_status)
"""An inserted execution's ``id``, ``cue_id`` and ``status``."""
expired_lease = RecordBuilder(ExpiredLease, schedule_type=_schedule_type)
"""A lease query row (see :meth:`cueflow.sql.lease_queries.LeaseQueries.expired_leases`)."""
due_delivery = RecordBuilder(DueDelivery, schedule_type=_schedule_type)
"""A claimed push execution joined with its cue and owner."""
unclaimed_run = RecordBuilder(UnclaimedRun, schedule_type=_schedule_type)
"""A pending execution joined with its cue's schedule type and failure policy."""
finished_run = RecordBuilder(FinishedRun, status=_status)
"""A finished execution's ``id``, ``status`` and ``outcome_success``."""
flow = RecordBuilder(FlowRecord)
"""A ``flows`` row."""
flow_run = RecordBuilder(FlowRunRecord, status=_members(RunStatus))
"""A ``flow_runs`` row."""
flow_step = RecordBuilder(StepRecord, status=_members(StepStatus))
"""A ``flow_steps`` row."""


def outcome_targets(keys: Sequence[str], found: Sequence[Sequence[Any]]) -> list[OutcomeTarget]:
    """Rows of ``executions`` columns with their cue's ``cue_verification_mode`` and
    ``cue_schedule_type`` (outer-joined: ``None`` without a cue), built positionally."""
    built = execution.many(keys, found)
    mode, kind = keys.index("cue_verification_mode"), keys.index("cue_schedule_type")
    return [
        OutcomeTarget(
            record,
            row[mode],
            _schedule_type(row[kind]) if row[kind] is not None else None,
        )
        for record, row in zip(built, found, strict=True)
    ]
