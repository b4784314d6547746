"""Reading executions: one, a filtered page, or a cue's history. A ``pending`` execution that a
concurrency or rate limit holds back says what it waits for (``waiting_for``,
:func:`cueflow.run_limits.waiting_for`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cueflow.ids as ids
import cueflow.run_limits as run_limits
from cueflow.authentication import Principal
from cueflow.errors import CueflowError, NotFound
from cueflow.records import Execution
from cueflow.store import ExecutionFilter, ExecutionPage

if TYPE_CHECKING:
    from cueflow.services import Services
    from cueflow.store import StoreTx


async def _with_waits(
    services: Services, tx: StoreTx, rows: Sequence[Execution]
) -> list[Execution]:
    """``rows``, those held back by a limit with their ``waiting_for`` filled in."""
    waits = await run_limits.waiting_for(tx, rows, services.clock.now())
    if not waits:
        return list(rows)
    return [
        dataclasses.replace(row, waiting_for=waits[row.id]) if row.id in waits else row
        for row in rows
    ]


def status_filter(status: str | None, status_in: str | None) -> list[str] | None:
    """The statuses selected by ``status`` or the comma-separated ``status__in`` (not both)."""
    if status is not None and status_in is not None:
        raise CueflowError(
            "Pass either `status` or `status__in`, not both.", code="conflicting_filters"
        )
    if status_in is not None:
        chosen = [part.strip() for part in status_in.split(",") if part.strip()]
        if not chosen:
            raise CueflowError("status__in must name at least one status", code="invalid_status_in")
        return chosen
    return [status] if status is not None else None


async def list_executions(
    services: Services, user: Principal, where: ExecutionFilter, limit: int, offset: int
) -> ExecutionPage:
    """A page of the caller's executions, newest first."""
    async with services.store.tx() as tx:
        page = await tx.list_executions(user.user_id, where, limit, offset)
        return dataclasses.replace(page, rows=await _with_waits(services, tx, page.rows))


async def get_execution(services: Services, user: Principal, execution_id: str) -> Execution:
    """One of the caller's executions, or 404 ``execution_not_found``."""
    row = None
    if ids.is_uuid(execution_id):
        async with services.store.tx() as tx:
            row = await tx.get_execution(user.user_id, execution_id)
            if row is not None:
                [row] = await _with_waits(services, tx, [row])
    if row is None:
        raise NotFound("Execution not found", code="execution_not_found")
    return row


async def get_execution_with_payload(
    services: Services, user: Principal, execution_id: str
) -> tuple[Execution, dict[str, Any]]:
    """One of the caller's executions and the payload it carries (its fire's override, else
    its cue's), read together; 404 ``execution_not_found``. The lists do not show payloads:
    that needs each row's cue."""
    row = cue = None
    if ids.is_uuid(execution_id):
        async with services.store.tx() as tx:
            row = await tx.get_execution(user.user_id, execution_id)
            if row is not None:
                [row] = await _with_waits(services, tx, [row])
                if row.payload_override is None:
                    cue = await tx.get_cue(user.user_id, row.cue_id)
    if row is None:
        raise NotFound("Execution not found", code="execution_not_found")
    if row.payload_override is not None:
        return row, dict(row.payload_override)
    return row, dict((cue.payload if cue is not None else None) or {})


async def cue_executions(
    services: Services, user: Principal, cue_id: str, limit: int, offset: int
) -> tuple[list[Execution], int]:
    """A page of one cue's executions, newest first."""
    async with services.store.tx() as tx:
        rows, total = await tx.cue_executions(user.user_id, cue_id, limit, offset)
        return await _with_waits(services, tx, rows), total
