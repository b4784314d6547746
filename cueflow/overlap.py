"""Overlap policy: what a new scheduled run of a cue does while earlier ones are not over yet
(``overlap_policy``, :class:`cueflow.run_controls.Overlap`; see ``docs/run-controls.md``).

An earlier run is *open* while its status is not terminal (``pending``, ``delivering``,
``retrying``, ``retry_ready``); it is *waiting* while nobody has it yet (``pending``,
``retry_ready``). For each new run, oldest scheduled time first:

* ``allow``: nothing changes (the default, CueAPI's behaviour).
* ``skip``: with any run open, the new run is recorded ``missed``, its ``error_message`` naming
  the run it overlapped.
* ``buffer_one``: with a run waiting already, the new run is recorded ``missed`` naming it;
  otherwise it waits (at most one run waits behind the ones under way).
* ``cancel_other``: the new run runs; every open run is cancelled once it is stored: it ends
  ``failed`` (:attr:`cueflow.states.Event.SUPERSEDED`) with ``error_message``
  ``cancelled: superseded by <id> (overlap_policy cancel_other)``. A worker still holding one
  gets 409 ``execution_cancelled`` from its heartbeat and its outcome report, which is not
  written; a push delivery under way cannot record its result over it (its conditional update
  finds the row ``failed``).

The scheduler and backfills apply it (a skipped run keeps the ``triggered_by`` of its fire).
Manual fires and replays never do (the caller asked for that run), and runs of flow steps are
neither subject to it nor counted as open. The open runs are read in the transaction that
inserts the new runs, after the cue's row is locked, so two fires of one cue (two nodes, a
backfill beside the scheduler) take turns and cannot both buffer a run. Cancels lock without
waiting (see :func:`cancel_superseded`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from cueflow.errors import Conflict
from cueflow.records import Cue, Execution, FiredRun
from cueflow.run_controls import Overlap
from cueflow.states import UNFINISHED, WAITING, Event, Status, move, one_time_cue_end
from cueflow.store import FirePlan, StoreTx

if TYPE_CHECKING:
    from cueflow.services import Services

OPEN_STATUSES = tuple(sorted(s.value for s in UNFINISHED))
"""Statuses of a run that a new one overlaps."""
CANCELLED_PREFIX = "cancelled: superseded by "
"""How the ``error_message`` of a run cancelled by ``cancel_other`` starts."""


@dataclass
class _Open:
    """An open run as the policy sees it."""

    id: str
    waiting: bool


@dataclass
class OverlapState:
    """The open runs of one cue while new runs are admitted one by one, oldest first."""

    policy: str
    open: list[_Open] = field(default_factory=list)
    cancels: dict[str, list[str]] = field(default_factory=dict)
    """For a new run's id: the runs it cancels once it is stored (``cancel_other``)."""
    _undo: list[_Open] = field(default_factory=list)

    def admit(self, values: dict[str, Any]) -> None:
        """Apply the policy to a new ``pending`` run about to be inserted (``values`` as
        :func:`cueflow.scheduler.new_execution` makes them): it may become ``missed``. Runs in
        another status (already ``missed``) are left alone."""
        self._undo = list(self.open)
        if values["status"] != Status.PENDING or self.policy == Overlap.ALLOW:
            return
        if self.policy == Overlap.SKIP and self.open:
            _skip(values, f"overlapped execution {self.open[0].id}", Overlap.SKIP)
            return
        if self.policy == Overlap.BUFFER_ONE:
            waiting = next((run for run in self.open if run.waiting), None)
            if waiting is not None:
                why = f"overlapped execution {self.open[0].id}, execution {waiting.id} waits"
                _skip(values, why, Overlap.BUFFER_ONE)
                return
        if self.policy == Overlap.CANCEL_OTHER and self.open:
            self.cancels[values["id"]] = [run.id for run in self.open]
            self.open = []
        self.open.append(_Open(values["id"], waiting=True))

    def forget(self, execution_id: str) -> None:
        """The run :meth:`admit` just took was not stored after all (its fire key existed): the
        open runs are as they were before it, and it cancels nothing."""
        self.open = self._undo
        self.cancels.pop(execution_id, None)


def state_of(policy: str | None, open_runs: Iterable[Execution]) -> OverlapState:
    """An :class:`OverlapState` for ``policy`` (``None``: ``allow``) over a cue's open runs."""
    return OverlapState(
        policy or Overlap.ALLOW.value,
        [_Open(run.id, waiting=run.status in WAITING) for run in open_runs],
    )


async def read_open_runs(tx: StoreTx, cue_ids: Sequence[str]) -> dict[str, list[Execution]]:
    """The open runs of ``cue_ids``, by cue (read, not locked: the caller holds the cues'
    rows, which is what keeps two fires of one cue apart)."""
    found: dict[str, list[Execution]] = {cue_id: [] for cue_id in cue_ids}
    for run in await tx.open_runs(list(cue_ids), OPEN_STATUSES):
        found[run.cue_id].append(run)
    return found


def _skip(values: dict[str, Any], why: str, policy: Overlap) -> None:
    values["status"] = Status.MISSED.value
    values["error_message"] = f"Skipped: {why} (overlap_policy {policy.value})"


