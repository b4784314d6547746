"""The state machines of executions and cues, written down once as data.

Every status change in cueflow is an event applied through this module: an execution's
:class:`Event` or a cue's :class:`CueEvent`. The use case asks :func:`move` for the allowed
source statuses and the target, and the store turns that into a conditional
``UPDATE ... WHERE status IN (sources)``, so a transition the table does not allow can never be
written, however requests race.

Flow runs and their steps have their statuses here too (:class:`RunStatus`,
:class:`StepStatus`, and :func:`step_should_run` for a step's ``when`` rule).

Execution statuses are CueAPI's (``pending``, ``delivering``, ``retrying``, ``retry_ready``,
``success``, ``failed``, ``missed``); a worker's claim is ``delivering`` with a lease. Cue
statuses are ``active``, ``paused``, ``completed`` and ``failed``; schedule types ``once``,
``recurring`` and ``interval``. Every one of these names is written here and nowhere else in
the package (``tests/test_state_machine.py`` scans for them): the enums are ``StrEnum`` so they
are the wire strings themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """Execution statuses, as on the wire."""

    PENDING = "pending"
    DELIVERING = "delivering"
    RETRYING = "retrying"
    RETRY_READY = "retry_ready"
    SUCCESS = "success"
    FAILED = "failed"
    MISSED = "missed"


class CueStatus(StrEnum):
    """Cue statuses, as on the wire."""

    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    """A one-time cue whose run succeeded."""
    FAILED = "failed"
    """A one-time cue whose run failed, was missed or was skipped."""


class ScheduleType(StrEnum):
    """How a cue's schedule is given, as on the wire."""

    ONCE = "once"
    """At one time (``at``): the cue has one run, and ends with it (:func:`one_time_cue_end`)."""
    RECURRING = "recurring"
    """On a cron expression in a time zone."""
    INTERVAL = "interval"
    """Every ``interval_seconds``."""


class Event(StrEnum):
    """Things that happen to an execution."""

    CLAIM = "claim"
    """A worker claims it (pull transports) or a delivery starts (push transports)."""
    LEASE_EXPIRED = "lease_expired"
    """The claim's lease ran out (or its worker went stale), attempts left: back to the queue."""
    LEASE_EXHAUSTED = "lease_exhausted"
    """The lease ran out (or was released) and the cue's ``retry.max_attempts`` claims are used
    up."""
    RELEASED = "released"
    """The claiming worker gave the execution back unfinished (cueflow extension
    ``POST /v1/executions/{id}/release``), attempts left: back to the queue."""
    SUCCEEDED = "succeeded"
    """A worker reported success, or a push delivery was accepted."""
    FAILED = "failed"
    """A worker reported failure, or a push delivery failed for the last time."""
    RETRY_SCHEDULED = "retry_scheduled"
    """A push delivery failed with attempts left; ``next_retry`` holds when to try again."""
    RETRY_DUE = "retry_due"
    """A scheduled retry's time came."""
    UNCLAIMED = "unclaimed"
    """Nobody claimed a pull execution within the unclaimed timeout."""
    CANCELLED = "cancelled"
    """Its flow run was cancelled before anyone took it: it fails without being delivered."""
    SUPERSEDED = "superseded"
    """A newer scheduled fire of its cue cancelled it (``overlap_policy`` ``cancel_other``),
    wherever it was: a worker holding it learns it at its next heartbeat or outcome."""


TERMINAL = frozenset({Status.SUCCESS, Status.FAILED, Status.MISSED})
"""Statuses where delivery has ended: no claim, retry or lease event starts from them. Only a
late outcome report may still move a ``missed`` execution to ``success`` or ``failed``
(CueAPI accepts outcomes in any status); replay makes a new execution."""

_WAITING = frozenset({Status.PENDING, Status.RETRY_READY})
WAITING = _WAITING
"""Statuses of an execution waiting for a claim or a delivery to start (none under way)."""
UNFINISHED = frozenset(set(Status) - TERMINAL)
"""Statuses of an execution that is not over yet: waiting, being delivered, or waiting for a
retry (what a cue's ``overlap_policy`` looks at)."""

TRANSITIONS: dict[Event, tuple[frozenset[Status], Status]] = {
    Event.CLAIM: (_WAITING, Status.DELIVERING),
    Event.LEASE_EXPIRED: (frozenset({Status.DELIVERING}), Status.PENDING),
    Event.LEASE_EXHAUSTED: (frozenset({Status.DELIVERING}), Status.FAILED),
    Event.RELEASED: (frozenset({Status.DELIVERING}), Status.PENDING),
    Event.SUCCEEDED: (
        frozenset({Status.PENDING, Status.DELIVERING, Status.RETRY_READY, Status.MISSED}),
        Status.SUCCESS,
    ),
    Event.FAILED: (
        frozenset({Status.PENDING, Status.DELIVERING, Status.RETRY_READY, Status.MISSED}),
        Status.FAILED,
    ),
    Event.RETRY_SCHEDULED: (frozenset({Status.DELIVERING}), Status.RETRYING),
    Event.RETRY_DUE: (frozenset({Status.RETRYING}), Status.RETRY_READY),
    Event.UNCLAIMED: (frozenset({Status.PENDING}), Status.MISSED),
    Event.CANCELLED: (
        frozenset({Status.PENDING, Status.RETRYING, Status.RETRY_READY}),
        Status.FAILED,
    ),
    Event.SUPERSEDED: (
        frozenset({Status.PENDING, Status.DELIVERING, Status.RETRYING, Status.RETRY_READY}),
        Status.FAILED,
    ),
}
"""For each event: the statuses it may start from, and the status it leads to."""


