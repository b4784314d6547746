"""Helpers shared by the REST API tests (``tests/test_api_*.py``): contract constants, error
assertions and one thin wrapper per request. What builds state (a cue, a due or claimed
execution...) is in :mod:`tests.factories`.

Times are those of the ``clock`` fixture: a :class:`cueflow.clock.FakeClock` that starts on
Monday 2026-01-05 at 12:00:00 UTC and moves only when a test advances it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import httpx

START = "2026-01-05T12:00:00Z"
"""The fake clock's starting time as response-model datetimes render it."""

NO_WORKER_WARNING = "No active workers found. Start a cueapi-worker to process this cue."
EVERY_5_MIN = "*/5 * * * *"

LEASE = 900
"""The lease a claim gets, in seconds (the default ``worker_claim_timeout_seconds``)."""
NOT_AVAILABLE = "Execution not available for claiming"
NONE_AVAILABLE = "No executions available for claiming"

Z_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
OFFSET_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?\+00:00$")

EXECUTION_CONTRACT_KEYS = {
    "id",
    "cue_id",
    "scheduled_for",
    "status",
    "http_status",
    "attempts",
    "error_message",
    "started_at",
    "delivered_at",
    "last_attempt_at",
    "outcome",
    "created_at",
    "updated_at",
}
"""The 13 keys of the contract's Execution object (§2.3.2)."""
EXECUTION_ADDITIVE_KEYS = {
    "claimed_by_worker",
    "triggered_by",
    "outcome_state",
    "claimed_at",
    "last_heartbeat_at",
    "next_retry",
    "evidence",
    "priority",
    "waiting_for",
}
"""cueflow's additive Execution keys."""

CUE_KEYS = {
    "id",
    "name",
    "description",
    "status",
    "transport",
    "schedule",
    "callback",
    "payload",
    "retry",
    "next_run",
    "last_run",
    "run_count",
    "fired_count",
    "on_failure",
    "verification",
    "warning",
    "created_at",
    "updated_at",
}
"""Every key of the contract's Cue object (§2.2.2)."""


UNKNOWN_ID = "5f0c1c6e-7d1a-4b8e-9c3a-2f6d8e1b4a70"
"""A well-formed execution id no test creates (fixed, so parallel test processes collect the
same test ids)."""


def zulu(when: datetime) -> str:
    """``when`` (aware UTC, whole seconds) as response-model datetimes render it."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    """Check the contract's error envelope; returns the inner ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert error["status"] == status, error
    assert isinstance(error["message"], str), error
    if message is not None:
        assert error["message"] == message, error
    return error


def assert_validation_error(response: httpx.Response, field: str) -> dict[str, Any]:
    """Check a 422 ``validation_error`` whose first failing location is ``field``."""
    error = assert_error(response, 422, "validation_error")
    assert error["message"].startswith(f"{field}: "), error
    assert error["details"], error
    assert error["details"][0]["field"] == field, error
    assert all(set(d) == {"field", "message"} for d in error["details"]), error
    return error


def cue_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/cues`` body for a worker cue firing every five minutes."""
    body: dict[str, Any] = {
        "name": f"cue-{uuid.uuid4().hex[:8]}",
        "schedule": {"type": "recurring", "cron": EVERY_5_MIN},
        "transport": "worker",
        "payload": {"task": "report"},
    }
    body.update(overrides)
    return body


async def create_cue(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> httpx.Response:
    """``POST /v1/cues`` with :func:`cue_body` and ``overrides``."""
    return await client.post("/v1/cues", json=cue_body(**overrides), headers=auth)


async def executions_of(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str
) -> list[dict[str, Any]]:
    """Every execution of one cue, newest first."""
    response = await client.get(
        "/v1/executions", params={"cue_id": cue_id, "limit": 100}, headers=auth
    )
    assert response.status_code == 200, response.text
    return response.json()["executions"]


async def get_execution(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
) -> dict[str, Any]:
    """``GET /v1/executions/{id}`` (must succeed)."""
    response = await client.get(f"/v1/executions/{execution_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def get_cue(client: httpx.AsyncClient, auth: dict[str, str], cue_id: str) -> dict[str, Any]:
    """``GET /v1/cues/{id}`` (must succeed)."""
    response = await client.get(f"/v1/cues/{cue_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def list_cues(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> httpx.Response:
    """``GET /v1/cues``."""
    return await client.get("/v1/cues", params=params, headers=auth)


async def patch_cue(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, body: Any
) -> httpx.Response:
    """``PATCH /v1/cues/{id}``."""
    return await client.patch(f"/v1/cues/{cue_id}", json=body, headers=auth)


async def patched_cue(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, body: Any
) -> dict[str, Any]:
    """``PATCH /v1/cues/{id}`` that must succeed; returns the cue."""
    response = await patch_cue(client, auth, cue_id, body)
    assert response.status_code == 200, response.text
    return response.json()


async def claimable(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """``GET /v1/executions/claimable`` that must succeed; returns the items."""
    response = await client.get("/v1/executions/claimable", params=params, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"executions"}
    return body["executions"]


async def claim(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, worker_id: str = "w1"
) -> httpx.Response:
    """``POST /v1/executions/{id}/claim`` for ``worker_id``."""
    return await client.post(
        f"/v1/executions/{execution_id}/claim", json={"worker_id": worker_id}, headers=auth
    )


async def claim_next(
    client: httpx.AsyncClient, auth: dict[str, str], worker_id: str = "w1"
) -> httpx.Response:
    """``POST /v1/executions/claim``: the oldest due execution for ``worker_id``."""
    return await client.post("/v1/executions/claim", json={"worker_id": worker_id}, headers=auth)


async def report(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    execution_id: str,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    """``POST /v1/executions/{id}/outcome`` with ``body``."""
    return await client.post(
        f"/v1/executions/{execution_id}/outcome", json=body, headers={**auth, **(headers or {})}
    )


async def worker_heartbeat(
    client: httpx.AsyncClient, auth: dict[str, str], worker_id: str = "w1", **body: Any
) -> httpx.Response:
    """``POST /v1/worker/heartbeat``."""
    return await client.post(
        "/v1/worker/heartbeat", json={"worker_id": worker_id, **body}, headers=auth
    )
