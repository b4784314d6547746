"""Webhook delivery end to end: a cue created through the REST API is fired, delivered to a real
receiver on 127.0.0.1, signed and checked with the official SDK's verifier, retried and failed
on the injected clock, and alerted."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from cueflow.clock import FakeClock
from cueflow.push_attempts import INTERRUPTED, retry_wait
from cueflow.states import Event, move
from tests.conftest import eventually
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    executions_of,
    fire,
    load_verifier,
    new_user,
    open_engine,
    verifies,
)


@pytest.fixture(scope="module", autouse=True)
def verifier() -> None:
    """Install the official verifier once, before the first test needs it."""
    load_verifier()


def expected_body(execution: dict, cue: dict, attempt: int) -> bytes:
    """The delivery body as the contract spells it out."""
    return json.dumps(
        {
            "execution_id": execution["id"],
            "cue_id": cue["id"],
            "name": cue["name"],
            "scheduled_for": cue["schedule"]["at"],
            "attempt": attempt,
            "payload": cue["payload"],
        },
        sort_keys=True,
    ).encode()


async def test_delivery_is_signed_and_accepted_by_the_official_verifier(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        secret = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()[
            "webhook_secret"
        ]
        payload = {"task": "report", "city": "Zürich", "n": [1, 2.5, None]}
        cue = await create_cue(client, auth, clock, receiver.url(), payload=payload)

        assert await fire(engine, clock) == 1

        [request] = receiver.requests
        [execution] = await executions_of(client, auth, cue["id"])
        assert request.method == "POST"
        assert request.path == "/hook"
        assert request.body == expected_body(execution, cue, attempt=1)
        assert b"Z\\u00fcrich" in request.body
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "CueAPI/1.0"
        assert request.headers["x-cueapi-cue-id"] == cue["id"]
        assert request.headers["x-cueapi-execution-id"] == execution["id"]
        assert request.headers["x-cueapi-scheduled-for"] == cue["schedule"]["at"]
        assert request.headers["x-cueapi-attempt"] == "1"
        assert request.headers["x-cueapi-signature"].startswith("v1=")
        assert verifies(request, secret)
        assert not verifies(request, "whsec_" + "0" * 64)

        assert execution["status"] == "success"
        assert execution["http_status"] == 200
        assert execution["attempts"] == 1
        assert execution["delivered_at"] is not None
        cue_now = (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()
        assert cue_now["status"] == "completed"
        assert cue_now["run_count"] == 1
        assert cue_now["last_run"] is not None
        assert await engine.deliver_due() == 0
        assert len(receiver.requests) == 1


async def test_custom_method_and_headers_are_sent_but_cannot_forge_the_signature(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        secret = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()[
            "webhook_secret"
        ]
        headers = {
            "X-Custom": "yes",
            "user-agent": "my-agent",
            "X-CueAPI-Signature": "v1=forged",
            "x-cueapi-timestamp": "1",
        }
        callback = {"url": receiver.url("/put"), "method": "PUT", "headers": headers}
        await create_cue(client, auth, clock, receiver.url(), callback=callback)

        await fire(engine, clock)

        [request] = receiver.requests
        assert request.method == "PUT"
        assert request.path == "/put"
        assert request.headers["x-custom"] == "yes"
        assert request.headers["user-agent"] == "my-agent"
        assert request.headers["x-cueapi-signature"] != "v1=forged"
        assert verifies(request, secret)


async def test_get_sends_no_body_but_signs_the_would_be_body(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        secret = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()[
            "webhook_secret"
        ]
        cue = await create_cue(
            client, auth, clock, "", callback={"url": receiver.url(), "method": "GET"}
        )

        await fire(engine, clock)

        [request] = receiver.requests
        [execution] = await executions_of(client, auth, cue["id"])
        assert request.method == "GET"
        assert request.body == b""
        assert verifies(request, secret, body=expected_body(execution, cue, attempt=1))
        assert execution["status"] == "success"


async def test_server_errors_are_retried_at_the_backoff_times_then_fail_and_alert(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/hook", 500)
        auth = await new_user(client)
        cue = await create_cue(
            client,
            auth,
            clock,
            receiver.url(),
            retry={"max_attempts": 3, "backoff_minutes": [1, 5]},
            on_failure={"webhook": receiver.url("/alerts"), "pause": False},
        )

        assert await fire(engine, clock) == 1
        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "retrying"
        assert execution["http_status"] == 500
        assert execution["error_message"] == "Webhook endpoint returned server error (500)"
        assert execution["attempts"] == 1

        clock.advance(59)
        assert await engine.deliver_due() == 0
        clock.advance(1)
        assert await engine.deliver_due() == 1
        assert [r.headers["x-cueapi-attempt"] for r in receiver.to("/hook")] == ["1", "2"]
        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "retrying"
        assert execution["attempts"] == 2

        clock.advance(299)
        assert await engine.deliver_due() == 0
        clock.advance(1)
        assert await engine.deliver_due() == 1
        assert len(receiver.to("/hook")) == 3

        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "failed"
        assert execution["attempts"] == 3
        cue_now = (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()
        assert cue_now["status"] == "failed"
        assert cue_now["run_count"] == 3

        [notice] = receiver.to("/alerts")
        alert_secret = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()[
            "alert_webhook_secret"
        ]
        assert verifies(notice, alert_secret)
        body = json.loads(notice.body)
        assert body["event"] == "cue.failed"
        assert body["cue_id"] == cue["id"]
        assert body["cue_name"] == cue["name"]
        assert body["execution_id"] == execution["id"]
        assert body["attempts"] == 3
        assert body["last_http_status"] == 500
        assert body["last_error"] == "Webhook endpoint returned server error (500)"
        assert notice.headers["x-cueapi-alert-type"] == "delivery_failed"

        alerts = (await client.get("/v1/alerts", headers=auth)).json()
        assert alerts["total"] == 1
        [alert] = alerts["alerts"]
        assert alert["alert_type"] == "delivery_failed"
        assert alert["execution_id"] == execution["id"]
        assert alert["cue_id"] == cue["id"]
        assert alert["id"] == body["alert_id"] == notice.headers["x-cueapi-alert-id"]
        assert alert["metadata"]["attempts"] == 3
        assert await engine.deliver_due() == 0


async def test_final_failure_pauses_a_recurring_cue_and_alerts_the_users_alert_webhook(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/hook", 404)
        auth = await new_user(client)
        cue = await create_cue(
            client,
            auth,
            clock,
            receiver.url(),
            schedule={"type": "recurring", "cron": "*/5 * * * *"},
            retry={"max_attempts": 1, "backoff_minutes": []},
            on_failure={"pause": True},
        )
        user = await engine.principal(auth["Authorization"].split()[1])
        async with engine.store.tx() as tx:
            await tx.update_user(user.user_id, {"alert_webhook_url": receiver.url("/mine")})

        await fire(engine, clock, seconds=300)

        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "failed"
        assert execution["error_message"] == "Webhook endpoint not found (404)"
        cue_now = (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()
        assert cue_now["status"] == "paused"
        assert cue_now["next_run"] is None
        [notice] = receiver.to("/mine")
        secret = await engine.alert_webhook_secret(user)
        assert verifies(notice, secret)
        assert json.loads(notice.body)["last_http_status"] == 404


async def test_a_timeout_is_a_failed_attempt(database_url: str, clock: FakeClock) -> None:
    async with (
        Receiver(delay=3) as receiver,
        open_engine(database_url, clock, webhook_timeout_seconds=0.5) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        cue = await create_cue(
            client, auth, clock, receiver.url(), retry={"max_attempts": 2, "backoff_minutes": [1]}
        )

        await fire(engine, clock)

        assert len(receiver.requests) == 1
        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "retrying"
        assert execution["error_message"] == "Webhook endpoint timed out"
        assert execution["http_status"] is None


async def test_a_refused_connection_is_a_failed_attempt(
    database_url: str, clock: FakeClock
) -> None:
    from tests.server import free_port

    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        url = f"http://127.0.0.1:{free_port()}/hook"
        cue = await create_cue(client, auth, clock, url, retry={"max_attempts": 1})

        await fire(engine, clock)

        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "failed"
        assert execution["error_message"] == "Could not connect to webhook endpoint"
        assert execution["http_status"] is None


async def test_a_pending_retry_survives_a_restart_and_is_delivered_once(
    database_url: str, clock: FakeClock
) -> None:
    async with Receiver() as receiver:
        receiver.reply("/hook", 503, 200)
        async with open_engine(database_url, clock) as engine, api(engine) as client:
            auth = await new_user(client)
            cue = await create_cue(
                client,
                auth,
                clock,
                receiver.url(),
                retry={"max_attempts": 3, "backoff_minutes": [10]},
            )
            await fire(engine, clock)
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == "retrying"
            assert execution["error_message"] == "Webhook endpoint server error (503)"

        async with open_engine(database_url, clock) as engine, api(engine) as client:
            clock.advance(minutes=9)
            assert await engine.deliver_due() == 0
            clock.advance(minutes=1)
            assert await engine.deliver_due() == 1
            assert await engine.deliver_due() == 0
            clock.advance(hours=1)
            assert await engine.deliver_due() == 0

            assert [r.headers["x-cueapi-attempt"] for r in receiver.requests] == ["1", "2"]
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == "success"
            assert execution["attempts"] == 2


async def test_a_delivery_interrupted_by_a_crash_is_retried_after_its_lease(
    database_url: str, clock: FakeClock
) -> None:
    async with Receiver() as receiver:
        async with open_engine(database_url, clock) as engine, api(engine) as client:
            auth = await new_user(client)
            cue = await create_cue(client, auth, clock, receiver.url(), retry={"max_attempts": 3})
            clock.advance(60)
            await engine.fire_due()
            # What the dispatcher does before sending; then the process dies.
            now = clock.now()
            lease = now + timedelta(seconds=engine.transports["webhook"].lease_seconds)
            async with engine.store.tx() as tx:
                claimed = await tx.claim_deliveries(
                    "webhook", move(Event.CLAIM), now, 10, {"lease_expires_at": lease}
                )
            assert len(claimed) == 1

        async with open_engine(database_url, clock) as engine, api(engine) as client:
            assert await engine.deliver_due() == 0
            clock.advance(seconds=engine.transports["webhook"].lease_seconds)
            assert await engine.deliver_due() == 0
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == "retrying"
            assert execution["error_message"] == INTERRUPTED
            assert execution["attempts"] == 1

            clock.advance(minutes=1)
            assert await engine.deliver_due() == 1
            [request] = receiver.requests
            assert request.headers["x-cueapi-attempt"] == "2"
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == "success"


async def test_a_reported_outcome_does_not_change_the_delivery_status(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        receiver.reply("/retry", 500)
        auth = await new_user(client)
        delivered = await create_cue(client, auth, clock, receiver.url())
        retrying = await create_cue(client, auth, clock, receiver.url("/retry"))
        await fire(engine, clock)

        for cue, status in ((delivered, "success"), (retrying, "retrying")):
            [execution] = await executions_of(client, auth, cue["id"])
            response = await client.post(
                f"/v1/executions/{execution['id']}/outcome",
                json={"success": False, "error": "handler broke"},
                headers=auth,
            )
            assert response.status_code == 200, response.text
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == status
            assert execution["outcome"]["success"] is False


async def test_deliveries_in_flight_are_bounded(database_url: str, clock: FakeClock) -> None:
    async with (
        Receiver(delay=0.15) as receiver,
        open_engine(database_url, clock, delivery_concurrency=2) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        for _ in range(5):
            await create_cue(client, auth, clock, receiver.url())

        assert await fire(engine, clock) == 5

        assert len(receiver.requests) == 5
        assert receiver.most_in_flight == 2


async def test_the_running_engine_delivers_as_soon_as_a_cue_fires(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        cue = await create_cue(client, auth, clock, receiver.url())
        await engine.start()

        clock.advance(60)

        await eventually(lambda: _delivered(client, auth, cue["id"]), timeout=5)
        assert len(receiver.requests) == 1


async def _delivered(client, auth, cue_id: str) -> bool:  # type: ignore[no-untyped-def]
    executions = await executions_of(client, auth, cue_id)
    return bool(executions) and executions[0]["status"] == "success"


def test_retry_waits_follow_the_backoff_list() -> None:
    assert retry_wait([1, 5, 15], 1) == timedelta(minutes=1)
    assert retry_wait([1, 5, 15], 2) == timedelta(minutes=5)
    assert retry_wait([1, 5, 15], 9) == timedelta(minutes=15)
    assert retry_wait([], 3) == timedelta(minutes=1)
    assert retry_wait([0], 1) == timedelta(0)
    assert retry_wait([2], 1, jitter_seconds=30, rand=lambda: 0.5) == timedelta(
        minutes=2, seconds=15
    )


async def test_two_nodes_deliver_each_execution_exactly_once(
    database_url: str, clock: FakeClock
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("several nodes on one database is the PostgreSQL deployment")
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as one,
        open_engine(database_url, clock) as two,
        api(one) as client,
    ):
        auth = await new_user(client)
        for _ in range(12):
            await create_cue(client, auth, clock, receiver.url())
        clock.advance(60)
        await one.fire_due()

        made = await asyncio.gather(one.deliver_due(), two.deliver_due())

        assert sum(made) == 12
        ids = [r.headers["x-cueapi-execution-id"] for r in receiver.requests]
        assert len(ids) == len(set(ids)) == 12