def cancelled_message(new_id: str) -> str:
    """The ``error_message`` of a run cancelled by the new run ``new_id``."""
    return f"{CANCELLED_PREFIX}{new_id} (overlap_policy {Overlap.CANCEL_OTHER.value})"


async def _cancel(tx: StoreTx, old_id: str, new_id: str, now: datetime) -> Execution | None:
    values = {
        "error_message": cancelled_message(new_id),
        "lease_expires_at": None,
        "next_retry": None,
        "updated_at": now,
    }
    return await tx.update_execution(old_id, values, move=move(Event.SUPERSEDED))


async def cancel_superseded(
    tx: StoreTx,
    cue_ids: Sequence[str],
    cancels: dict[str, list[str]],
    stored: Iterable[str],
    now: datetime,
) -> dict[str, str]:
    """Cancel, in ``tx``, the runs of ``cue_ids`` that the stored new runs ``stored``
    supersede. The move is conditional: a run that ended meanwhile stays as it ended.

    The runs are locked without waiting (``SKIP LOCKED``): ``tx`` holds its cues' rows, and an
    outcome or a delivery result locks its execution first and its cue next, so waiting here
    could deadlock. A run another transaction holds at that instant is returned (old id: new
    id) for :func:`cancel_later`, once ``tx`` committed."""
    wanted = {old: new for new in stored for old in cancels.get(new, ())}
    if not wanted:
        return {}
    held = {run.id for run in await tx.open_runs(list(cue_ids), OPEN_STATUSES, lock=True)}
    later: dict[str, str] = {}
    for old_id, new_id in wanted.items():
        if old_id in held:
            await _cancel(tx, old_id, new_id, now)
        else:
            later[old_id] = new_id
    return later


async def cancel_later(services: Services, later: dict[str, str], now: datetime) -> None:
    """Cancel the runs :func:`cancel_superseded` found busy, in a transaction of their own
    (holding no cue, it may wait for them)."""
    if not later:
        return
    async with services.store.tx() as tx:
        for old_id, new_id in sorted(later.items()):
            await _cancel(tx, old_id, new_id, now)


class FireGate:
    """The overlap policy in one scheduler batch: :meth:`prepare` reads the open runs of the
    locked cues, :meth:`wrap` applies the policy to their fire plans, :meth:`after` cancels
    what the stored runs supersede (all in the batch's transaction)."""

    def __init__(self, tx: StoreTx) -> None:
        self.tx = tx
        self.states: dict[str, OverlapState] = {}

    async def prepare(self, locked: list[Cue]) -> None:
        """Read the open runs of the locked cues whose policy is not ``allow``."""
        watched = [c for c in locked if c.overlap_policy != Overlap.ALLOW and c.flow_id is None]
        if not watched:
            return
        runs = await read_open_runs(self.tx, [cue.id for cue in watched])
        for cue in watched:
            self.states[cue.id] = state_of(cue.overlap_policy, runs[cue.id])

    def wrap(self, plan: Callable[[Cue], FirePlan]) -> Callable[[Cue], FirePlan]:
        """``plan`` with the overlap policy applied to its new runs, oldest first."""

        def gated(cue: Cue) -> FirePlan:
            fired = plan(cue)
            state = self.states.get(cue.id)
            if state is None:
                return fired
            for values in sorted(fired.executions, key=lambda v: v["scheduled_for"]):
                state.admit(values)
            runs = fired.executions
            if runs and all(values["status"] == Status.MISSED for values in runs):
                ended = one_time_cue_end(cue.schedule_type, Status.MISSED)
                if ended is not None:  # locked and active: the move holds
                    fired.cue_values_if_fired["status"] = move(ended).target
            return fired

        return gated

    async def after(self, inserted: Iterable[FiredRun], now: datetime) -> dict[str, str]:
        """Cancel the runs superseded by the inserted ones; returns those to cancel once the
        batch committed (see :func:`cancel_superseded`)."""
        cancels = {k: v for state in self.states.values() for k, v in state.cancels.items()}
        if not cancels:
            return {}
        stored = [run.id for run in inserted]
        return await cancel_superseded(self.tx, list(self.states), cancels, stored, now)


def is_cancelled(row: Execution) -> bool:
    """Whether ``row`` was cancelled by a newer run (``cancel_other``)."""
    return (
        row.status == Status.FAILED
        and row.outcome_recorded_at is None
        and (row.error_message or "").startswith(CANCELLED_PREFIX)
    )


def cancelled_error(row: Execution) -> Conflict:
    """The 409 a worker's heartbeat or outcome on a cancelled run gets."""
    return Conflict(
        f"This execution was cancelled: {row.error_message}", code="execution_cancelled"
    )


def refuse_if_cancelled(row: Execution) -> None:
    """409 ``execution_cancelled`` when a newer run cancelled ``row``."""
    if is_cancelled(row):
        raise cancelled_error(row)


def refusals(rows: Iterable[Execution]) -> dict[str, Conflict]:
    """For the cancelled runs among ``rows``, the 409 an outcome report on them gets."""
    return {row.id: cancelled_error(row) for row in rows if is_cancelled(row)}
