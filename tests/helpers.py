"""Helpers shared by the REST API tests (``tests/test_api_*.py``).

Times are those of the ``clock`` fixture: a :class:`cueflow.clock.FakeClock` that starts on
Monday 2026-01-05 at 12:00:00 UTC and moves only when a test advances it.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine

START = "2026-01-05T12:00:00Z"
"""The fake clock's starting time as response-model datetimes render it."""

NO_WORKER_WARNING = "No active workers found. Start a cueapi-worker to process this cue."
EVERY_5_MIN = "*/5 * * * *"

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
}
"""cueflow's additive Execution keys."""


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


async def make_worker_cue(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """Create a worker cue (every five minutes unless overridden); returns the response body."""
    response = await create_cue(client, auth, **overrides)
    assert response.status_code == 201, response.text
    return response.json()


async def make_once_cue(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    clock: FakeClock,
    in_seconds: int = 60,
    **overrides: Any,
) -> dict[str, Any]:
    """Create a one-time worker cue due ``in_seconds`` from the fake now."""
    at = (clock.now() + timedelta(seconds=in_seconds)).isoformat()
    return await make_worker_cue(client, auth, schedule={"type": "once", "at": at}, **overrides)


async def fire(engine: Engine, clock: FakeClock, seconds: float) -> int:
    """Advance the fake clock by ``seconds`` and fire whatever is due."""
    clock.advance(seconds)
    return await engine.fire_due()


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


async def due_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """Create a worker cue firing every five minutes, let it fire once (at 12:05 on a fresh
    clock) and return its pending execution."""
    cue = await make_worker_cue(client, auth, **overrides)
    clock.set(datetime.fromisoformat(cue["next_run"].replace("Z", "+00:00")))
    assert await engine.fire_due() >= 1
    [execution] = await executions_of(client, auth, cue["id"])
    assert execution["status"] == "pending"
    return execution


async def claim(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, worker_id: str = "w1"
) -> httpx.Response:
    """``POST /v1/executions/{id}/claim`` for ``worker_id``."""
    return await client.post(
        f"/v1/executions/{execution_id}/claim", json={"worker_id": worker_id}, headers=auth
    )


async def claimed_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    worker_id: str = "w1",
    **overrides: Any,
) -> dict[str, Any]:
    """A due execution claimed by ``worker_id``; returns the execution as it was before."""
    execution = await due_execution(client, engine, clock, auth, **overrides)
    response = await claim(client, auth, execution["id"], worker_id)
    assert response.status_code == 200, response.text
    return execution


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
