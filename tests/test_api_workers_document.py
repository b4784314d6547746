"""CueAPI's Workers document, step by step, against cueflow.

The document: https://github.com/cueapi/cueapi-core/blob/main/docs/workers.md (the worker
walk-through new users read first). Each test sends one of its requests the way its ``curl``
line does (same method, path, headers and JSON text) and asserts what the document shows in
answer, or says happens next. Where cueflow deliberately answers otherwise the test pins
cueflow's answer and names the difference (``docs/compatibility.md``):

* a claimable item's ``attempt`` counts the claims made before (0 for a fresh execution, as
  CueAPI's code does), where the document's example shows 1;
* ids are UUIDs, not ``exec_abc123``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.config import Settings
from cueflow.engine import Engine
from tests.helpers import Z_DATETIME, assert_error, get_execution

JSON = {"Content-Type": "application/json"}
NINE_AM = datetime.fromisoformat("2026-01-06T09:00:00+00:00")
"""The first 09:00 UTC after the fake clock's start (2026-01-05 12:00)."""

CREATE_BODY = """{
    "name": "process-reports",
    "schedule": {"type": "recurring", "cron": "0 9 * * *", "timezone": "UTC"},
    "transport": "worker",
    "payload": {"report_type": "daily"}
  }"""
"""The cue the document creates, as its ``curl -d`` sends it."""


