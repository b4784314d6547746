"""The worker side of the API: the pull protocol on ``/v1/executions`` (claimable, claim,
heartbeat, outcome; contract §2.3.5-2.3.8, §4.3) and the worker registry
(``POST /v1/worker/heartbeat``, ``GET/DELETE /v1/workers``; §2.4)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.helpers import (
    START,
    UNKNOWN_ID,
    Z_DATETIME,
    assert_error,
    assert_validation_error,
    claim,
    claimed_execution,
    create_cue,
    due_execution,
    executions_of,
    fire,
    get_cue,
    get_execution,
    make_once_cue,
    make_worker_cue,
    report,
    worker_heartbeat,
    zulu,
)

LEASE = 900
NOT_AVAILABLE = "Execution not available for claiming"
NONE_AVAILABLE = "No executions available for claiming"


async def claimable(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """``GET /v1/executions/claimable`` that must succeed; returns the items."""
    response = await client.get("/v1/executions/claimable", params=params, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"executions"}
    return body["executions"]


async def claim_next(
    client: httpx.AsyncClient, auth: dict[str, str], worker_id: str = "w1"
) -> httpx.Response:
    """``POST /v1/executions/claim``."""
    return await client.post("/v1/executions/claim", json={"worker_id": worker_id}, headers=auth)


async def heartbeat(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, **kwargs: Any
) -> httpx.Response:
    """``POST /v1/executions/{id}/heartbeat``; ``kwargs`` go to ``client.post``."""
    headers = {**auth, **kwargs.pop("headers", {})}
    return await client.post(f"/v1/executions/{execution_id}/heartbeat", headers=headers, **kwargs)


async def list_workers(client: httpx.AsyncClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    """``GET /v1/workers`` that must succeed; returns the items."""
    response = await client.get("/v1/workers", headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"workers"}
    return body["workers"]


async def insert_future_execution(
    engine: Engine, auth: dict[str, str], cue_id: str, seconds_ahead: int
) -> str:
    """Store a pending execution of ``cue_id`` scheduled ``seconds_ahead`` from now (as a
    manual fire with a future ``send_at`` would); returns its id. There is no HTTP route that
    creates one, so this goes through the store."""
    user = await engine.authenticate(auth["Authorization"])
    cue = await engine.get_cue(user, cue_id)
    now = engine.clock.now()
    execution_id = str(uuid.uuid4())
    async with engine.store.tx() as tx:
        inserted = await tx.insert_execution(
            {
                "id": execution_id,
                "cue_id": cue_id,
                "user_id": user.user_id,
                "transport": cue.transport,
                "scheduled_for": now + timedelta(seconds=seconds_ahead),
                "status": "pending",
                "triggered_by": "manual_fire",
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    assert inserted
    return execution_id


# claimable ---------------------------------------------------------------------------------------
async def test_claimable_item_shape_with_attempt_zero_before_claim(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(
        client, engine, clock, auth, name="reports", payload={"task": "report", "n": 3}
    )

    [item] = await claimable(client, auth)

    assert item == {
        "execution_id": execution["id"],
        "cue_id": execution["cue_id"],
        "cue_name": "reports",
        "task": "report",
        "scheduled_for": "2026-01-05T12:05:00Z",
        "payload": {"task": "report", "n": 3},
        "attempt": 0,
    }


async def test_claimable_task_is_null_without_payload_task(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await due_execution(client, engine, clock, auth, payload={"x": 1})

    [item] = await claimable(client, auth)

    assert item["task"] is None
    assert item["payload"] == {"x": 1}


async def test_claimable_filters_by_task(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a = await make_worker_cue(client, auth, payload={"task": "a"})
    b = await make_worker_cue(client, auth, payload={"task": "b"})
    await fire(engine, clock, 300)

    only_a = await claimable(client, auth, task="a")
    only_b = await claimable(client, auth, task="b")
    unknown = await claimable(client, auth, task="zzz")
    every = await claimable(client, auth)

    assert [i["cue_id"] for i in only_a] == [a["id"]]
    assert [i["cue_id"] for i in only_b] == [b["id"]]
    assert unknown == []
    assert {i["cue_id"] for i in every} == {a["id"], b["id"]}


async def test_claimable_is_oldest_scheduled_first(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(3):
        await fire(engine, clock, 60)

    items = await claimable(client, auth)

    assert [i["scheduled_for"] for i in items] == [
        "2026-01-05T12:01:00Z",
        "2026-01-05T12:02:00Z",
        "2026-01-05T12:03:00Z",
    ]
    assert {i["cue_id"] for i in items} == {cue["id"]}


async def test_not_yet_due_execution_is_not_claimable(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)
    future = await insert_future_execution(engine, auth, cue["id"], seconds_ahead=120)

    listed = await claimable(client, auth)
    specific = await claim(client, auth, future)
    next_one = await claim_next(client, auth)

    assert listed == []
    assert_error(specific, 409, "claim_failed", NOT_AVAILABLE)
    assert_error(next_one, 409, "claim_failed", NONE_AVAILABLE)
    clock.advance(120)
    assert [i["execution_id"] for i in await claimable(client, auth)] == [future]
    assert (await claim(client, auth, future)).status_code == 200


async def test_claimed_execution_leaves_the_claimable_list(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await claimed_execution(client, engine, clock, auth)

    assert await claimable(client, auth) == []


async def test_claimable_shows_only_the_callers_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    await due_execution(client, engine, clock, other_auth)

    assert await claimable(client, auth) == []


async def test_webhook_cues_never_appear_in_claimable(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
):
    webhook = engine.transports.get("webhook")
    if webhook is None:
        pytest.skip("the webhook transport is not installed")

    async def public_address(host: str) -> list[str]:
        return ["93.184.215.14"]  # no DNS in the test environment; example.com's address

    monkeypatch.setattr(webhook.guard, "resolve", public_address)  # type: ignore[attr-defined]
    response = await create_cue(
        client, auth, transport="webhook", callback={"url": "https://example.com/hook"}
    )
    assert response.status_code == 201, response.text
    worker = await make_worker_cue(client, auth)
    await fire(engine, clock, 300)
    assert len((await client.get("/v1/executions", headers=auth)).json()["executions"]) == 2

    items = await claimable(client, auth)

    assert [i["cue_id"] for i in items] == [worker["id"]]
    webhook_run = (await executions_of(client, auth, response.json()["id"]))[0]
    assert_error(await claim(client, auth, webhook_run["id"]), 409, "claim_failed", NOT_AVAILABLE)


# claim -------------------------------------------------------------------------------------------
async def test_claim_returns_lease_and_marks_execution_delivering(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, auth, execution["id"], "worker-7")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "claimed": True,
        "execution_id": execution["id"],
        "lease_seconds": LEASE,
    }
    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "delivering"
    assert after["attempts"] == 1
    assert after["claimed_by_worker"] == "worker-7"
    assert after["started_at"] == zulu(clock.now())


@pytest.mark.parametrize("second_worker", ["w1", "w2"])
async def test_second_claim_is_rejected_with_409(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    second_worker: str,
):
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    response = await claim(client, auth, execution["id"], second_worker)

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)
    after = await get_execution(client, auth, execution["id"])
    assert (after["claimed_by_worker"], after["attempts"]) == ("w1", 1)


async def test_claiming_another_users_execution_is_409_not_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, other_auth, execution["id"])

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)
    assert (await get_execution(client, auth, execution["id"]))["status"] == "pending"


@pytest.mark.parametrize("execution_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_claiming_an_unknown_execution_is_409(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await claim(client, auth, execution_id)

    assert_error(response, 409, "claim_failed", NOT_AVAILABLE)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"json": {}}, "body.worker_id"),
        ({"json": {"worker_id": ""}}, "body.worker_id"),
        ({"json": {"worker_id": "w" * 256}}, "body.worker_id"),
        ({"json": {"worker": "w1"}}, "body.worker_id"),
        ({}, "body"),
    ],
    ids=["empty-object", "empty-id", "long-id", "misnamed", "no-body"],
)
async def test_claim_without_a_valid_worker_id_is_rejected_with_422(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    kwargs: dict[str, Any],
    field: str,
):
    execution = await due_execution(client, engine, clock, auth)

    specific = await client.post(f"/v1/executions/{execution['id']}/claim", headers=auth, **kwargs)
    next_one = await client.post("/v1/executions/claim", headers=auth, **kwargs)

    for response in (specific, next_one):
        assert_validation_error(response, field)
    assert (await get_execution(client, auth, execution["id"]))["status"] == "pending"


async def test_claim_with_empty_object_names_the_missing_worker_id(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await client.post("/v1/executions/claim", json={}, headers=auth)

    error = assert_validation_error(response, "body.worker_id")
    assert error["message"] == "body.worker_id: Field required"


async def test_worker_id_of_255_characters_can_claim(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await claim(client, auth, execution["id"], "w" * 255)

    assert response.status_code == 200, response.text


async def test_claim_ignores_unknown_body_fields(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await client.post(
        f"/v1/executions/{execution['id']}/claim",
        json={"worker_id": "w1", "handlers": ["x"], "lease": 5},
        headers=auth,
    )

    assert response.status_code == 200, response.text


async def test_claim_next_picks_the_oldest_due_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    # The older run (12:01) is created after the newer one (12:02): order is by scheduled_for.
    early = await make_once_cue(client, auth, clock, in_seconds=60, name="early")
    late = await make_once_cue(client, auth, clock, in_seconds=120, name="late")
    await client.patch(f"/v1/cues/{early['id']}", json={"status": "paused"}, headers=auth)
    assert await fire(engine, clock, 120) == 1
    await client.patch(f"/v1/cues/{early['id']}", json={"status": "active"}, headers=auth)
    assert await engine.fire_due() == 1
    [early_run] = await executions_of(client, auth, early["id"])
    [late_run] = await executions_of(client, auth, late["id"])
    assert early_run["scheduled_for"] < late_run["scheduled_for"]
    assert early_run["created_at"] >= late_run["created_at"]

    first = await claim_next(client, auth, "w1")
    second = await claim_next(client, auth, "w2")
    third = await claim_next(client, auth, "w3")

    assert first.json() == {
        "claimed": True,
        "execution_id": early_run["id"],
        "lease_seconds": LEASE,
    }
    assert second.json()["execution_id"] == late_run["id"]
    assert_error(third, 409, "claim_failed", NONE_AVAILABLE)
    assert (await get_execution(client, auth, early_run["id"]))["claimed_by_worker"] == "w1"


async def test_claim_next_with_nothing_due_is_409(client: httpx.AsyncClient, auth: dict[str, str]):
    await make_worker_cue(client, auth)

    response = await claim_next(client, auth)

    assert_error(response, 409, "claim_failed", NONE_AVAILABLE)


async def test_claim_next_never_takes_another_users_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    await due_execution(client, engine, clock, other_auth)

    response = await claim_next(client, auth)

    assert_error(response, 409, "claim_failed", NONE_AVAILABLE)


# execution heartbeat -----------------------------------------------------------------------------
async def test_heartbeat_extends_the_lease(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    clock.advance(100)

    response = await heartbeat(client, auth, execution["id"], json={})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution["id"],
        "lease_extended_until": (clock.now() + timedelta(seconds=LEASE)).isoformat(),
        "acknowledged": True,
    }
    assert response.json()["lease_extended_until"] == "2026-01-05T12:21:40+00:00"


async def test_heartbeat_keeps_a_long_job_claimed(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    for _ in range(3):
        clock.advance(LEASE - 100)
        assert (await heartbeat(client, auth, execution["id"])).status_code == 200
        await engine.sweep()

    after = await get_execution(client, auth, execution["id"])
    assert after["status"] == "delivering"
    assert after["claimed_by_worker"] == "w1"


async def test_worker_heartbeats_keep_a_long_claim_alive(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    """The official cueapi-worker never sends execution heartbeats; its worker heartbeat (every
    30 s) is what keeps a long handler's claim (official-clients §4.3). CueAPI releases a claim
    only when the lease is over *and* the worker heartbeat is stale (contract §4.3)."""
    await worker_heartbeat(client, auth, "w1")
    execution = await claimed_execution(client, engine, clock, auth, "w1")
    for _ in range(40):  # a 20-minute handler
        clock.advance(30)
        assert (await worker_heartbeat(client, auth, "w1")).status_code == 200
        await engine.sweep()

    after = await get_execution(client, auth, execution["id"])
    assert (after["status"], after["claimed_by_worker"]) == ("delivering", "w1")
    assert await claimable(client, auth) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b""},
        {"content": b"", "headers": {"Content-Type": "application/json"}},
        {"json": {}},
        {"json": {"anything": "ignored"}},
    ],
)
async def test_heartbeat_accepts_an_empty_or_any_body(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    kwargs: dict[str, Any],
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await heartbeat(client, auth, execution["id"], **kwargs)

    assert response.status_code == 200, response.text
    assert response.json()["acknowledged"] is True


async def test_heartbeat_of_a_pending_execution_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    response = await heartbeat(client, auth, execution["id"])

    assert_error(
        response, 409, "execution_not_claiming", "Execution is not currently being claimed"
    )


async def test_heartbeat_after_the_outcome_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth)
    await report(client, auth, execution["id"], success=True)

    response = await heartbeat(client, auth, execution["id"])

    assert_error(
        response, 409, "execution_not_claiming", "Execution is not currently being claimed"
    )


async def test_heartbeat_from_another_worker_is_403(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    other = await heartbeat(client, auth, execution["id"], headers={"X-Worker-Id": "w2"})
    same = await heartbeat(client, auth, execution["id"], headers={"X-Worker-Id": "w1"})

    assert_error(other, 403, "not_execution_owner", "Only the claiming worker can heartbeat")
    assert same.status_code == 200, same.text


@pytest.mark.parametrize("execution_id", [UNKNOWN_ID, "not-a-uuid"])
async def test_heartbeat_of_an_unknown_execution_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await heartbeat(client, auth, execution_id)

    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_heartbeat_of_another_users_execution_is_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await claimed_execution(client, engine, clock, auth)

    response = await heartbeat(client, other_auth, execution["id"])

    assert_error(response, 404, "execution_not_found", "Execution not found")


# outcome -----------------------------------------------------------------------------------------
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
    cue = await make_once_cue(client, auth, clock, in_seconds=60)
    await fire(engine, clock, 60)
    [execution] = await executions_of(client, auth, cue["id"])
    await claim(client, auth, execution["id"])

    response = await report(client, auth, execution["id"], success=success, error="e")

    assert response.status_code == 200, response.text
    after = await get_cue(client, auth, cue["id"])
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


# worker registry ---------------------------------------------------------------------------------
async def test_worker_heartbeat_acknowledges_with_server_time(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await worker_heartbeat(client, auth, "w1", handlers=["report"])

    assert response.status_code == 200, response.text
    assert response.json() == {"acknowledged": True, "server_time": START}


async def test_worker_heartbeat_upserts_one_row_and_replaces_handlers(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1", handlers=["a", "b"])
    clock.advance(10)
    await worker_heartbeat(client, auth, "w1", handlers=["c"])

    [worker] = await list_workers(client, auth)

    assert worker["handlers"] == ["c"]
    assert worker["last_heartbeat"] == "2026-01-05T12:00:10Z"
    assert worker["registered_since"] == START

    clock.advance(10)
    await worker_heartbeat(client, auth, "w1")
    [worker] = await list_workers(client, auth)
    assert worker["handlers"] is None


async def test_worker_heartbeat_ignores_unknown_fields(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await worker_heartbeat(client, auth, "w1", version="1.2.3")

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.worker_id"),
        ({"handlers": ["a"]}, "body.worker_id"),
        ({"worker_id": "w" * 256}, "body.worker_id"),
        ({"worker_id": "w1", "handlers": "a"}, "body.handlers"),
    ],
)
async def test_worker_heartbeat_with_bad_body_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str
):
    response = await client.post("/v1/worker/heartbeat", json=body, headers=auth)

    assert_validation_error(response, field)


async def test_list_workers_shape(client: httpx.AsyncClient, auth: dict[str, str]):
    await worker_heartbeat(client, auth, "w1", handlers=["report"])

    [worker] = await list_workers(client, auth)

    assert worker == {
        "worker_id": "w1",
        "last_heartbeat": START,
        "seconds_since_heartbeat": 0,
        "heartbeat_status": "active",
        "handlers": ["report"],
        "registered_since": START,
    }


async def test_list_workers_is_empty_without_total(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.get("/v1/workers", headers=auth)

    assert response.json() == {"workers": []}


@pytest.mark.parametrize(
    ("silent", "status"),
    [
        (0, "active"),
        (179, "active"),
        (180, "stale"),
        (899, "stale"),
        (900, "dead"),
        (86_400, "dead"),
    ],
)
async def test_heartbeat_status_follows_the_clock(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock, silent: int, status: str
):
    await worker_heartbeat(client, auth, "w1")
    clock.advance(silent)

    [worker] = await list_workers(client, auth)

    assert worker["heartbeat_status"] == status
    assert worker["seconds_since_heartbeat"] == silent
    assert Z_DATETIME.match(worker["last_heartbeat"])


async def test_list_workers_is_newest_heartbeat_first(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1")
    clock.advance(5)
    await worker_heartbeat(client, auth, "w2")
    clock.advance(5)
    await worker_heartbeat(client, auth, "w3")

    before = [w["worker_id"] for w in await list_workers(client, auth)]
    clock.advance(5)
    await worker_heartbeat(client, auth, "w1")
    after = [w["worker_id"] for w in await list_workers(client, auth)]

    assert before == ["w3", "w2", "w1"]
    assert after == ["w1", "w3", "w2"]


async def test_delete_worker_returns_204_then_404(client: httpx.AsyncClient, auth: dict[str, str]):
    await worker_heartbeat(client, auth, "w1")

    deleted = await client.delete("/v1/workers/w1", headers=auth)
    again = await client.delete("/v1/workers/w1", headers=auth)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(again, 404, "worker_not_found", "Worker not found")
    assert await list_workers(client, auth) == []


async def test_delete_unknown_worker_is_404(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.delete("/v1/workers/never-seen", headers=auth)

    assert_error(response, 404, "worker_not_found", "Worker not found")


async def test_another_users_worker_is_invisible_and_404(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    await worker_heartbeat(client, auth, "shared-name")

    listed = await list_workers(client, other_auth)
    deleted = await client.delete("/v1/workers/shared-name", headers=other_auth)

    assert listed == []
    assert_error(deleted, 404, "worker_not_found", "Worker not found")
    assert [w["worker_id"] for w in await list_workers(client, auth)] == ["shared-name"]


async def test_same_worker_id_is_separate_per_user(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth, "w1", handlers=["mine"])
    clock.advance(1000)
    await worker_heartbeat(client, other_auth, "w1", handlers=["theirs"])

    [mine] = await list_workers(client, auth)
    [theirs] = await list_workers(client, other_auth)

    assert (mine["handlers"], mine["heartbeat_status"]) == (["mine"], "dead")
    assert (theirs["handlers"], theirs["heartbeat_status"]) == (["theirs"], "active")


async def test_deleting_a_worker_leaves_its_claims_alone(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await worker_heartbeat(client, auth, "w1")
    execution = await claimed_execution(client, engine, clock, auth, "w1")

    assert (await client.delete("/v1/workers/w1", headers=auth)).status_code == 204

    after = await get_execution(client, auth, execution["id"])
    assert (after["status"], after["claimed_by_worker"]) == ("delivering", "w1")
