"""One example of every request body and answer of the REST API, by schema name, for the
OpenAPI document (what generated clients and the docs show next to each operation).

The models take their example with ``json_schema_extra=with_example`` (the request and answer
bases carry it, so a subclass only needs its entry here); ``tests/test_openapi_document.py``
checks that every operation shows one and that each example fits its schema.
"""

from __future__ import annotations

from typing import Any, Final

_CUE = "cue_a1b2c3d4e5f6"
_EXEC = "exec_0f1e2d3c4b5a"
_FLOW = "flow_9a8b7c6d5e4f"
_RUN = "frun_1a2b3c4d5e6f"
_WHEN = "2026-03-02T09:00:00Z"
_LATER = "2026-03-02T09:00:04.120Z"
_KEY = "cue_sk_1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d"
_SECRET = "whsec_7f3a9c1e5b2d8f4a6c0e9b3d7f1a5c2e"

_SCHEDULE = {"type": "recurring", "timezone": "UTC", "cron": "0 9 * * 1-5"}
_CALLBACK: dict[str, Any] = {"url": None, "method": "POST", "headers": {}}
_CUE_ANSWER: dict[str, Any] = {
    "id": _CUE,
    "name": "morning-report",
    "description": "Weekday report at 09:00 UTC",
    "status": "active",
    "transport": "worker",
    "schedule": _SCHEDULE,
    "callback": _CALLBACK,
    "payload": {"task": "report", "team": "ops"},
    "retry": {"max_attempts": 3, "backoff_minutes": [1, 5, 15]},
    "next_run": "2026-03-03T09:00:00Z",
    "last_run": _WHEN,
    "run_count": 12,
    "fired_count": 12,
    "on_failure": {"email": False, "webhook": None, "pause": False},
    "verification": None,
    "warning": None,
    "created_at": "2026-02-13T08:30:00Z",
    "updated_at": "2026-02-13T08:30:00Z",
    "overlap_policy": "allow",
    "priority": 0,
    "concurrency": None,
    "rate_limit": None,
    "required_payload_keys": [],
}
_OUTCOME = {
    "success": True,
    "result": "report sent to 14 people",
    "error": None,
    "metadata": {"duration_ms": 812},
    "recorded_at": _LATER,
}
_EXECUTION: dict[str, Any] = {
    "id": _EXEC,
    "cue_id": _CUE,
    "scheduled_for": _WHEN,
    "status": "success",
    "http_status": None,
    "attempts": 1,
    "error_message": None,
    "started_at": "2026-03-02T09:00:00.350Z",
    "delivered_at": _LATER,
    "last_attempt_at": "2026-03-02T09:00:00.350Z",
    "outcome": _OUTCOME,
    "created_at": _WHEN,
    "updated_at": _LATER,
}
_CLAIMABLE = {
    "execution_id": _EXEC,
    "cue_id": _CUE,
    "cue_name": "morning-report",
    "task": "report",
    "scheduled_for": _WHEN,
    "payload": {"task": "report", "team": "ops"},
    "attempt": 1,
}
_FLOW_ANSWER: dict[str, Any] = {
    "id": _FLOW,
    "name": "publish-article",
    "description": "Draft, review, publish",
    "input_schema": {"type": "object", "required": ["topic"]},
    "schedule": None,
    "misfire_policy": None,
    "schedule_input": None,
    "schedule_status": None,
    "next_run": None,
    "steps": [
        {"id": "draft", "needs": [], "type": "task", "payload": {"task": "draft"}},
        {"id": "publish", "needs": ["draft"], "type": "task", "payload": {"task": "publish"}},
    ],
    "created_at": "2026-02-13T08:30:00Z",
    "updated_at": "2026-02-13T08:30:00Z",
}
_FLOW_RUN: dict[str, Any] = {
    "id": _RUN,
    "flow_id": _FLOW,
    "status": "running",
    "input": {"topic": "release notes"},
    "idempotency_key": None,
    "trigger": "api",
    "scheduled_for": None,
    "created_at": _WHEN,
    "updated_at": _LATER,
    "finished_at": None,
    "steps": {
        "draft": {
            "status": "succeeded",
            "attempts": 1,
            "execution_ids": [_EXEC],
            "output": {"words": 640},
            "error": None,
            "started_at": _WHEN,
            "finished_at": _LATER,
        }
    },
}
_DELAYS = {"series": {"p50": [0.4, None], "p95": [1.2, None]}, "overall": {"p50": 0.4}, "count": 9}

EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    # requests
    "RegisterRequest": {"email": "ops@example.com"},
    "AccountUpdate": {"alert_webhook_url": "https://hooks.example.com/cueflow-alerts"},
    "ApiKeyCreate": {"scope": "worker", "name": "report workers"},
    "WebhookSecretRotation": {"overlap_seconds": 3600},
    "CueCreate": {
        "name": "morning-report",
        "description": "Weekday report at 09:00 UTC",
        "schedule": {"type": "recurring", "cron": "0 9 * * 1-5", "timezone": "UTC"},
        "transport": "worker",
        "payload": {"task": "report", "team": "ops"},
        "retry": {"max_attempts": 3, "backoff_minutes": [1, 5, 15]},
    },
    "CueUpdate": {
        "description": "Weekday report, now at 08:00",
        "schedule": {"type": "recurring", "cron": "0 8 * * 1-5", "timezone": "UTC"},
    },
    "FireRequest": {"payload_override": {"team": "sales"}, "merge_strategy": "merge"},
    "BackfillRequest": {
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-03T00:00:00Z",
        "overlap_policy": "skip",
    },
    "ClaimRequest": {"worker_id": "worker-eu-1"},
    "ReleaseRequest": {"worker_id": "worker-eu-1", "reason": "shutting down"},
    "BatchClaimRequest": {"worker_id": "worker-eu-1", "limit": 10, "task": "report"},
    "OutcomeReport": {
        "success": True,
        "result": "report sent to 14 people",
        "metadata": {"duration_ms": 812},
    },
    "BatchOutcomeRequest": {
        "worker_id": "worker-eu-1",
        "outcomes": [{"execution_id": _EXEC, "success": True, "result": "sent"}],
    },
    "WorkerHeartbeat": {"worker_id": "worker-eu-1", "handlers": ["report", "cleanup"]},
    "VerifyRequest": {"valid": True, "reason": "report archived"},
    "Evidence": {"external_id": "msg_8812", "result_url": "https://reports.example.com/8812"},
    "FlowCreate": {
        "name": "publish-article",
        "description": "Draft, review, publish",
        "steps": [
            {"id": "draft", "payload": {"task": "draft"}},
            {"id": "publish", "needs": ["draft"], "payload": {"task": "publish"}},
        ],
    },
    "FlowUpdate": {"description": "Draft, then publish"},
    "RunCreate": {"input": {"topic": "release notes"}, "idempotency_key": "notes-2026-03"},
    "EventIn": {"data": {"approved": True, "by": "editor@example.com"}},
    # answers
    "Registered": {"api_key": _KEY, "email": "ops@example.com"},
    "Account": {
        "email": "ops@example.com",
        "plan": "free",
        "active_cues": 3,
        "active_cue_limit": 10,
        "executions_this_month": 212,
        "monthly_execution_limit": 300,
        "rate_limit_per_minute": 60,
        "has_webhook_secret": True,
        "api_key_prefix": "cue_sk_1a2b",
        "slug": "ops-example-com",
    },
    "AccountUpdated": {"updated_at": _WHEN},
    "KeyReveal": {"api_key": _KEY, "prefix": "cue_sk_1a2b", "message": None},
    "KeyRegenerated": {"api_key": _KEY, "previous_key_revoked": True},
    "ApiKeyCreated": {
        "id": "key_5e6f7a8b9c0d",
        "name": "report workers",
        "scope": "worker",
        "prefix": "cue_sk_9f8e",
        "created_at": _WHEN,
        "last_used_at": None,
        "api_key": "cue_sk_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    },
    "ApiKeys": {
        "account_key": {"prefix": "cue_sk_1a2b", "scope": "full"},
        "keys": [
            {
                "id": "key_5e6f7a8b9c0d",
                "name": "report workers",
                "scope": "worker",
                "prefix": "cue_sk_9f8e",
                "created_at": _WHEN,
                "last_used_at": _LATER,
            }
        ],
    },
    "WebhookSecret": {"webhook_secret": _SECRET, "previous_secret_revoked": None},
    "AlertWebhookSecret": {"alert_webhook_secret": _SECRET, "previous_secret_revoked": None},
    "Cue": _CUE_ANSWER,
    "CueDetail": {
        **_CUE_ANSWER,
        "executions": [_EXECUTION],
        "execution_total": 1,
        "execution_limit": 10,
        "execution_offset": 0,
    },
    "CueList": {"cues": [_CUE_ANSWER], "total": 1, "limit": 50, "offset": 0},
    "Run": {
        "id": _EXEC,
        "cue_id": _CUE,
        "scheduled_for": _WHEN,
        "status": "pending",
        "triggered_by": "manual_fire",
    },
    "BackfillResult": {
        "cue_id": _CUE,
        "created": 2,
        "skipped_existing": 0,
        "executions": [
            {"id": _EXEC, "scheduled_for": "2026-03-02T09:00:00Z", "status": "pending"},
        ],
        "skipped_times": ["2026-03-01T09:00:00Z"],
    },
    "Execution": _EXECUTION,
    "ExecutionList": {
        "executions": [_EXECUTION],
        "total": 1,
        "limit": 20,
        "offset": 0,
        "has_more": False,
        "oldest_claimed_at": None,
    },
    "Claimable": {"executions": [_CLAIMABLE]},
    "Claimed": {
        "claimed": True,
        "execution_id": _EXEC,
        "lease_seconds": 900,
        "id": _EXEC,
        "status": "claimed",
        "claimed_at": "2026-03-02T09:00:00Z",
    },
    "BatchClaimed": {
        "claimed": [
            {
                **_CLAIMABLE,
                "lease_expires_at": "2026-03-02T09:15:00Z",
                "id": _EXEC,
                "status": "claimed",
                "claimed_at": "2026-03-02T09:00:00Z",
            }
        ],
        "lease_seconds": 900,
        "failed": [],
    },
    "LeaseExtended": {
        "execution_id": _EXEC,
        "lease_extended_until": "2026-03-02T09:15:30Z",
        "acknowledged": True,
    },
    "OutcomeRecorded": {
        "execution_id": _EXEC,
        "outcome_recorded": True,
        "outcome_state": None,
        "reason": None,
    },
    "BatchOutcomes": {"results": [{"execution_id": _EXEC, "status": 200, "error": None}]},
    "Released": {
        "execution_id": _EXEC,
        "released": True,
        "status": "pending",
        "attempts": 1,
        "next_attempt_at": None,
    },
    "VerificationState": {"execution_id": _EXEC, "outcome_state": "verified_success"},
    "WorkerAcknowledged": {"acknowledged": True, "server_time": _WHEN},
    "Workers": {
        "workers": [
            {
                "worker_id": "worker-eu-1",
                "last_heartbeat": _WHEN,
                "seconds_since_heartbeat": 4.2,
                "heartbeat_status": "healthy",
                "handlers": ["report", "cleanup"],
                "registered_since": "2026-02-13T08:30:00Z",
            }
        ]
    },
    "Alerts": {
        "alerts": [
            {
                "id": "alert_2b3c4d5e6f7a",
                "cue_id": _CUE,
                "execution_id": _EXEC,
                "alert_type": "consecutive_failures",
                "severity": "warning",
                "message": "morning-report failed 3 times in a row",
                "metadata": {"failures": 3},
                "acknowledged": False,
                "created_at": _WHEN,
            }
        ],
        "total": 1,
        "limit": 20,
        "offset": 0,
    },
    "Usage": {
        "plan": "free",
        "cues": {"active": 3, "limit": 10},
        "executions": {"used": 212, "limit": 300},
        "rate_limit": {"limit": 60, "window": "minute"},
    },
    "StatsOverview": {
        "window": "1h",
        "since": "2026-03-02T08:00:00Z",
        "until": _WHEN,
        "now": _WHEN,
        "bucket_seconds": 1800,
        "buckets": ["2026-03-02T08:00:00Z", "2026-03-02T08:30:00Z"],
        "executions": {"success": [4, 2], "failed": [0, 1]},
        "lag": _DELAYS,
        "latency": _DELAYS,
        "queue": {
            "by_status": {"pending": 2, "delivering": 1},
            "total": 3,
            "oldest_scheduled_for": "2026-03-02T08:58:00Z",
            "waiting": [1, 3],
        },
    },
    "Info": {"version": "0.1.0", "authentication_paths": {"/v1/cues": True, "/health": False}},
    "Health": {
        "status": "healthy",
        "version": "0.1.0",
        "timestamp": _WHEN,
        "services": {"database": "ok", "scheduler": "ok"},
    },
    "Status": {"status": "ok"},
    "EchoStored": {"stored": True},
    "EchoRead": {"status": "delivered"},
    "Flow": _FLOW_ANSWER,
    "FlowList": {"flows": [_FLOW_ANSWER], "total": 1, "limit": 50, "offset": 0},
    "FlowRun": _FLOW_RUN,
    "FlowRunList": {"runs": [_FLOW_RUN], "total": 1, "limit": 50, "offset": 0},
    "FlowEvent": {"run_id": _RUN, "status": "running", "event": "approved", "resumed": ["publish"]},
}
"""One example of each schema, by the schema's (the model class's) name."""


def with_example(schema: dict[str, Any], model: type[Any]) -> None:
    """``json_schema_extra`` hook: add ``model``'s example from :data:`EXAMPLES`, if it has
    one, to its JSON schema."""
    example = EXAMPLES.get(model.__name__)
    if example is not None:
        schema["examples"] = [example]


def fill_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Put each component schema's example into an OpenAPI ``document`` as written here.

    FastAPI drops every ``null`` while it builds the document (``exclude_none``), examples
    included, which leaves keys a server always sends (``"error": null``) out of them; the
    standalone server's document passes through here after it is built."""
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        if name in EXAMPLES:
            schema["examples"] = [EXAMPLES[name]]
    return document