async def create_the_documents_cue(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> dict[str, Any]:
    """``POST /v1/cues`` with the document's body: a worker cue needs no ``url``."""
    response = await client.post("/v1/cues", content=CREATE_BODY, headers={**JSON, **auth})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def poll(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    """Step 1, ``curl http://localhost:8000/v1/executions/claimable`` with the key."""
    response = await client.get("/v1/executions/claimable", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def claim(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, worker: str
) -> httpx.Response:
    """Step 2, ``curl -X POST .../claim -d '{"worker_id": ...}'``."""
    return await client.post(
        f"/v1/executions/{execution_id}/claim",
        content=json.dumps({"worker_id": worker}),
        headers={**auth, **JSON},
    )


async def report(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, body: str
) -> httpx.Response:
    """Step 4, ``curl -X POST .../outcome -d '...'``."""
    return await client.post(
        f"/v1/executions/{execution_id}/outcome", content=body, headers={**JSON, **auth}
    )


@pytest.fixture
async def due(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> dict[str, Any]:
    """The document's cue, fired at its first 09:00: its one claimable item."""
    assert auth["Authorization"].startswith("Bearer cue_sk_")
    cue = await create_the_documents_cue(client, auth)
    assert cue["next_run"] == "2026-01-06T09:00:00Z"
    clock.set(NINE_AM)
    assert await engine.fire_due() == 1
    [item] = (await poll(client, auth))["executions"]
    return dict(item)


# Creating a worker-transport cue ---------------------------------------------------------------
async def test_a_worker_cue_is_created_without_a_url(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await create_the_documents_cue(client, auth)

    assert (cue["name"], cue["transport"]) == ("process-reports", "worker")
    assert cue["schedule"] == {"type": "recurring", "cron": "0 9 * * *", "timezone": "UTC"}
    assert cue["payload"] == {"report_type": "daily"}
    assert cue["callback"]["url"] is None


# 1. Poll for claimable executions --------------------------------------------------------------
async def test_a_poll_lists_the_due_execution_with_the_documents_fields(
    due: dict[str, Any], auth: dict[str, str], client: httpx.AsyncClient
) -> None:
    cue_id = (await client.get("/v1/cues", headers=auth)).json()["cues"][0]["id"]

    assert due["cue_id"] == cue_id
    assert due["cue_name"] == "process-reports"
    assert due["payload"] == {"report_type": "daily"}
    assert due["scheduled_for"] == "2026-01-06T09:00:00Z"
    assert due["attempt"] == 0  # the document shows 1: cueflow counts the claims made before
    assert isinstance(due["execution_id"], str)


async def test_a_poll_with_nothing_available_answers_an_empty_array(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create_the_documents_cue(client, auth)  # not due before 09:00

    assert await poll(client, auth) == {"executions": []}


# 2. Claim an execution -------------------------------------------------------------------------
async def test_a_claim_answers_id_status_and_claimed_at(
    due: dict[str, Any], client: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str]
) -> None:
    clock.advance(1)

    response = await claim(client, auth, due["execution_id"], "my-worker-001")

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == due["execution_id"]
    assert answer["status"] == "claimed"
    assert answer["claimed_at"] == "2026-01-06T09:00:01Z"
    assert Z_DATETIME.match(answer["claimed_at"])
    # and the open server's shape, which the official clients read, in the same body
    assert (answer["claimed"], answer["execution_id"]) == (True, due["execution_id"])


async def test_once_claimed_no_other_worker_can_claim_it(
    due: dict[str, Any], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await claim(client, auth, due["execution_id"], "my-worker-001")).status_code == 200

    second = await claim(client, auth, due["execution_id"], "my-worker-002")

    assert_error(second, 409, "claim_failed")
    assert await poll(client, auth) == {"executions": []}


async def test_the_claim_is_held_for_the_claim_timeout_then_goes_back_to_the_queue(
    due: dict[str, Any],
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
) -> None:
    answer = (await claim(client, auth, due["execution_id"], "my-worker-001")).json()
    assert answer["lease_seconds"] == 900  # the default WORKER_CLAIM_TIMEOUT_SECONDS

    clock.advance(899)
    await engine.sweep()
    assert await poll(client, auth) == {"executions": []}
    clock.advance(1)  # no outcome within the timeout
    await engine.sweep()

    [again] = (await poll(client, auth))["executions"]
    assert again["execution_id"] == due["execution_id"]
    assert again["attempt"] == 1


# 4. Report the outcome -------------------------------------------------------------------------
async def test_a_success_is_reported_with_its_result(
    due: dict[str, Any], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await claim(client, auth, due["execution_id"], "my-worker-001")

    response = await report(
        client,
        auth,
        due["execution_id"],
        """{
    "success": true,
    "result": "rows_processed: 142"
  }""",
    )

    assert response.status_code == 200, response.text
    execution = await get_execution(client, auth, due["execution_id"])
    assert execution["status"] == "success"
    assert execution["outcome"]["success"] is True
    assert execution["outcome"]["result"] == "rows_processed: 142"


async def test_a_failure_is_reported_with_its_error(
    due: dict[str, Any], client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await claim(client, auth, due["execution_id"], "my-worker-001")

    response = await report(
        client,
        auth,
        due["execution_id"],
        """{
    "success": false,
    "error": "Database connection refused"
  }""",
    )

    assert response.status_code == 200, response.text
    execution = await get_execution(client, auth, due["execution_id"])
    assert execution["status"] == "failed"
    assert execution["outcome"]["success"] is False
    assert execution["outcome"]["error"] == "Database connection refused"


# Timeouts and heartbeats -----------------------------------------------------------------------
def test_the_two_timeouts_have_the_documents_names_and_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.worker_heartbeat_timeout_seconds == 180
    assert defaults.worker_claim_timeout_seconds == 900

    monkeypatch.setenv("WORKER_CLAIM_TIMEOUT_SECONDS", "2100")  # for 30-minute tasks
    monkeypatch.setenv("WORKER_HEARTBEAT_TIMEOUT_SECONDS", "240")
    tuned = Settings(_env_file=None)  # type: ignore[call-arg]
    assert tuned.worker_claim_timeout_seconds == 2100
    assert tuned.worker_heartbeat_timeout_seconds == 240


async def test_a_worker_that_stops_polling_goes_stale_and_its_claims_are_released(
    due: dict[str, Any],
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
) -> None:
    """The document's staleness is about polling: a poll that names its worker (cueflow reads
    ``X-Worker-Id``; the document's example names none) is that worker's heartbeat."""
    named = {**auth, "X-Worker-Id": "my-worker-001"}
    assert (await client.get("/v1/executions/claimable", headers=named)).status_code == 200
    assert (await claim(client, auth, due["execution_id"], "my-worker-001")).status_code == 200

    for _ in range(5):  # polling every 30 s keeps the worker, and so its claim
        clock.advance(30)
        await client.get("/v1/executions/claimable", headers=named)
        await engine.sweep()
    [worker] = (await client.get("/v1/workers", headers=auth)).json()["workers"]
    assert worker["heartbeat_status"] == "active"
    assert (await get_execution(client, auth, due["execution_id"]))["status"] == "delivering"

    clock.advance(181)  # no poll within the heartbeat timeout: stale
    await engine.sweep()

    [worker] = (await client.get("/v1/workers", headers=auth)).json()["workers"]
    assert worker["heartbeat_status"] == "stale"
    [again] = (await poll(client, auth))["executions"]
    assert again["execution_id"] == due["execution_id"]


# Running multiple workers / the minimal worker example -----------------------------------------
async def run_the_minimal_worker_once(
    client: httpx.AsyncClient, auth: dict[str, str], worker: str, done: list[tuple[str, str]]
) -> None:
    """One turn of the document's ``while True`` loop (its ``time.sleep(2)`` left out), with
    ``do_work`` recording who processed what."""
    resp = await client.get("/v1/executions/claimable", headers=auth)
    executions = resp.json().get("executions", [])
    for execution in executions:
        exec_id = execution["execution_id"]
        claimed = await client.post(
            f"/v1/executions/{exec_id}/claim",
            headers={**auth, **JSON},
            json={"worker_id": worker},
        )
        if claimed.status_code != 200:
            continue
        done.append((worker, exec_id))
        reported = await client.post(
            f"/v1/executions/{exec_id}/outcome",
            headers={**auth, **JSON},
            json={"success": True, "result": str(execution["payload"])},
        )
        assert reported.status_code == 200, reported.text


async def test_several_minimal_workers_process_each_execution_exactly_once(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await create_the_documents_cue(client, auth)
    for day in range(3):  # three mornings' reports, all due
        clock.set(NINE_AM.replace(day=6 + day))
        assert await engine.fire_due() == 1
    fired = [i["execution_id"] for i in (await poll(client, auth))["executions"]]
    assert len(fired) == 3

    done: list[tuple[str, str]] = []
    workers = ("my-worker-001", "my-worker-002", "my-worker-003")
    await asyncio.gather(*(run_the_minimal_worker_once(client, auth, w, done) for w in workers))

    assert sorted(exec_id for _, exec_id in done) == sorted(fired)
    assert await poll(client, auth) == {"executions": []}
    for exec_id in fired:
        assert (await get_execution(client, auth, exec_id))["status"] == "success"
