"""The public Python API of cues: create, read, change, pause, resume and delete them, and
start runs by hand (methods of :class:`cueflow.engine.Engine`)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import cueflow.backfill as backfill
import cueflow.cues as cues
import cueflow.manual_runs as manual_runs
from cueflow.authentication import Principal
from cueflow.records import Cue, Execution
from cueflow.schemas import CueCreate, CueUpdate
from cueflow.states import CueStatus

if TYPE_CHECKING:
    from cueflow.services import Services


class CueMethods:
    """Cues and the runs started by hand."""

    services: Services

    async def create_cue(
        self, user: Principal, spec: CueCreate | dict[str, Any]
    ) -> tuple[Cue, str | None]:
        """Create a cue from a ``POST /v1/cues`` body (a dict or :class:`CueCreate`); returns
        the stored cue and a warning (no live worker for a worker cue) or ``None``. Invalid
        input raises :class:`cueflow.errors.CueflowError` (a dict that fails validation:
        :class:`pydantic.ValidationError`)."""
        if isinstance(spec, dict):
            spec = CueCreate.model_validate(spec)
        return await cues.create_cue(self.services, user, spec)

    async def list_cues(
        self,
        user: Principal,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        name: str | None = None,
    ) -> tuple[list[Cue], int]:
        """A page of the caller's cues (of ``status``: ``active``, ``paused``, ``completed``,
        ``failed``; whose name contains ``name``, ignoring case), newest first, and the total."""
        async with self.services.store.tx() as tx:
            return await tx.list_cues(user.user_id, status, limit, offset, name)

    async def get_cue(self, user: Principal, cue_id: str) -> Cue:
        """One cue, or 404."""
        return await cues.get_cue(self.services, user, cue_id)

    async def update_cue(
        self, user: Principal, cue_id: str, patch: CueUpdate | dict[str, Any]
    ) -> Cue:
        """Change a cue (PATCH semantics)."""
        if isinstance(patch, dict):
            patch = CueUpdate.model_validate(patch)
        return await cues.update_cue(self.services, user, cue_id, patch)

    async def pause_cue(self, user: Principal, cue_id: str) -> Cue:
        """Pause a cue: it stops firing until resumed."""
        return await self.update_cue(user, cue_id, CueUpdate(status=CueStatus.PAUSED.value))

    async def resume_cue(self, user: Principal, cue_id: str) -> Cue:
        """Resume a cue: its next run is computed from now."""
        return await self.update_cue(user, cue_id, CueUpdate(status=CueStatus.ACTIVE.value))

    async def delete_cue(self, user: Principal, cue_id: str) -> None:
        """Delete a cue and its executions."""
        await cues.delete_cue(self.services, user, cue_id)

    # runs started by hand
    async def fire_cue(
        self,
        user: Principal,
        cue_id: str,
        *,
        send_at: datetime | None = None,
        payload_override: dict[str, Any] | None = None,
        merge_strategy: str = "merge",
        idempotency_key: str | None = None,
    ) -> manual_runs.FiredExecution:
        """Fire a cue now, or at ``send_at`` if that is in the future (any cue status); returns
        the ``pending`` execution (``triggered_by`` ``manual_fire``), an
        :class:`~cueflow.manual_runs.FiredExecution`: ``fire_payload`` is the payload it
        carries, ``repeated`` is true when ``idempotency_key`` was already used for this cue
        within 24 h (the first fire's execution is returned, nothing is created).
        ``payload_override`` is merged over the cue's payload (``merge_strategy="merge"``, the
        default: top-level keys) or replaces it (``"replace"``); the result must hold the cue's
        ``required_payload_keys`` (400 ``missing_payload_keys``)."""
        return await manual_runs.fire_cue(
            self.services,
            user,
            cue_id,
            send_at,
            payload_override,
            merge_strategy=merge_strategy,
            idempotency_key=idempotency_key,
        )

    async def replay_execution(self, user: Principal, execution_id: str) -> Execution:
        """Run a finished execution's cue again now; returns the new execution (``triggered_by``
        ``replay``)."""
        return await manual_runs.replay_execution(self.services, user, execution_id)

    async def backfill_cue(
        self,
        user: Principal,
        cue_id: str,
        start: datetime,
        end: datetime,
        overlap_policy: str | None = None,
    ) -> backfill.Backfill:
        """Run a cue once per scheduled time in ``[start, end)`` that has passed (naive
        datetimes are UTC), at most 1000 runs, ``triggered_by`` ``backfill``; a time that has a
        run already is skipped. ``overlap_policy`` (default: the cue's) applies among the new
        runs and the cue's open ones. See :mod:`cueflow.backfill`."""
        return await backfill.backfill_cue(self.services, user, cue_id, start, end, overlap_policy)
