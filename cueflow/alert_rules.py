"""What raises an alert. A push execution that failed for good raises ``delivery_failed``
(:func:`delivery_failed`, inside the transaction that failed it). Reported outcomes raise
alerts after the outcome is committed (contract §4.8):

* ``verification_failed`` when the recorded ``outcome_state`` is ``verification_failed``;
* ``consecutive_failures`` on a failed outcome once the cue's latest finished runs start with
  at least :data:`CONSECUTIVE_FAILURE_THRESHOLD` failures (metadata ``consecutive_failures``).

A run counts as failed by its outcome when one was reported and by its status otherwise, so
webhook cues whose handlers keep reporting failures are alerted too (CueAPI looks at status
only, which for webhooks reflects delivery, so they never reach the threshold).

Both have severity ``warning``. An alert of the same type for the same execution (or cue, when
there is no execution) within :data:`DEDUPE_SECONDS` is not repeated. When the owner set an
``alert_webhook_url`` (``PATCH /v1/auth/me``), the alert is also POSTed there, signed with the
alert webhook secret (created on first use), once and without waiting for it. Nothing here can
fail the outcome report: errors are logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import cueflow.alerts as alerts
import cueflow.signing_secrets as signing_secrets
from cueflow.alerts import DELIVERY_FAILED, MAX_ERROR_CHARS
from cueflow.records import Execution, FailedAttempt, FinishedRun
from cueflow.states import Status
from cueflow.transport import Notice

if TYPE_CHECKING:
    from cueflow.services import Services

log = logging.getLogger(__name__)

CONSECUTIVE_FAILURE_THRESHOLD = 3
DEDUPE_SECONDS = 300
STREAK_LOOKBACK = 100
"""Most recent runs examined when counting a failure streak."""
_sending: set[asyncio.Task[None]] = set()


async def delivery_failed(
    tx: Any, execution: FailedAttempt, error: str | None, http_status: int | None, now: datetime
) -> Notice | None:
    """Store the alert for a push execution that failed for good (inside the transaction that
    failed it) and return the ``cue.failed`` notice to send once that commits, or ``None`` when
    neither the cue nor its owner names a webhook for it."""
    alert_id = str(uuid.uuid4())
    attempts = execution.attempts
    last_error = (error or "")[:MAX_ERROR_CHARS]
    await tx.insert_alert(
        {
            "id": alert_id,
            "user_id": execution.user_id,
            "cue_id": execution.cue_id,
            "execution_id": execution.id,
            "alert_type": DELIVERY_FAILED,
            "severity": "critical",
            "message": (
                f"Execution of cue '{execution.cue_name}' failed after {attempts} "
                f"attempt(s): {last_error}"
            ),
            "alert_metadata": {
                "attempts": attempts,
                "last_http_status": http_status,
                "last_error": last_error,
            },
            "acknowledged": False,
            "created_at": now,
        }
    )
    user = await tx.get_user(execution.user_id)
    url = (execution.on_failure or {}).get("webhook") or (user and user.alert_webhook_url)
    if not url or user is None:
        return None
    return Notice(
        url=url,
        body={
            "event": "cue.failed",
            "alert_id": alert_id,
            "cue_id": execution.cue_id,
            "cue_name": execution.cue_name,
            "execution_id": execution.id,
            "attempts": attempts,
            "last_http_status": http_status,
            "last_error": last_error,
            "failed_at": now.isoformat(),
            "dashboard_url": None,
        },
        secret=await signing_secrets.ensure_alert_secret(tx, user, now),
        headers={"X-CueAPI-Alert-Id": alert_id, "X-CueAPI-Alert-Type": DELIVERY_FAILED},
    )


def failure_streak(runs: list[FinishedRun]) -> int:
    """How many of ``runs`` (newest first) failed before the first one that did not."""
    streak = 0
    for run in runs:
        success = run.outcome_success
        failed = (not success) if success is not None else run.status == Status.FAILED
        if not failed:
            break
        streak += 1
    return streak


async def _raise(
    tx: Any,
    execution: Execution,
    alert_type: str,
    message: str,
    metadata: dict[str, Any],
    now: datetime,
) -> Notice | None:
    """Store one alert unless a recent one makes it a duplicate; returns the notice to send."""
    user_id, cue_id, execution_id = execution.user_id, execution.cue_id, execution.id
    since = now - timedelta(seconds=DEDUPE_SECONDS)
    if await tx.alert_exists(user_id, alert_type, execution_id, cue_id, since):
        return None
    alert_id = str(uuid.uuid4())
    await tx.insert_alert(
        {
            "id": alert_id,
            "user_id": user_id,
            "cue_id": cue_id,
            "execution_id": execution_id,
            "alert_type": alert_type,
            "severity": "warning",
            "message": message,
            "alert_metadata": metadata,
            "acknowledged": False,
            "created_at": now,
        }
    )
    user = await tx.get_user(user_id)
    if user is None or not user.alert_webhook_url:
        return None
    return Notice(
        url=user.alert_webhook_url,
        body={
            "alert_id": alert_id,
            "alert_type": alert_type,
            "severity": "warning",
            "message": message,
            "execution_id": execution_id,
            "cue_id": cue_id,
            "created_at": now.isoformat(),
            "metadata": metadata,
        },
        secret=await signing_secrets.ensure_alert_secret(tx, user, now),
        headers={"X-CueAPI-Alert-Id": alert_id, "X-CueAPI-Alert-Type": alert_type},
    )


async def _raise_alerts(services: Services, execution: Execution, success: bool) -> list[Notice]:
    now = services.clock.now()
    found: list[Notice | None] = []
    async with services.store.tx() as tx:
        if execution.outcome_state == "verification_failed":
            message = (
                f"Execution {execution.id} reported success but failed verification "
                "(required evidence missing)."
            )
            metadata = {"outcome_state": "verification_failed", "transport": execution.transport}
            found.append(await _raise(tx, execution, "verification_failed", message, metadata, now))
        if not success:
            runs = await tx.finished_runs(execution.cue_id, STREAK_LOOKBACK)
            streak = failure_streak(runs)
            if streak >= CONSECUTIVE_FAILURE_THRESHOLD:
                message = f"Cue {execution.cue_id} has {streak} consecutive failed executions."
                found.append(
                    await _raise(
                        tx,
                        execution,
                        "consecutive_failures",
                        message,
                        {"consecutive_failures": streak},
                        now,
                    )
                )
    return [notice for notice in found if notice is not None]


async def after_outcome(services: Services, execution: Execution, success: bool) -> None:
    """Raise the alerts an outcome just recorded on ``execution`` calls for, and start sending
    their webhooks; never raises."""
    if success and execution.outcome_state != "verification_failed":
        return  # the common case costs nothing
    try:
        notices = await _raise_alerts(services, execution, success)
    except Exception:
        log.exception("alerts for the outcome of execution %s failed", execution.id)
        return
    if notices:
        task = asyncio.create_task(alerts.send(services, notices), name="cueflow-outcome-alerts")
        _sending.add(task)
        task.add_done_callback(_sending.discard)
