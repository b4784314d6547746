"""Signing secrets and alerts over the REST API: reading and rotating the webhook and alert
webhook secrets, deliveries signed with the secret current at send time, ``GET /v1/alerts``."""

from __future__ import annotations

import re

from cueflow.alerts import ALERT_TYPES
from cueflow.clock import FakeClock
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    fire,
    load_verifier,
    new_user,
    open_engine,
    verifies,
)

CONFIRM = {"X-Confirm-Destructive": "true"}
CONFIRMATION_REQUIRED = {
    "error": {
        "code": "confirmation_required",
        "message": "This action is destructive. Set X-Confirm-Destructive: true header to confirm.",
        "status": 400,
    }
}


async def test_webhook_secret_is_read_and_rotated_only_with_confirmation(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        assert (await client.get("/v1/auth/webhook-secret")).status_code == 401

        first = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()
        assert re.fullmatch(r"whsec_[0-9a-f]{64}", first["webhook_secret"])

        for headers in ({}, {"X-Confirm-Destructive": "True"}, {"X-Confirm-Destructive": "1"}):
            refused = await client.post(
                "/v1/auth/webhook-secret/regenerate", headers={**auth, **headers}
            )
            assert refused.status_code == 400
            assert refused.json() == CONFIRMATION_REQUIRED

        rotated = await client.post(
            "/v1/auth/webhook-secret/regenerate", headers={**auth, **CONFIRM}
        )
        assert rotated.status_code == 200
        body = rotated.json()
        assert body["previous_secret_revoked"] is True
        assert re.fullmatch(r"whsec_[0-9a-f]{64}", body["webhook_secret"])
        assert body["webhook_secret"] != first["webhook_secret"]
        again = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()
        assert again["webhook_secret"] == body["webhook_secret"]


async def test_alert_webhook_secret_is_created_on_first_read_and_rotated_with_confirmation(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        first = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
        assert re.fullmatch(r"[0-9a-f]{64}", first["alert_webhook_secret"])
        second = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
        assert second == first

        refused = await client.post("/v1/auth/alert-webhook-secret/regenerate", headers=auth)
        assert refused.json() == CONFIRMATION_REQUIRED
        rotated = await client.post(
            "/v1/auth/alert-webhook-secret/regenerate", headers={**auth, **CONFIRM}
        )
        assert rotated.status_code == 200
        assert rotated.json()["previous_secret_revoked"] is True
        assert rotated.json()["alert_webhook_secret"] != first["alert_webhook_secret"]
        now = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
        assert now["alert_webhook_secret"] == rotated.json()["alert_webhook_secret"]


async def test_deliveries_after_a_rotation_verify_with_the_new_secret_only(
    database_url: str, clock: FakeClock
) -> None:
    load_verifier()
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/hook", 500, 200)
        auth = await new_user(client)
        old = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()["webhook_secret"]
        await create_cue(
            client, auth, clock, receiver.url(), retry={"max_attempts": 2, "backoff_minutes": [1]}
        )
        await fire(engine, clock)

        rotated = await client.post(
            "/v1/auth/webhook-secret/regenerate", headers={**auth, **CONFIRM}
        )
        new = rotated.json()["webhook_secret"]
        clock.advance(60)
        assert await engine.deliver_due() == 1

        first, retry = receiver.requests
        assert verifies(first, old)
        assert not verifies(retry, old)
        assert verifies(retry, new)


async def test_alerts_are_listed_newest_first_with_filters_and_pages(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/hook", 500)
        auth = await new_user(client)
        other = await new_user(client)
        failing = {"max_attempts": 1, "backoff_minutes": [1]}
        first = await create_cue(client, auth, clock, receiver.url(), retry=failing)
        await fire(engine, clock)
        second = await create_cue(client, auth, clock, receiver.url(), retry=failing)
        await fire(engine, clock)

        listed = (await client.get("/v1/alerts", headers=auth)).json()
        assert listed["total"] == 2
        assert listed["limit"] == 20
        assert listed["offset"] == 0
        assert [a["cue_id"] for a in listed["alerts"]] == [second["id"], first["id"]]
        alert = listed["alerts"][0]
        assert set(alert) == {
            "id",
            "cue_id",
            "execution_id",
            "alert_type",
            "severity",
            "message",
            "metadata",
            "acknowledged",
            "created_at",
        }
        assert alert["alert_type"] == "delivery_failed"
        assert alert["acknowledged"] is False
        assert alert["created_at"].endswith("Z")
        assert "Webhook endpoint returned server error (500)" in alert["message"]

        page = (await client.get("/v1/alerts?limit=1&offset=1", headers=auth)).json()
        assert [a["cue_id"] for a in page["alerts"]] == [first["id"]]
        assert page["total"] == 2
        for alert_type in ALERT_TYPES:
            filtered = await client.get(f"/v1/alerts?alert_type={alert_type}", headers=auth)
            assert filtered.status_code == 200
            assert filtered.json()["total"] == (2 if alert_type == "delivery_failed" else 0)
        since = clock.now().isoformat().replace("+00:00", "Z")
        recent = (await client.get("/v1/alerts", params={"since": since}, headers=auth)).json()
        assert [a["cue_id"] for a in recent["alerts"]] == [second["id"]]
        assert (await client.get("/v1/alerts", headers=other)).json()["total"] == 0

        bad = await client.get("/v1/alerts?alert_type=bogus", headers=auth)
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_filter"
        assert (await client.get("/v1/alerts?limit=0", headers=auth)).status_code == 422
        assert (await client.get("/v1/alerts?limit=101", headers=auth)).status_code == 422
        assert (await client.get("/v1/alerts")).status_code == 401
