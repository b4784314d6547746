"""The echo receiver (contract §2.7): ``POST /v1/echo/{token}`` without credentials, ``GET`` with,
on both stores; and the CLI ``quickstart`` round trip through a real ``cueflow serve``."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from cueflow.clock import FakeClock
from tests.helpers import OFFSET_DATETIME, assert_error
from tests.server import cueflow_server

TOKEN = "qs-0123456789abcdef"


async def test_a_stored_body_is_delivered_with_its_headers(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    response = await client.post(
        f"/v1/echo/{TOKEN}",
        json={"message": "hi", "n": [1, 2]},
        headers={"X-CueAPI-Signature": "v1=abc", "Authorization": "Bearer secret"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": True}
    read = await client.get(f"/v1/echo/{TOKEN}", headers=auth)
    assert read.status_code == 200, read.text
    body = read.json()
    assert set(body) == {"status", "payload", "headers", "received_at"}
    assert body["status"] == "delivered"
    assert body["payload"] == {"message": "hi", "n": [1, 2]}
    assert body["headers"]["x-cueapi-signature"] == "v1=abc"
    assert "authorization" not in body["headers"]
    assert OFFSET_DATETIME.match(body["received_at"])
    assert datetime.fromisoformat(body["received_at"]) == clock.now()


async def test_an_unknown_token_is_waiting(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/echo/nothing-stored-here", headers=auth)
    assert response.status_code == 200
    assert response.json() == {"status": "waiting"}


async def test_a_message_expires_after_five_minutes(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    await client.post(f"/v1/echo/{TOKEN}", json={"a": 1})
    clock.advance(300)
    assert (await client.get(f"/v1/echo/{TOKEN}", headers=auth)).json()["status"] == "delivered"
    clock.advance(1)
    assert (await client.get(f"/v1/echo/{TOKEN}", headers=auth)).json() == {"status": "waiting"}


async def test_a_second_store_replaces_the_first(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post(f"/v1/echo/{TOKEN}", json={"first": True})
    await client.post(f"/v1/echo/{TOKEN}", json=["second"])
    assert (await client.get(f"/v1/echo/{TOKEN}", headers=auth)).json()["payload"] == ["second"]


async def test_any_json_value_is_accepted_and_nul_characters_are_dropped(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post(f"/v1/echo/{TOKEN}", content=b'"a\\u0000b"')
    assert (await client.get(f"/v1/echo/{TOKEN}", headers=auth)).json()["payload"] == "ab"
    await client.post(f"/v1/echo/{TOKEN}", content=b"null")
    body = (await client.get(f"/v1/echo/{TOKEN}", headers=auth)).json()
    assert body["status"] == "delivered"
    assert body["payload"] is None


async def test_a_short_or_overlong_token_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/echo/short-token", json={})
    assert_error(response, 400, "invalid_token", "Token must be at least 16 characters")
    response = await client.post(f"/v1/echo/{'t' * 256}", json={})
    assert_error(response, 400, "invalid_token")


async def test_a_body_that_is_not_json_is_400_not_500(client: httpx.AsyncClient) -> None:
    for content in (b"not json", b""):
        response = await client.post(f"/v1/echo/{TOKEN}", content=content)
        assert_error(response, 400, "invalid_json", "Request body is not valid JSON")


async def test_a_body_over_a_million_bytes_is_413(client: httpx.AsyncClient) -> None:
    content = b'"' + b"x" * 1_000_000 + b'"'
    response = await client.post(f"/v1/echo/{TOKEN}", content=content)
    assert_error(response, 413, "payload_too_large", "Echo payload must be under 1MB")


async def test_reading_needs_credentials(client: httpx.AsyncClient) -> None:
    await client.post(f"/v1/echo/{TOKEN}", json={"a": 1})
    assert_error(await client.get(f"/v1/echo/{TOKEN}"), 401, "invalid_api_key")


def test_quickstart_round_trip_through_a_real_server(tmp_path: Path) -> None:
    """What ``cueapi quickstart`` does: a one-time webhook cue calling the server's own echo
    endpoint, polled until the delivery shows up."""
    database = f"sqlite:///{tmp_path / 'cueflow.db'}"
    with (
        cueflow_server(database, tmp_path, CUEFLOW_ALLOW_PRIVATE_WEBHOOKS="true") as base,
        httpx.Client(base_url=f"{base}/v1", timeout=10) as client,
    ):
        key = client.post("/auth/register", json={"email": "qs@example.com"}).json()
        auth = {"Authorization": f"Bearer {key['api_key']}"}
        token = f"qs-{secrets.token_hex(8)}"
        at = datetime.now(UTC) + timedelta(seconds=2)
        created = client.post(
            "/cues",
            headers=auth,
            json={
                "name": "quickstart-test",
                "schedule": {"type": "once", "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
                "callback": {"url": f"{base}/v1/echo/{token}", "method": "POST"},
                "payload": {"message": "Your first cue! CueAPI is working."},
            },
        )
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + 30
        while True:
            echoed = client.get(f"/echo/{token}", headers=auth).json()
            if echoed["status"] == "delivered" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert echoed["status"] == "delivered", echoed
        assert echoed["payload"]["payload"] == {"message": "Your first cue! CueAPI is working."}
        assert echoed["headers"]["x-cueapi-cue-id"] == created.json()["id"]
        deleted = client.delete(f"/cues/{created.json()['id']}", headers=auth)
        assert deleted.status_code == 204
