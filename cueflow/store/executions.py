"""Executions: inserts, history listings, conditional updates, write-once outcomes and the
reads verification and alert rules make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from cueflow.records import Execution, FinishedRun, OutcomeTarget
from cueflow.states import Move
from cueflow.store.values import CueRun, ExecutionFilter, ExecutionPage, ReportGate


class ExecutionStore(Protocol):
    """Executions (see the module)."""

    async def insert_execution(self, values: dict[str, Any]) -> bool:
        """Insert one execution; ``False`` if its fire key exists already."""

    async def get_execution(self, user_id: str, execution_id: str) -> Execution | None:
        """One of the user's executions."""

    async def outcome_targets(
        self, user_id: str, execution_ids: Sequence[str]
    ) -> list[OutcomeTarget]:
        """The user's executions among ``execution_ids``, in any order, each with its cue's
        verification mode and schedule type (``None`` when the cue is gone)."""

    async def list_executions(
        self, user_id: str, where: ExecutionFilter, limit: int, offset: int
    ) -> ExecutionPage:
        """A page of the user's executions, newest first."""

    async def cue_executions(
        self, user_id: str, cue_id: str, limit: int, offset: int
    ) -> tuple[list[Execution], int]:
        """A page of one cue's executions, newest first, and their total."""

    async def update_execution(
        self,
        execution_id: str,
        values: dict[str, Any],
        *,
        move: Move | None = None,
        expect: dict[str, Any] | None = None,
    ) -> Execution | None:
        """Set ``values`` on an execution if its status is in ``move.sources`` (then status
        becomes ``move.target``) and every column in ``expect`` has the given value (``None``
        means SQL NULL). Returns the updated execution or ``None``."""

    async def move_executions(
        self, execution_ids: Sequence[str], attempts: int, values: dict[str, Any], move: Move
    ) -> list[Execution]:
        """:meth:`update_execution` of many in one statement: set ``values`` on each of
        ``execution_ids`` whose status is in ``move.sources`` and whose ``attempts`` is
        ``attempts`` (the status becomes ``move.target``). Returns those updated."""

    async def record_outcomes(
        self,
        user_id: str,
        execution_ids: Sequence[str],
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
    ) -> list[Execution]:
        """Write the same outcome on each of ``execution_ids`` once: only where none is
        recorded yet and, with ``gate``, where the gate lets its worker report. The status
        moves to ``move.target`` where it is in ``move.sources`` and stays otherwise. Returns
        the updated executions (absent: not written)."""

    async def record_outcome(
        self,
        user_id: str,
        execution_id: str,
        values: dict[str, Any],
        move: Move | None,
        gate: ReportGate | None,
        run: CueRun | None,
    ) -> Execution | None:
        """:meth:`record_outcomes` of one execution, and with ``run`` the run counted on its
        cue when (and only when) the outcome is written: ``run.values`` set, and the cue
        moved by the first of ``run.ends`` whose statuses hold the execution's new status
        (where the cue's status is among that move's sources). The two writes are atomic
        together: one statement where the store can (a hot path: a worker's outcome), so that
        a unit of work that is not :attr:`~cueflow.store.StoreTx.atomic` may run it. Returns
        the updated execution, or ``None`` (not written)."""

    async def lock_execution(self, user_id: str, execution_id: str) -> Execution | None:
        """One of the user's executions, locked until the transaction ends."""

    async def open_runs(
        self, cue_ids: Sequence[str], statuses: Sequence[str], *, lock: bool = False
    ) -> list[Execution]:
        """The executions of ``cue_ids`` in ``statuses`` that are not flow steps, oldest
        ``scheduled_for`` first (a cue's overlap policy reads them). With ``lock``, only those
        no other transaction holds, locked until this one ends (``SKIP LOCKED``: never waits;
        a store whose transactions are serial returns them all)."""

    async def restamp_executions(
        self, cue_id: str, statuses: Sequence[str], values: dict[str, Any]
    ) -> int:
        """Set ``values`` (run-control columns) on the cue's executions in ``statuses``; returns
        how many changed."""

    async def finished_runs(self, cue_id: str, limit: int) -> list[FinishedRun]:
        """The cue's latest executions that finished (``success``/``failed``) or have an
        outcome, newest first."""
