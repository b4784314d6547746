"""Outcome verification (contract §2.3.7 evidence, §2.3.10 to §2.3.12, §8) and the alerts outcomes
raise (§4.8), on both stores."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from cueflow.alert_rules import after_outcome, failure_streak
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.records import Execution, FinishedRun
from cueflow.states import Status
from tests.conftest import eventually, register
from tests.factories import claimed_execution, due_execution, reported_execution
from tests.helpers import assert_error, assert_validation_error, claim, get_execution, report
from tests.webhook_support import Receiver, api, open_engine, verifies
from tests.webhook_support import create_cue as create_webhook_cue
from tests.webhook_support import fire as fire_webhooks

MISSING = "00000000-0000-4000-8000-000000000000"


async def reported(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    mode: str | None = None,
    **outcome: Any,
) -> str:
    """A worker execution (of a cue with verification ``mode``) whose outcome is reported."""
    overrides = {"verification": {"mode": mode}} if mode else {}
    execution = await reported_execution(
        client, engine, clock, auth, {"success": True, **outcome}, **overrides
    )
    return str(execution["id"])


async def stored(engine: Engine, auth: dict[str, str], execution_id: str) -> Execution:
    """The execution as stored (evidence is not on the wire)."""
    user = await engine.authenticate(auth["Authorization"])
    async with engine.store.tx() as tx:
        execution = await tx.get_execution(user.user_id, execution_id)
    assert execution is not None
    return execution


async def state_of(client: httpx.AsyncClient, auth: dict[str, str], execution_id: str) -> str:
    return str((await get_execution(client, auth, execution_id))["outcome_state"])


async def verify(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, **kwargs: Any
) -> httpx.Response:
    return await client.post(f"/v1/executions/{execution_id}/verify", headers=auth, **kwargs)


async def pending(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
) -> httpx.Response:
    return await client.post(
        f"/v1/executions/{execution_id}/verification-pending", json={}, headers=auth
    )


async def evidence(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, body: Any
) -> httpx.Response:
    return await client.patch(f"/v1/executions/{execution_id}/evidence", json=body, headers=auth)


async def alerts_of(client: httpx.AsyncClient, auth: dict[str, str], kind: str) -> list[Any]:
    response = await client.get("/v1/alerts", params={"alert_type": kind}, headers=auth)
    assert response.status_code == 200, response.text
    return list(response.json()["alerts"])


# outcome_state from the outcome report ---------------------------------------------------------
@pytest.mark.parametrize(
    ("mode", "outcome", "state", "validation"),
    [
        (None, {}, "reported_success", None),
        ("none", {}, "reported_success", None),
        ("manual", {"external_id": "x"}, "verification_pending", None),
        ("require_external_id", {"external_id": "ext-1"}, "verified_success", "valid"),
        ("require_external_id", {"external_id": ""}, "verification_failed", "invalid"),
        ("require_result_url", {"result_url": "https://r.example/1"}, "verified_success", "valid"),
        ("require_result_url", {}, "verification_failed", "invalid"),
        ("require_artifacts", {"artifacts": [{"path": "a"}]}, "verified_success", "valid"),
        ("require_artifacts", {"artifacts": []}, "verification_failed", "invalid"),
        ("require_artifacts", {"success": False}, "reported_failure", None),
    ],
)
async def test_outcome_state_follows_the_verification_mode(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    mode: str | None,
    outcome: dict[str, Any],
    state: str,
    validation: str | None,
) -> None:
    execution_id = await reported(client, engine, clock, auth, mode, **outcome)
    assert await state_of(client, auth, execution_id) == state
    row = await stored(engine, auth, execution_id)
    assert (row.evidence or {}).get("validation_state") == validation


async def test_outcome_evidence_is_stored_and_shown_on_the_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    fields = {
        "external_id": "ext-9",
        "result_url": "https://example.com",
        "result_ref": "ref",
        "result_type": "report",
        "summary": "s" * 500,
        "artifacts": [{"name": "out.txt"}],
    }
    execution_id = await reported(client, engine, clock, auth, **fields)
    row = await stored(engine, auth, execution_id)
    assert row.evidence == {**fields, "result_url": "https://example.com/"}
    wire = await get_execution(client, auth, execution_id)
    assert wire["evidence"] == row.evidence


async def test_over_long_evidence_in_an_outcome_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await claimed_execution(client, engine, clock, auth)
    response = await report(client, auth, execution["id"], success=True, summary="s" * 501)
    assert_validation_error(response, "body.summary")


# verify ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"json": {}}, {"json": {"valid": True, "other": 1}}])
async def test_verify_confirms_a_reported_success(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    kwargs: dict[str, Any],
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    response = await verify(client, auth, execution_id, **kwargs)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution_id,
        "outcome_state": "verified_success",
        "valid": True,
        "reason": None,
    }
    assert await state_of(client, auth, execution_id) == "verified_success"
    assert (await get_execution(client, auth, execution_id))["status"] == "success"
    assert (await stored(engine, auth, execution_id)).evidence["validation_state"] == "valid"


@pytest.mark.parametrize("mode", ["manual", None])
async def test_verify_rejects_with_a_reason(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    mode: str | None,
) -> None:
    execution_id = await reported(client, engine, clock, auth, mode, summary="did it")
    response = await verify(client, auth, execution_id, json={"valid": False, "reason": "wrong"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution_id,
        "outcome_state": "verification_failed",
        "valid": False,
        "reason": "wrong",
    }
    row = await stored(engine, auth, execution_id)
    assert row.evidence["summary"] == "did it | verification rejected: wrong"
    assert row.evidence["validation_state"] == "invalid"
    assert row.status == "success"


async def test_a_rejection_reason_alone_becomes_the_summary(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    await verify(client, auth, execution_id, json={"valid": "false", "reason": "r" * 600})
    summary = (await stored(engine, auth, execution_id)).evidence["summary"]
    assert summary == "r" * 500


async def test_a_reported_failure_can_be_verified(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth, success=False, error="boom")
    response = await verify(client, auth, execution_id)
    assert response.json()["outcome_state"] == "verified_success"


@pytest.mark.parametrize(
    ("mode", "outcome", "state"),
    [
        ("require_external_id", {"external_id": "e"}, "verified_success"),
        ("require_external_id", {}, "verification_failed"),
    ],
)
async def test_verify_refuses_settled_states(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    mode: str,
    outcome: dict[str, Any],
    state: str,
) -> None:
    execution_id = await reported(client, engine, clock, auth, mode, **outcome)
    response = await verify(client, auth, execution_id)
    assert_error(response, 409, "invalid_state", f"Cannot verify from state '{state}'")


async def test_verify_before_an_outcome_names_state_none(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await due_execution(client, engine, clock, auth)
    response = await verify(client, auth, execution["id"])
    assert_error(response, 409, "invalid_state", "Cannot verify from state 'None'")


async def test_verify_answers_404_for_unknown_and_foreign_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    for who, target in ((other_auth, execution_id), (auth, MISSING), (auth, "nope")):
        assert_error(await verify(client, who, target), 404, "execution_not_found")
    assert await state_of(client, auth, execution_id) == "reported_success"


async def test_verify_needs_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await verify(client, {}, MISSING), 401, "invalid_api_key")


# verification-pending --------------------------------------------------------------------------
async def test_verification_pending_reopens_any_recorded_outcome(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth, "require_external_id")
    assert await state_of(client, auth, execution_id) == "verification_failed"
    response = await pending(client, auth, execution_id)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution_id,
        "outcome_state": "verification_pending",
    }
    assert await state_of(client, auth, execution_id) == "verification_pending"
    assert (await verify(client, auth, execution_id)).json()["outcome_state"] == (
        "verified_success"
    )
    assert (await pending(client, auth, execution_id)).status_code == 200


async def test_verification_pending_without_an_outcome_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await due_execution(client, engine, clock, auth)
    response = await pending(client, auth, execution["id"])
    assert_error(response, 409, "no_outcome", "No outcome recorded yet")


async def test_verification_pending_of_unknown_or_foreign_execution_is_a_plain_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    for who, target in ((other_auth, execution_id), (auth, MISSING), (auth, "nope")):
        response = await pending(client, who, target)
        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "http_error", "message": "Not Found", "status": 404}
        }


# evidence --------------------------------------------------------------------------------------
async def test_evidence_is_appended_without_changing_the_state(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth, "require_external_id")
    body = {
        "external_id": 42,
        "result_url": "not-validated",
        "summary": "done",
        "artifacts": ["a"],
        "metadata": {"k": 1},
        "result_ref": "",
        "unknown": "ignored",
    }
    response = await evidence(client, auth, execution_id, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "execution_id": execution_id,
        "outcome_state": "verification_failed",
        "evidence_updated": True,
    }
    row = await stored(engine, auth, execution_id)
    assert row.outcome_state == "verification_failed"
    assert row.evidence == {
        "validation_state": "invalid",
        "external_id": "42",
        "result_url": "not-validated",
        "summary": "done",
        "artifacts": ["a"],
        "metadata": {"k": 1},
    }
    await evidence(client, auth, execution_id, {"summary": "x" * 900, "external_id": None})
    row = await stored(engine, auth, execution_id)
    assert row.evidence["summary"] == "x" * 500
    assert row.evidence["external_id"] == "42"


async def test_evidence_before_an_outcome_is_409(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution = await due_execution(client, engine, clock, auth)
    response = await evidence(client, auth, execution["id"], {"external_id": "e"})
    assert_error(response, 409, "no_outcome", "Report outcome first before appending evidence")


@pytest.mark.parametrize(
    ("body", "field"),
    [([1, 2], "body"), (42, "body"), ({"external_id": "e" * 501}, "body.external_id")],
)
async def test_evidence_must_be_an_object_within_limits(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    body: Any,
    field: str,
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    assert_validation_error(await evidence(client, auth, execution_id, body), field)


async def test_evidence_needs_a_body(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    response = await client.patch(f"/v1/executions/{execution_id}/evidence", headers=auth)
    assert_validation_error(response, "body")


async def test_evidence_metadata_over_10kb_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    response = await evidence(client, auth, execution_id, {"metadata": {"k": "v" * 11_000}})
    assert_error(response, 400, "metadata_too_large")


async def test_evidence_answers_404_for_unknown_and_foreign_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    for who, target in ((other_auth, execution_id), (auth, MISSING), (auth, "nope")):
        response = await evidence(client, who, target, {"external_id": "x"})
        assert_error(response, 404, "execution_not_found")
    assert "external_id" not in ((await stored(engine, auth, execution_id)).evidence or {})


# alerts raised by outcomes ---------------------------------------------------------------------
async def test_a_failed_verification_raises_an_alert(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth, "require_result_url")
    [alert] = await alerts_of(client, auth, "verification_failed")
    assert alert["execution_id"] == execution_id
    assert alert["severity"] == "warning"
    assert alert["metadata"] == {"outcome_state": "verification_failed", "transport": "worker"}
    assert execution_id in alert["message"]
    assert await alerts_of(client, auth, "consecutive_failures") == []


async def test_rejecting_by_verify_raises_no_alert(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth)
    await verify(client, auth, execution_id, json={"valid": False})
    assert await alerts_of(client, auth, "verification_failed") == []


async def fail_runs(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str], n: int
) -> tuple[str, list[str]]:
    """A worker cue every five minutes whose next ``n`` runs report failure."""
    first = await claimed_execution(client, engine, clock, auth)
    ids = [first["id"]]
    assert (await report(client, auth, first["id"], success=False)).status_code == 200
    for _ in range(n - 1):
        clock.advance(300)
        await engine.fire_due()
        listed = await client.get(
            "/v1/executions", params={"cue_id": first["cue_id"], "status": "pending"}, headers=auth
        )
        [execution] = listed.json()["executions"]
        assert (await claim(client, auth, execution["id"])).status_code == 200
        assert (await report(client, auth, execution["id"], success=False)).status_code == 200
        ids.append(execution["id"])
    return first["cue_id"], ids


async def test_three_failures_in_a_row_raise_consecutive_failures(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    cue_id, _ = await fail_runs(client, engine, clock, auth, 2)
    assert await alerts_of(client, auth, "consecutive_failures") == []
    clock.advance(300)
    await engine.fire_due()
    [execution] = [
        e
        for e in (await client.get("/v1/executions", headers=auth)).json()["executions"]
        if e["status"] == "pending"
    ]
    await claim(client, auth, execution["id"])
    await report(client, auth, execution["id"], success=False, error="again")
    [alert] = await alerts_of(client, auth, "consecutive_failures")
    assert alert["metadata"] == {"consecutive_failures": 3}
    assert alert["cue_id"] == cue_id
    assert alert["execution_id"] == execution["id"]
    assert alert["severity"] == "warning"


def test_a_failure_streak_counts_outcomes_first_and_stops_at_a_success() -> None:
    assert (
        failure_streak(
            [
                FinishedRun("1", Status.FAILED, None),
                FinishedRun("2", Status.SUCCESS, False),
                FinishedRun("3", Status.FAILED, True),
                FinishedRun("4", Status.FAILED, False),
            ]
        )
        == 2
    )


async def test_the_same_alert_is_not_repeated_within_five_minutes(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    execution_id = await reported(client, engine, clock, auth, "require_artifacts")
    row = await stored(engine, auth, execution_id)
    await after_outcome(engine, row, True)
    assert len(await alerts_of(client, auth, "verification_failed")) == 1
    clock.advance(301)
    await after_outcome(engine, row, True)
    assert len(await alerts_of(client, auth, "verification_failed")) == 2


async def test_webhook_handlers_reporting_failures_are_alerted_too(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await register(client)
        cue = await create_webhook_cue(
            client, auth, clock, receiver.url(), schedule={"type": "recurring", "cron": "* * * * *"}
        )
        for _ in range(3):
            await fire_webhooks(engine, clock, 60)
        executions = (await client.get("/v1/executions", headers=auth)).json()["executions"]
        assert [e["status"] for e in executions] == ["success"] * 3
        for execution in reversed(executions):
            response = await report(client, auth, execution["id"], success=False)
            assert response.status_code == 200
        [alert] = await alerts_of(client, auth, "consecutive_failures")
        assert alert["cue_id"] == cue["id"]
        assert alert["metadata"] == {"consecutive_failures": 3}


async def test_outcome_alerts_are_sent_to_the_alert_webhook(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await register(client)
        patched = await client.patch(
            "/v1/auth/me", json={"alert_webhook_url": receiver.url("/alerts")}, headers=auth
        )
        assert patched.status_code == 200, patched.text
        execution_id = await reported(client, engine, clock, auth, "require_external_id")
        [request] = await eventually(lambda: _async(receiver.to("/alerts")))
        body = json.loads(request.body)
        assert set(body) == {
            "alert_id",
            "alert_type",
            "severity",
            "message",
            "execution_id",
            "cue_id",
            "created_at",
            "metadata",
        }
        assert body["alert_type"] == "verification_failed"
        assert body["execution_id"] == execution_id
        assert request.headers["x-cueapi-alert-type"] == "verification_failed"
        assert request.headers["x-cueapi-alert-id"] == body["alert_id"]
        secret = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
        assert verifies(request, secret["alert_webhook_secret"])


async def _async(value: Any) -> Any:
    return value
