"""Plan limits: active cues per account and scheduled executions per calendar month.

Both are settings, unlimited (0) by default because a self-hosted server has no plans to sell:

* ``CUEFLOW_ACTIVE_CUE_LIMIT``: creating a cue when the account already has that many cues
  ``active`` or ``paused`` answers 403 ``cue_limit_exceeded``. The count and the insert happen
  in one transaction that first locks the account's row (``SELECT ... FOR UPDATE`` on
  PostgreSQL; SQLite transactions are serial), so concurrent creates cannot overshoot.
* ``CUEFLOW_MONTHLY_EXECUTION_LIMIT``: the scheduler gives an account at most that many
  executions per calendar month (UTC); a run past the limit is recorded as a ``missed``
  execution saying so, and a one-time cue whose run was refused fails. Manual fires and replays
  are counted but never refused (as CueAPI does). The count is taken once per scheduler batch,
  so nodes firing the same account at the same moment may overshoot by the runs of one batch.

Flow steps are executions like any other, so they count. A step whose executions (one, or one
per item of a ``for_each`` step) would pass the limit is not created: the step fails at once
with type ``execution_limit`` (:func:`step_budget`; not retried), so the run ends ``failed``
rather than stalling on executions that never come (a ``when: "failure"`` task step after it is
refused alike while the limit holds). Nodes handing off steps of one account at once may
overshoot by those steps' executions.

"Executions this month" are the account's executions created since the first of the month,
``missed`` ones (skipped runs, refused runs, unclaimed work) excepted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cueflow.errors import Forbidden
from cueflow.records import Cue
from cueflow.states import LIVE_CUE_STATUSES, FailureType, Status, move, one_time_cue_end
from cueflow.store import FirePlan

if TYPE_CHECKING:
    from cueflow.services import Services

COUNTED_CUE_STATUSES = tuple(sorted(s.value for s in LIVE_CUE_STATUSES))
"""Cue statuses that count toward the active cue limit."""
MONTHLY_LIMIT_REACHED = "Monthly execution limit reached"


def month_start(now: datetime) -> datetime:
    """Midnight UTC on the first day of ``now``'s month."""
    now = now.astimezone(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def next_month_start(now: datetime) -> datetime:
    """Midnight UTC on the first day of the month after ``now``'s."""
    start = month_start(now)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)


def _limit_reached(limit: int) -> Forbidden:
    return Forbidden(f"Active cue limit of {limit} reached", code="cue_limit_exceeded")


async def check_cue_limit(services: Services, tx: Any, user_id: str, *, lock: bool = False) -> None:
    """403 ``cue_limit_exceeded`` when the account may not have one more cue. With ``lock`` the
    account's row is locked first, so the check holds until ``tx`` commits the new cue."""
    limit = services.settings.active_cue_limit
    if limit <= 0:
        return
    if lock:
        await tx.lock_user(user_id)
    if await tx.count_cues(user_id, COUNTED_CUE_STATUSES) >= limit:
        raise _limit_reached(limit)


async def monthly_gate(
    services: Services, tx: Any, plan: Callable[[Cue], FirePlan], now: datetime
) -> Callable[[Cue], FirePlan]:
    """``plan`` (the scheduler's fire plan), changed so that runs past an account's monthly
    execution limit become ``missed`` executions; ``plan`` itself when there is no limit."""
    limit = services.settings.monthly_execution_limit
    if limit <= 0:
        return plan
    used = await tx.due_users_executions(now, month_start(now))
    left: dict[str, int] = {}

    def gated(cue: Cue) -> FirePlan:
        fired = plan(cue)
        user_id = cue.user_id
        remaining = left.get(user_id, limit - used.get(user_id, 0))
        refused = False
        for execution in fired.executions:
            if execution["status"] != Status.PENDING:
                continue
            if remaining > 0:
                remaining -= 1
                continue
            execution.update(status=Status.MISSED.value, error_message=MONTHLY_LIMIT_REACHED)
            refused = True
        left[user_id] = remaining
        ended = one_time_cue_end(cue.schedule_type, Status.MISSED) if refused else None
        if ended is not None:  # the scheduler fires only active cues, locked: the move holds
            fired.cue_values_if_fired["status"] = move(ended).target
        return fired

    return gated


async def executions_this_month(tx: Any, user_id: str, now: datetime) -> int:
    """The account's executions counted against its monthly limit."""
    counts = await tx.usage_counts(user_id, month_start(now))
    return int(counts["executions"])


async def step_budget(services: Services, tx: Any, user_id: str, now: datetime) -> int | None:
    """How many more executions the account may get this month (``None``: no limit), for a
    flow step about to create its executions."""
    limit = services.settings.monthly_execution_limit
    if limit <= 0:
        return None
    return max(0, limit - await executions_this_month(tx, user_id, now))


def limit_failure(services: Services) -> dict[str, Any]:
    """The ``error`` of a flow step refused by the monthly execution limit."""
    limit = services.settings.monthly_execution_limit
    reason = f"{MONTHLY_LIMIT_REACHED} ({limit} executions this month)"
    return {"type": FailureType.EXECUTION_LIMIT.value, "reason": reason}
