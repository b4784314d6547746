"""Cues and their firing: the cue records, and the scheduler's atomic "fire what is due" with
the counters and statuses a run changes on its cue."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from cueflow.records import Cue, FiredRun
from cueflow.states import Move
from cueflow.store.values import FirePlan


class CueStore(Protocol):
    """Cues and their firing (see the module)."""

    async def insert_cue(self, values: dict[str, Any]) -> None:
        """Insert a cue; raise :class:`Duplicate` ``name``."""

    async def get_cue(self, user_id: str, cue_id: str) -> Cue | None:
        """One of the user's cues."""

    async def lock_cue(self, user_id: str, cue_id: str) -> Cue | None:
        """One of the user's cues, locked until the transaction ends (waiting for a lock the
        scheduler holds)."""

    async def cue_name_taken(self, user_id: str, name: str) -> bool:
        """Whether the user has a cue called ``name``."""

    async def cue_named(self, user_id: str, name: str) -> Cue | None:
        """The user's cue called ``name`` (a flow step's hidden cue is none of theirs)."""

    async def declared_cues(self) -> list[Cue]:
        """Every cue of every account declared in code (``declaration`` set), oldest first."""

    async def list_cues(
        self,
        user_id: str,
        status: str | None,
        limit: int,
        offset: int,
        name_contains: str | None = None,
    ) -> tuple[list[Cue], int]:
        """A page of the user's cues, newest first, and the total; with ``name_contains``,
        only those whose name contains it, ignoring case."""

    async def update_cue(self, user_id: str, cue_id: str, values: dict[str, Any]) -> Cue | None:
        """Set ``values`` on one of the user's cues; return it updated, or ``None``."""

    async def delete_cue(self, user_id: str, cue_id: str) -> bool:
        """Delete one of the user's cues with its executions; ``False`` if there was none."""

    async def earliest_next_run(self) -> datetime | None:
        """The soonest ``next_run`` of any active cue."""

    async def fire_due(
        self,
        now: datetime,
        limit: int,
        plan: Callable[[Cue], FirePlan],
        prepare: Callable[[list[Cue]], Awaitable[None]] | None = None,
    ) -> tuple[int, list[FiredRun]]:
        """Lock up to ``limit`` active cues with ``next_run <= now`` (skipping rows other nodes
        hold), await ``prepare`` with them (reads the plan needs, in this transaction), apply
        ``plan`` to each, insert the planned executions (a fire key that exists
        already is skipped silently) and write the cue values. ``fired_count`` grows by the
        number of executions actually inserted. Returns the number of cues locked and the
        inserted executions."""

    async def bump_cue(
        self,
        cue_id: str,
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
    ) -> None:
        """Add to a cue's ``run_count`` and set ``values`` (only when its status is in
        ``only_if_status``, if given)."""

    async def bump_cues(
        self,
        cue_ids: Sequence[str],
        *,
        run_count: int = 0,
        values: dict[str, Any] | None = None,
        only_if_status: Sequence[str] | None = None,
        finish: Move | None = None,
    ) -> None:
        """:meth:`bump_cue` on several cues at once; with ``finish``, a cue whose status is in
        ``finish.sources`` also moves to ``finish.target`` in the same statement (a one-time
        cue's run ended); the others keep their status."""

    async def notify_schedule_changed(self) -> None:
        """Tell other nodes that cue schedules changed (no-op for single-process stores)."""