class CueEvent(StrEnum):
    """Things that happen to a cue."""

    PAUSE = "pause"
    """Its owner pauses it (``PATCH {"status": "paused"}``), whatever its status."""
    RESUME = "resume"
    """Its owner resumes it (``PATCH {"status": "active"}``), whatever its status: resuming a
    completed or failed cue is allowed (contract)."""
    COMPLETE = "complete"
    """A one-time cue's run succeeded."""
    FAIL = "fail"
    """A one-time cue's run failed for good, was missed, or was skipped (misfire ``skip``,
    monthly limit)."""
    PAUSE_ON_FAILURE = "pause_on_failure"
    """A recurring cue with ``on_failure.pause`` had a push delivery fail for good."""


_ANY_CUE = frozenset(CueStatus)

CUE_TRANSITIONS: dict[CueEvent, tuple[frozenset[CueStatus], CueStatus]] = {
    CueEvent.PAUSE: (_ANY_CUE, CueStatus.PAUSED),
    CueEvent.RESUME: (_ANY_CUE, CueStatus.ACTIVE),
    CueEvent.COMPLETE: (frozenset({CueStatus.ACTIVE}), CueStatus.COMPLETED),
    CueEvent.FAIL: (frozenset({CueStatus.ACTIVE}), CueStatus.FAILED),
    CueEvent.PAUSE_ON_FAILURE: (frozenset({CueStatus.ACTIVE}), CueStatus.PAUSED),
}
"""For each cue event: the statuses it may start from, and the status it leads to. A cue that
its owner paused or resumed meanwhile is not ended by a run that was already under way."""

CUE_INITIAL = CueStatus.ACTIVE
"""The status a new cue is created in."""

LIVE_CUE_STATUSES = frozenset({CueStatus.ACTIVE, CueStatus.PAUSED})
"""Cue statuses that count toward the account's active cue limit (contract: ``active`` and
``paused``; ended cues do not)."""


def one_time_cue_end(schedule_type: str, execution_status: str) -> CueEvent | None:
    """The one place that decides a cue has ended: a one-time cue ends with its run, completed
    when that execution succeeded and failed when it failed or was missed (skipped, refused, or
    unclaimed). ``None`` for a recurring or interval cue, or for a run that has not ended."""
    if schedule_type != ScheduleType.ONCE or execution_status not in TERMINAL:
        return None
    return CueEvent.COMPLETE if execution_status == Status.SUCCESS else CueEvent.FAIL


@dataclass(frozen=True)
class Move:
    """A transition ready for a conditional update."""

    sources: tuple[str, ...]
    target: str


_MOVES: dict[tuple[type, Event | CueEvent], Move] = {}
"""Each event's :class:`Move` without ``only``, made once (the tables never change); keyed by
the enum too, as a cue event and an execution event may share a name."""


def move(event: Event | CueEvent, only: Iterable[Status | CueStatus] | None = None) -> Move:
    """The allowed sources and the target of ``event`` (an execution's or a cue's); with
    ``only``, just those of its sources (a narrower query: one status lets an index hand out
    rows in order)."""
    key = (type(event), event)
    if only is None and key in _MOVES:
        return _MOVES[key]
    sources, target = _transition(event)
    if only is not None:
        narrowed = set(only)
        if not narrowed <= set(sources):
            raise ValueError(f"{event} cannot start from {sorted(narrowed - set(sources))}")
        sources = frozenset(narrowed)
    made = Move(tuple(sorted(s.value for s in sources)), target.value)
    if only is None:
        _MOVES[key] = made
    return made


CueEnds = tuple[tuple[tuple[str, ...], Move], ...]
"""For each group of an execution's statuses, the move of its cue that ends it: what
:func:`one_time_cue_end` decides, as data a single conditional update can carry."""


@functools.cache
def cue_end_moves(schedule_type: str) -> CueEnds:
    """:func:`one_time_cue_end` for every status at once: the statuses that end a cue of
    ``schedule_type`` grouped by the cue's move (empty for a cue no run ends)."""
    ends: dict[CueEvent, list[str]] = {}
    for status in Status:
        event = one_time_cue_end(schedule_type, status.value)
        if event is not None:
            ends.setdefault(event, []).append(status.value)
    return tuple((tuple(sorted(statuses)), move(event)) for event, statuses in ends.items())


