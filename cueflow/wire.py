"""Records to the contract's wire dicts (cue, execution, claimable and claimed items).

Free of HTTP, so both the REST layer (:mod:`cueflow.api.render` serialises these with orjson)
and the agents' in-process client (:mod:`cueflow.agents.engine_client`) shape their answers
here, the same way.
"""

from __future__ import annotations

from typing import Any

from cueflow.cues import DEFAULT_ON_FAILURE
from cueflow.store import Row


def cue_json(row: Row, warning: str | None = None) -> dict[str, Any]:
    """The contract's Cue object (plus ``misfire_policy``, ``timeout_seconds``, for interval
    schedules ``schedule.interval_seconds`` and, when it was sent, ``schedule.fall_back``)."""
    sched: dict[str, Any] = {"type": row["schedule_type"], "timezone": row["schedule_timezone"]}
    if row["schedule_cron"]:
        sched["cron"] = row["schedule_cron"]
    if row["schedule_at"] is not None:
        sched["at"] = row["schedule_at"].isoformat()
    if row["schedule_interval_seconds"] is not None:
        sched["interval_seconds"] = row["schedule_interval_seconds"]
    if row.get("schedule_fall_back") is not None:
        sched["fall_back"] = row["schedule_fall_back"]
    mode = row["verification_mode"]
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "status": row["status"],
        "transport": row["transport"],
        "schedule": sched,
        "callback": {
            "url": row["callback_url"],
            "method": row["callback_method"],
            "headers": row["callback_headers"] or {},
        },
        "payload": row["payload"] or {},
        "retry": {
            "max_attempts": row["retry_max_attempts"],
            "backoff_minutes": row["retry_backoff_minutes"],
        },
        "next_run": row["next_run"],
        "last_run": row["last_run"],
        "run_count": row["run_count"],
        "fired_count": row["fired_count"],
        "on_failure": row["on_failure"] or dict(DEFAULT_ON_FAILURE),
        "verification": {"mode": mode} if mode else None,
        "misfire_policy": row["misfire_policy"],
        "timeout_seconds": row["timeout_seconds"],
        "warning": warning,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def execution_json(row: Row) -> dict[str, Any]:
    """The contract's 13-key Execution object, plus ``claimed_by_worker``, ``triggered_by``,
    ``outcome_state``, ``claimed_at``, ``last_heartbeat_at``, ``next_retry`` and ``evidence``
    (additive: clients ignore unknown keys; the CLI and the dashboard show them); a flow step's
    execution also shows ``flow_run_id`` and ``step_id``, and its outcome its ``output``."""
    outcome = None
    if row["outcome_recorded_at"] is not None:
        outcome = {
            "success": row["outcome_success"],
            "result": row["outcome_result"],
            "error": row["outcome_error"],
            "metadata": row["outcome_metadata"],
            "recorded_at": row["outcome_recorded_at"],
        }
    shown = {
        "id": row["id"],
        "cue_id": row["cue_id"],
        "scheduled_for": row["scheduled_for"],
        "status": row["status"],
        "http_status": row["http_status"],
        "attempts": row["attempts"],
        "error_message": row["error_message"],
        "started_at": row["started_at"],
        "delivered_at": row["delivered_at"],
        "last_attempt_at": row["last_attempt_at"],
        "outcome": outcome,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "claimed_by_worker": row["claimed_by_worker"],
        "triggered_by": row["triggered_by"],
        "outcome_state": row["outcome_state"],
        "claimed_at": row["claimed_at"],
        "last_heartbeat_at": row["last_heartbeat_at"],
        "next_retry": row["next_retry"],
        "evidence": row["evidence"],
    }
    if row.get("flow_run_id") is not None:  # a flow step's execution (additive keys)
        shown.update(flow_run_id=row["flow_run_id"], step_id=row["step_id"])
    if outcome is not None and row.get("outcome_output") is not None:
        outcome["output"] = row["outcome_output"]
    return shown


def payload_of(row: Row) -> dict[str, Any]:
    """The payload a run carries: its fire's ``payload_override``, else its cue's."""
    override = row.get("payload_override")
    return dict(override) if override is not None else dict(row.get("payload") or {})


def claimable_json(row: Row) -> dict[str, Any]:
    """One item of ``GET /v1/executions/claimable``."""
    return {
        "execution_id": row["id"],
        "cue_id": row["cue_id"],
        "cue_name": row["cue_name"],
        "task": row["task"],
        "scheduled_for": row["scheduled_for"],
        "payload": payload_of(row),
        "attempt": row["attempts"],
    }


def claimed_json(row: Row, lease_expires_at: Any) -> dict[str, Any]:
    """One item of a batch claim (cueflow extension): a claimable item plus its lease end."""
    return {**claimable_json(row), "lease_expires_at": lease_expires_at}
