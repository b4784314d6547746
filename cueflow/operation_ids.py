"""The one table of the REST API's operation ids: ``resource.action`` for every route.

The OpenAPI document names each operation by this table (:func:`operation_id`, the app's
``generate_unique_id_function``) and tags it by the id's resource, so generated clients get
``cues.create`` rather than FastAPI's ``create_cue_v1_cues_post``; :mod:`cueflow.client` names
its methods after the same ids (``client.cues.create(...)``). Routes are keyed as in
:data:`cueflow.scopes.ROUTE_SCOPES` (``"METHOD /path/{param}"``). A route missing here keeps
FastAPI's default id, and ``tests/test_openapi_document.py`` fails until it is declared.
"""

from __future__ import annotations

from typing import Final

OPERATION_IDS: Final[dict[str, str]] = {
    # the worker protocol
    "GET /v1/executions/claimable": "executions.claimable",
    "POST /v1/executions/claims": "executions.claim_batch",
    "POST /v1/executions/claim": "executions.claim_next",
    "POST /v1/executions/{execution_id}/claim": "executions.claim",
    "POST /v1/executions/{execution_id}/heartbeat": "executions.heartbeat",
    "POST /v1/executions/{execution_id}/outcome": "executions.report_outcome",
    "POST /v1/executions/outcomes": "executions.report_outcomes",
    "POST /v1/executions/{execution_id}/release": "executions.release",
    "GET /v1/executions/{execution_id}": "executions.get",
    "POST /v1/worker/heartbeat": "workers.heartbeat",
    "GET /v1/workers": "workers.list",
    "DELETE /v1/workers/{worker_id}": "workers.delete",
    # executions
    "GET /v1/executions": "executions.list",
    "POST /v1/executions/{execution_id}/replay": "executions.replay",
    "POST /v1/executions/{execution_id}/verify": "executions.verify",
    "POST /v1/executions/{execution_id}/verification-pending": "executions.mark_pending",
    "PATCH /v1/executions/{execution_id}/evidence": "executions.update_evidence",
    "GET /v1/stats/overview": "stats.overview",
    "GET /v1/events/stream": "events.stream",
    # cues
    "POST /v1/cues": "cues.create",
    "GET /v1/cues": "cues.list",
    "GET /v1/cues/{cue_id}": "cues.get",
    "PATCH /v1/cues/{cue_id}": "cues.update",
    "DELETE /v1/cues/{cue_id}": "cues.delete",
    "POST /v1/cues/{cue_id}/fire": "cues.fire",
    "POST /v1/cues/{cue_id}/backfill": "cues.backfill",
    # flows and their runs
    "POST /v1/flows": "flows.create",
    "GET /v1/flows": "flows.list",
    "GET /v1/flows/{flow_id}": "flows.get",
    "PATCH /v1/flows/{flow_id}": "flows.update",
    "DELETE /v1/flows/{flow_id}": "flows.delete",
    "POST /v1/flows/{flow_id}/runs": "flows.run",
    "GET /v1/flow-runs": "flow_runs.list",
    "GET /v1/flow-runs/{run_id}": "flow_runs.get",
    "POST /v1/flow-runs/{run_id}/cancel": "flow_runs.cancel",
    "POST /v1/flow-runs/{run_id}/events/{name}": "flow_runs.send_event",
    # the account, its keys and secrets
    "POST /v1/auth/register": "account.register",
    "GET /v1/auth/me": "account.get",
    "PATCH /v1/auth/me": "account.update",
    "GET /v1/auth/key": "account.reveal_key",
    "POST /v1/auth/key/regenerate": "account.regenerate_key",
    "GET /v1/auth/keys": "keys.list",
    "POST /v1/auth/keys": "keys.create",
    "DELETE /v1/auth/keys/{key_id}": "keys.revoke",
    "GET /v1/auth/webhook-secret": "secrets.webhook",
    "POST /v1/auth/webhook-secret/regenerate": "secrets.regenerate_webhook",
    "GET /v1/auth/alert-webhook-secret": "secrets.alert_webhook",
    "POST /v1/auth/alert-webhook-secret/regenerate": "secrets.regenerate_alert_webhook",
    # the rest
    "GET /v1/alerts": "alerts.list",
    "GET /v1/usage": "usage.get",
    "POST /v1/echo/{token}": "echo.store",
    "GET /v1/echo/{token}": "echo.read",
    "GET /v1/info": "server.info",
    "GET /health": "server.health",
    "GET /status": "server.status",
    "GET /metrics": "server.metrics",
}
"""Each route's operation id, ``resource.action``."""


def operation_id(method: str, path: str) -> str | None:
    """The id of the route ``method path`` (``None`` for a route missing from the table)."""
    return OPERATION_IDS.get(f"{method} {path}")


def resource_of(operation: str) -> str:
    """The resource part of an operation id (``cues`` for ``cues.create``): its tag."""
    return operation.partition(".")[0]