def can(status: str, event: Event | CueEvent) -> bool:
    """Whether ``event`` may happen to an execution (or, for a :class:`CueEvent`, a cue) in
    ``status``."""
    return status in _transition(event)[0]


def _transition(event: Event | CueEvent) -> tuple[frozenset[StrEnum], StrEnum]:
    # Two tables, not one: a member of a StrEnum is equal to its string, so a cue event and an
    # execution event of the same name would be the same key of a shared dict.
    if isinstance(event, CueEvent):
        return CUE_TRANSITIONS[event]
    return TRANSITIONS[event]


INITIAL = frozenset({Status.PENDING, Status.MISSED})
"""Statuses a new execution may be created in (``missed`` records a skipped run)."""


class RunStatus(StrEnum):
    """Flow run statuses, as on the wire."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    """Every step still open is a wait step waiting for its event."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


RUN_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
"""A run in one of these is over for good: nothing moves it again (cancel and the run's end
are final)."""

RUN_INITIAL = RunStatus.PENDING

RUN_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.PENDING: frozenset(set(RunStatus) - {RunStatus.PENDING}),
    RunStatus.RUNNING: frozenset(set(RunStatus) - {RunStatus.PENDING, RunStatus.RUNNING}),
    RunStatus.WAITING: frozenset(set(RunStatus) - {RunStatus.PENDING, RunStatus.WAITING}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}
"""For each run status, the statuses a run may move to from it."""


class StepStatus(StrEnum):
    """The status of one step of a run (or of one item of a ``for_each`` step)."""

    PENDING = "pending"
    """Not started: a parent is still open (shown, never stored)."""
    RUNNING = "running"
    """An execution of it is under way (or waits for a retry)."""
    WAITING = "waiting"
    """A wait step waiting for its event."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    """Its last attempt failed (or a wait step's deadline passed)."""
    SKIPPED = "skipped"
    """Its ``when`` rule did not hold once its parents had finished."""
    CANCELLED = "cancelled"
    """Its run was cancelled while it was open."""


STEP_TERMINAL = frozenset(
    {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)
STEP_OPEN = frozenset({StepStatus.RUNNING, StepStatus.WAITING})

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.WAITING, StepStatus.SKIPPED}),
    StepStatus.RUNNING: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED}),
    StepStatus.WAITING: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED}),
    **{status: frozenset() for status in STEP_TERMINAL},
}
"""For each step status, the statuses a step may move to from it (a step's row is created
running, waiting or skipped once its parents have ended: ``pending`` is never stored)."""


class FailureType(StrEnum):
    """Why a step's attempt failed: the ``type`` of its ``error`` and of the next attempt's
    ``flow.previous_failure``."""

    REPORTED_FAILURE = "reported_failure"
    """Its worker (or handler) reported ``success: false``."""
    EXECUTION_FAILED = "execution_failed"
    """Its execution failed without a reported outcome: lease used up, delivery failed."""
    MISSED = "missed"
    """Nobody claimed its execution in time."""
    OUTPUT_CONTRACT = "output_contract"
    """Its output does not validate against the step's ``output_schema``."""
    OUTPUT_TOO_LARGE = "output_too_large"
    FOR_EACH = "for_each"
    """The ``for_each`` parent's output is not an array of at most the bound's items."""
    WAIT_TIMEOUT = "wait_timeout"
    """A wait step's event did not come before its deadline."""
    EXECUTION_LIMIT = "execution_limit"
    """Its executions would pass the account's monthly execution limit (not retried)."""


class When(StrEnum):
    """When a step runs, once all its parents have finished."""

    SUCCESS = "success"
    """Every parent succeeded (the default)."""
    FAILURE = "failure"
    """At least one parent failed: a compensation step."""
    ALWAYS = "always"
    """Whatever the parents' ends."""


class StepType(StrEnum):
    """What a step is."""

    TASK = "task"
    """Delivered as an execution through a transport."""
    WAIT = "wait"
    """Resumed by an event sent to the run, failed by its deadline."""


def step_should_run(when: str, parents: Iterable[str]) -> bool:
    """Whether a step whose parents ended in ``parents`` (terminal step statuses) runs under
    its ``when`` rule (a root step, with no parents, always runs)."""
    ends = list(parents)
    if not ends:
        return True
    if when == When.ALWAYS:
        return True
    if when == When.FAILURE:
        return any(end == StepStatus.FAILED for end in ends)
    return all(end == StepStatus.SUCCEEDED for end in ends)


def run_end(steps: Iterable[str]) -> RunStatus | None:
    """The status a run ends in once every one of its steps ended in ``steps``: ``failed``
    when any step failed (a compensation step that ran does not undo the failure), else
    ``succeeded``; ``None`` while a step is still open."""
    ends = list(steps)
    if any(end not in STEP_TERMINAL for end in ends):
        return None
    return RunStatus.FAILED if StepStatus.FAILED in ends else RunStatus.SUCCEEDED
