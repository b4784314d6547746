"""Records to the contract's wire dicts (cue, execution, claimable and claimed items, manual
runs, alerts).

Free of HTTP, so both the REST layer (:mod:`cueflow.api.render` serialises these with orjson)
and the agents' in-process client (:mod:`cueflow.agents.engine_client`) shape their answers
here, the same way.
"""

from __future__ import annotations

from typing import Any

from cueflow.claims import CLAIMED
from cueflow.cues import DEFAULT_ON_FAILURE
from cueflow.records import AccountSummary, Alert, Cue, Execution, QueuedRun, WorkerStatus
from cueflow.run_controls import concurrency_json, rate_limit_json


def schedule_json(cue: Cue) -> dict[str, Any]:
    """A cue's ``schedule`` object (``interval_seconds`` for interval schedules, ``fall_back``
    when it was sent); a scheduled flow shows its schedule the same way."""
    sched: dict[str, Any] = {"type": cue.schedule_type, "timezone": cue.schedule_timezone}
    if cue.schedule_cron:
        sched["cron"] = cue.schedule_cron
    if cue.schedule_at is not None:
        sched["at"] = cue.schedule_at.isoformat()
    if cue.schedule_interval_seconds is not None:
        sched["interval_seconds"] = cue.schedule_interval_seconds
    if cue.schedule_fall_back is not None:
        sched["fall_back"] = cue.schedule_fall_back
    return sched


def cue_json(cue: Cue, warning: str | None = None) -> dict[str, Any]:
    """The contract's Cue object (plus ``misfire_policy``, ``timeout_seconds``, the run
    controls of :mod:`cueflow.run_controls`, for interval schedules
    ``schedule.interval_seconds`` and, when it was sent, ``schedule.fall_back``)."""
    sched = schedule_json(cue)
    mode = cue.verification_mode
    return {
        "id": cue.id,
        "name": cue.name,
        "description": cue.description,
        "status": cue.status,
        "transport": cue.transport,
        "schedule": sched,
        "callback": {
            "url": cue.callback_url,
            "method": cue.callback_method,
            "headers": cue.callback_headers or {},
        },
        "payload": cue.payload or {},
        "retry": {
            "max_attempts": cue.retry_max_attempts,
            "backoff_minutes": cue.retry_backoff_minutes,
        },
        "next_run": cue.next_run,
        "last_run": cue.last_run,
        "run_count": cue.run_count,
        "fired_count": cue.fired_count,
        "on_failure": cue.on_failure or dict(DEFAULT_ON_FAILURE),
        "verification": {"mode": mode} if mode else None,
        "misfire_policy": cue.misfire_policy,
        "timeout_seconds": cue.timeout_seconds,
        "overlap_policy": cue.overlap_policy,
        "priority": cue.priority,
        "concurrency": concurrency_json(cue),
        "rate_limit": rate_limit_json(cue),
        "required_payload_keys": cue.required_payload_keys or [],
        "warning": warning,
        "created_at": cue.created_at,
        "updated_at": cue.updated_at,
    }


