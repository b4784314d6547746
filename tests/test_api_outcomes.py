"""Outcomes (contract §2.3.7): ``POST /v1/executions/{id}/outcome`` finishes a claimed execution
once, checks its body and sizes, and refuses a worker that lost its lease."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import claimed_execution, once_schedule
from tests.helpers import (
    LEASE,
    UNKNOWN_ID,
    assert_error,
    assert_validation_error,
    claim,
    get_cue,
    get_execution,
    report,
)


async def test_success_outcome_finishes_the_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    clock.advance(42)

    response = await report(
        client, auth, execution["id"], success=True, result="done", metadata={"rows": 7}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution["id"],
        "outcome_recorded": True,
        "outcome_state": "reported_success",
        "reason": None,
    }
    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "success"
    assert after["delivered_at"] == "2026-01-05T12:05:42Z"
    assert after["outcome"] == {
        "success": True,
        "result": "done",
        "error": None,
        "metadata": {"rows": 7},
        "recorded_at": "2026-01-05T12:05:42Z",
    }
    assert after["outcome_state"] == "reported_success"
    assert after["error_message"] is None


async def test_failure_outcome_fails_the_execution_with_its_error(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(client, auth, execution["id"], success=False, error="disk full")

    assert response.status_code == 200, response.text
    assert response.json()["outcome_state"] == "reported_failure"
    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "failed"
    assert after["error_message"] == "disk full"
    assert after["delivered_at"] is None
    assert after["outcome"]["success"] is False
    assert after["outcome"]["error"] == "disk full"


async def test_outcome_counts_a_run_on_the_cue(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    clock.advance(5)

    await report(client, auth, execution["id"], success=True)

    cue = await get_cue(client, auth, execution["cue_id"])
    assert cue["run_count"] == 1
    assert cue["last_run"] == "2026-01-05T12:05:05Z"
    assert cue["status"] == "active"
    assert cue["executions"][0]["outcome"]["success"] is True


@pytest.mark.parametrize(("success", "cue_status"), [(True, "completed"), (False, "failed")])
async def test_outcome_of_a_one_time_cue_finishes_the_cue(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    success: bool,
    cue_status: str,
):
    execution = await claimed_execution(client, engine, clock, auth, schedule=once_schedule(clock))

    response = await report(client, auth, execution["id"], success=success, error="e")

    assert response.status_code == 200, response.text
    after = await get_cue(client, auth, execution["cue_id"])
    assert after["status"] == cue_status
    assert after["run_count"] == 1
    assert after["next_run"] is None


async def test_second_outcome_is_rejected_with_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    await report(client, auth, execution["id"], success=True, result="first")

    response = await report(client, auth, execution["id"], success=False, error="second")

    assert_error(
        response,
        409,
        "outcome_already_recorded",
        "Outcome has already been recorded for this execution",
    )
    after = await get_execution(client, auth, execution["id"])
    assert (after["status"], after["outcome"]["result"]) == ("success", "first")
    assert (await get_cue(client, auth, execution["cue_id"]))["run_count"] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.success"),
        ({"result": "x"}, "body.success"),
        ({"success": "maybe"}, "body.success"),
        ({"success": True, "metadata": [1]}, "body.metadata"),
        ({"success": True, "summary": "s" * 501}, "body.summary"),
        ({"success": True, "result_url": "ftp://example.com/x"}, "body.result_url"),
    ],
)
async def test_invalid_outcome_body_is_rejected_with_422(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    body: dict[str, Any],
    field: str,
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(client, auth, execution["id"], **body)

    assert_validation_error(response, field)
    assert (await get_execution(client, auth, execution["id"]))["outcome"] is None


@pytest.mark.parametrize("value", ["true", "yes", 1])
async def test_outcome_success_is_coerced_leniently(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    value: Any,
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(client, auth, execution["id"], success=value)

    assert response.status_code == 200, response.text
    assert (await get_execution(client, auth, execution["id"]))["status"] == "success"


async def test_metadata_over_10240_bytes_is_rejected_with_400(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    metadata = {"k": "x" * 10_232}  # json.dumps gives '{"k": "..."}': 10_241 bytes

    response = await report(client, auth, execution["id"], success=True, metadata=metadata)

    assert_error(response, 400, "metadata_too_large", "Outcome metadata must be under 10KB")
    assert (await get_execution(client, auth, execution["id"]))["outcome"] is None


async def test_metadata_of_exactly_10240_bytes_is_accepted(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    metadata = {"k": "x" * 10_231}

    response = await report(client, auth, execution["id"], success=True, metadata=metadata)

    assert response.status_code == 200, response.text


async def test_metadata_size_counts_non_ascii_as_escapes(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    metadata = {"k": "é" * 1_706}  # 3_421 bytes of UTF-8, 10_245 bytes ASCII-escaped

    response = await report(client, auth, execution["id"], success=True, metadata=metadata)

    assert_error(response, 400, "metadata_too_large", "Outcome metadata must be under 10KB")


async def test_long_result_and_error_are_truncated_to_2000_characters(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    """cueflow difference: CueAPI refuses over-long ``result``/``error`` with 422."""
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(
        client, auth, execution["id"], success=False, result="r" * 2500, error="e" * 2001
    )

    assert response.status_code == 200, response.text
    after = await get_execution(client, auth, execution["id"])
    assert after["outcome"]["result"] == "r" * 2000
    assert after["outcome"]["error"] == "e" * 2000
    assert after["error_message"] == "e" * 2000


@pytest.mark.parametrize("execution_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_outcome_of_an_unknown_execution_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await report(client, auth, execution_id, success=True)

    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_outcome_of_another_users_execution_is_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(client, other_auth, execution["id"], success=True)

    assert_error(response, 404, "execution_not_found", "Execution not found")
    assert (await get_execution(client, auth, execution["id"]))["status"] == "delivering"


async def test_outcome_with_an_integer_beyond_64_bits_in_metadata_is_not_a_500(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(client, auth, execution["id"], success=True, metadata={"n": 2**70})

    if response.status_code == 200:
        after = await get_execution(client, auth, execution["id"])
        assert after["outcome"]["metadata"] == {"n": 2**70}
    else:
        assert response.status_code in (400, 422), response.text
        assert (await get_execution(client, auth, execution["id"]))["outcome"] is None


async def test_outcome_with_nul_in_result_is_not_a_500(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    """The official worker reports handler output as ``result`` and never retries a failed
    report (official-clients §4.3), so output holding a NUL byte must not crash the outcome
    (PostgreSQL refuses NUL in text)."""
    execution = await claimed_execution(client, engine, clock, auth)

    response = await report(
        client, auth, execution["id"], success=False, result="out\x00put", error="e\x00"
    )

    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert (await get_execution(client, auth, execution["id"]))["status"] == "failed"


# a lease taken over by another worker ----------------------------------------------------------
async def lease_taken_over(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> dict[str, Any]:
    """An execution claimed by ``w1`` whose lease expired and that ``w2`` then claimed."""
    execution = await claimed_execution(client, engine, clock, auth, "w1")
    clock.advance(LEASE + 1)
    assert await engine.sweep() == 1
    assert (await claim(client, auth, execution["id"], "w2")).status_code == 200
    return execution


@pytest.mark.parametrize(
    ("body", "headers"),
    [({"worker_id": "w1"}, {}), ({}, {"X-Worker-Id": "w1"})],
    ids=["body-worker-id", "header-worker-id"],
)
async def test_outcome_from_a_worker_whose_lease_was_taken_over_is_409(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    body: dict[str, Any],
    headers: dict[str, str],
):
    execution = await lease_taken_over(client, engine, clock, auth)

    stale = await report(
        client, auth, execution["id"], headers, success=False, error="late", **body
    )
    holder = await report(
        client, auth, execution["id"], {"X-Worker-Id": "w2"}, success=True, result="w2 done"
    )

    assert_error(stale, 409, "lease_lost")
    assert holder.status_code == 200, holder.text
    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "success"
    assert after["attempts"] == 2
    assert after["claimed_by_worker"] == "w2"
    assert after["outcome"]["result"] == "w2 done"


async def test_outcome_naming_the_current_holder_is_accepted(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    response = await report(client, auth, execution["id"], success=True, worker_id="w1")

    assert response.status_code == 200, response.text
