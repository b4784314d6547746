"""``GET /v1/usage``: the caller's consumption in the current calendar month (UTC).

Every figure is counted from the database when asked (:mod:`cueflow.quotas` says what counts).
Limits come from the settings; ``0`` means unlimited, and then ``remaining`` is ``null``,
``percent_used`` 0 and ``will_exceed_limit`` false. ``rate_limit`` carries both
``requests_per_minute`` (CueAPI's key) and ``limit`` (the key the ``cueapi`` CLI reads).
``rate_limit.scope`` (cueflow extension) is ``per_node``: each ``cueflow serve`` process counts
the requests it served itself, so behind a balancer over N nodes a key may make up to N times
``requests_per_minute``. ``upgrade_url`` is ``null``: a self-hosted server has nothing to
upgrade to.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.quotas as quotas
from cueflow.authentication import Principal
from cueflow.errors import NotFound

if TYPE_CHECKING:
    from cueflow.services import Services

RATE_LIMIT_SCOPE = "per_node"
"""Where the API rate limit is counted: in each process, not across the cluster."""


def _share(used: int, limit: int) -> dict[str, Any]:
    if limit <= 0:
        return {"limit": limit, "remaining": None, "percent_used": 0}
    return {
        "limit": limit,
        "remaining": max(0, limit - used),
        "percent_used": round(used / limit * 100),
    }


def _executions(used: int, limit: int, now: datetime) -> dict[str, Any]:
    days = calendar.monthrange(now.year, now.month)[1]
    projected = round(used / now.day * days)
    return {
        "used": used,
        **_share(used, limit),
        "percentage": round(used / limit * 100, 1) if limit > 0 else 0.0,
        "projected_month_end": projected,
        "will_exceed_limit": limit > 0 and projected >= limit,
    }


async def usage(services: Services, user: Principal, rate_used: int = 0) -> dict[str, Any]:
    """The usage report; ``rate_used`` is how many requests the caller's key made in the current
    rate-limit window (the API layer knows it)."""
    now = services.clock.now().astimezone(UTC)
    settings = services.settings
    start = quotas.month_start(now)
    async with services.store.tx() as tx:
        row = await tx.get_user(user.user_id)
        counts = await tx.usage_counts(user.user_id, start)
    if row is None:
        raise NotFound("User not found", code="user_not_found")
    first = start.date().isoformat()
    end = (quotas.next_month_start(now) - timedelta(days=1)).date()
    cues = counts["active_cues"] + counts["paused_cues"]
    return {
        "plan": row.plan,
        "billing_period": {
            "start": first,
            "end": end.isoformat(),
            "days_remaining": (end - now.date()).days,
        },
        "period": {"start": first, "end": end.isoformat()},
        "cues": {"used": cues, "active": cues, **_share(cues, settings.active_cue_limit)},
        "executions": _executions(counts["executions"], settings.monthly_execution_limit, now),
        "outcomes": {
            "reported": counts["reported"],
            "succeeded": counts["succeeded"],
            "failed": counts["failed"] + counts["failed_unreported"],
        },
        "rate_limit": {
            "requests_per_minute": settings.rate_limit_per_minute,
            "limit": settings.rate_limit_per_minute,
            "current_usage": rate_used,
            "scope": RATE_LIMIT_SCOPE,
        },
        "upgrade_url": None,
    }