def execution_json(execution: Execution) -> dict[str, Any]:
    """The contract's 13-key Execution object, plus ``claimed_by_worker``, ``triggered_by``,
    ``outcome_state``, ``claimed_at``, ``last_heartbeat_at``, ``next_retry`` and ``evidence``
    (additive: clients ignore unknown keys; the CLI and the dashboard show them); a flow step's
    execution also shows ``flow_run_id`` and ``step_id``, and its outcome its ``output``."""
    outcome = None
    if execution.outcome_recorded_at is not None:
        outcome = {
            "success": execution.outcome_success,
            "result": execution.outcome_result,
            "error": execution.outcome_error,
            "metadata": execution.outcome_metadata,
            "recorded_at": execution.outcome_recorded_at,
        }
    shown: dict[str, Any] = {
        "id": execution.id,
        "cue_id": execution.cue_id,
        "scheduled_for": execution.scheduled_for,
        "status": execution.status,
        "http_status": execution.http_status,
        "attempts": execution.attempts,
        "error_message": execution.error_message,
        "started_at": execution.started_at,
        "delivered_at": execution.delivered_at,
        "last_attempt_at": execution.last_attempt_at,
        "outcome": outcome,
        "created_at": execution.created_at,
        "updated_at": execution.updated_at,
        "claimed_by_worker": execution.claimed_by_worker,
        "triggered_by": execution.triggered_by,
        "outcome_state": execution.outcome_state,
        "claimed_at": execution.claimed_at,
        "last_heartbeat_at": execution.last_heartbeat_at,
        "next_retry": execution.next_retry,
        "evidence": execution.evidence,
        "priority": execution.priority,
        "waiting_for": execution.waiting_for,
    }
    if execution.flow_run_id is not None:  # a flow step's execution (additive keys)
        shown.update(flow_run_id=execution.flow_run_id, step_id=execution.step_id)
    if outcome is not None and execution.outcome_output is not None:
        outcome["output"] = execution.outcome_output
    return shown


def payload_of(run: QueuedRun) -> dict[str, Any]:
    """The payload a run carries: its fire's ``payload_override``, else its cue's."""
    override = run.payload_override
    return dict(override) if override is not None else dict(run.payload or {})


def claimable_json(run: QueuedRun) -> dict[str, Any]:
    """One item of ``GET /v1/executions/claimable``."""
    return {
        "execution_id": run.id,
        "cue_id": run.cue_id,
        "cue_name": run.cue_name,
        "task": run.task,
        "scheduled_for": run.scheduled_for,
        "payload": payload_of(run),
        "attempt": run.attempts,
    }


def claimed_json(run: QueuedRun, lease_expires_at: Any, claimed_at: Any) -> dict[str, Any]:
    """One item of a batch claim (cueflow extension): a claimable item plus its lease end and
    the ``id``/``status``/``claimed_at`` of a single claim's answer (the shape CueAPI's Workers
    document shows), so an item reads like a claim answer too."""
    return {
        **claimable_json(run),
        "lease_expires_at": lease_expires_at,
        "id": run.id,
        "status": CLAIMED,
        "claimed_at": claimed_at,
    }


def run_json(run: Execution, **extra: Any) -> dict[str, Any]:
    """A manual run as fire and replay answer it (``scheduled_for`` with ``+00:00``)."""
    return {
        "id": run.id,
        "cue_id": run.cue_id,
        "scheduled_for": run.scheduled_for.isoformat(),
        "status": run.status,
        "triggered_by": run.triggered_by,
        **extra,
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    """The contract's alert object."""
    return {
        "id": alert.id,
        "cue_id": alert.cue_id,
        "execution_id": alert.execution_id,
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "message": alert.message,
        "metadata": alert.alert_metadata or {},
        "acknowledged": alert.acknowledged,
        "created_at": alert.created_at,
    }


def worker_json(worker: WorkerStatus) -> dict[str, Any]:
    """A worker as ``GET /v1/workers`` lists it."""
    return {
        "worker_id": worker.worker_id,
        "last_heartbeat": worker.last_heartbeat,
        "seconds_since_heartbeat": worker.seconds_since_heartbeat,
        "heartbeat_status": worker.heartbeat_status,
        "handlers": worker.handlers,
        "registered_since": worker.registered_since,
    }


def account_json(account: AccountSummary) -> dict[str, Any]:
    """The body of ``GET /v1/auth/me``."""
    return {
        "email": account.email,
        "plan": account.plan,
        "active_cues": account.active_cues,
        "active_cue_limit": account.active_cue_limit,
        "executions_this_month": account.executions_this_month,
        "monthly_execution_limit": account.monthly_execution_limit,
        "rate_limit_per_minute": account.rate_limit_per_minute,
        "has_webhook_secret": account.has_webhook_secret,
        "api_key_prefix": account.api_key_prefix,
        "slug": account.slug,
    }
