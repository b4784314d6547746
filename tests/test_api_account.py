"""The caller's account (contract §2.1.2 to §2.1.5): ``GET``/``PATCH /v1/auth/me``,
``POST /v1/auth/key/regenerate`` and ``GET /v1/auth/key``, on both stores."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.records import Account
from tests.conftest import make_settings
from tests.factories import due_execution, make_paused_cue, manual_run
from tests.helpers import OFFSET_DATETIME, assert_error, assert_validation_error
from tests.webhook_support import api

ME_KEYS = {
    "email",
    "plan",
    "active_cues",
    "active_cue_limit",
    "executions_this_month",
    "monthly_execution_limit",
    "rate_limit_per_minute",
    "has_webhook_secret",
    "api_key_prefix",
    "slug",
}
CONFIRM = {"X-Confirm-Destructive": "true"}
ROTATED = "This API key has been rotated. Use your new key."


async def me(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/auth/me", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def new_account(client: httpx.AsyncClient, email: str) -> tuple[str, dict[str, str]]:
    response = await client.post("/v1/auth/register", json={"email": email})
    assert response.status_code == 201, response.text
    key = response.json()["api_key"]
    return key, {"Authorization": f"Bearer {key}"}


async def stored_user(engine: Engine, auth: dict[str, str]) -> Account:
    user = await engine.authenticate(auth["Authorization"])
    async with engine.store.tx() as tx:
        account = await tx.get_user(user.user_id)
    assert account is not None
    return account


# GET /v1/auth/me -------------------------------------------------------------------------------
async def test_me_describes_the_account(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    key, auth = await new_account(client, "Some.Body+x@Example.COM")
    body = await me(client, auth)
    assert set(body) == ME_KEYS
    assert body == {
        "email": "Some.Body+x@example.com",
        "plan": "free",
        "active_cues": 0,
        "active_cue_limit": 0,
        "executions_this_month": 0,
        "monthly_execution_limit": 0,
        "rate_limit_per_minute": engine.settings.rate_limit_per_minute,
        "has_webhook_secret": True,
        "api_key_prefix": key[:12],
        "slug": "some-body-x",
    }


async def test_me_counts_active_cues_and_this_months_executions(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await due_execution(client, engine, clock, auth)
    paused = await make_paused_cue(client, auth)
    await manual_run(client, auth, paused["id"])
    body = await me(client, auth)
    assert body["active_cues"] == 1
    assert body["executions_this_month"] == 2


async def test_me_reports_the_configured_limits(database_url: str, clock: FakeClock) -> None:
    settings = make_settings(database_url, active_cue_limit=7, monthly_execution_limit=900)
    async with Engine(settings, clock=clock) as engine, api(engine) as client:
        _, auth = await new_account(client, "limits@example.com")
        body = await me(client, auth)
        assert body["active_cue_limit"] == 7
        assert body["monthly_execution_limit"] == 900


async def test_me_needs_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/auth/me"), 401, "invalid_api_key")


# PATCH /v1/auth/me -----------------------------------------------------------------------------
async def test_email_can_be_changed(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.patch("/v1/auth/me", json={"email": " New@Example.ORG "}, headers=auth)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"updated_at"}
    assert OFFSET_DATETIME.match(response.json()["updated_at"])
    assert (await me(client, auth))["email"] == "New@example.org"


async def test_an_email_taken_by_another_account_is_409(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await new_account(client, "taken@example.com")
    response = await client.patch("/v1/auth/me", json={"email": "taken@example.com"}, headers=auth)
    assert_error(response, 409, "duplicate_email", "Email already registered")


async def test_an_invalid_email_is_a_validation_error(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.patch("/v1/auth/me", json={"email": "not-an-email"}, headers=auth)
    assert_validation_error(response, "body.email")


async def test_alert_webhook_url_is_set_and_cleared(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str]
) -> None:
    url = "https://93.184.216.34/alerts"
    response = await client.patch("/v1/auth/me", json={"alert_webhook_url": url}, headers=auth)
    assert response.status_code == 200, response.text
    assert (await stored_user(engine, auth)).alert_webhook_url == url
    response = await client.patch("/v1/auth/me", json={"alert_webhook_url": ""}, headers=auth)
    assert response.status_code == 200, response.text
    assert (await stored_user(engine, auth)).alert_webhook_url is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest", "Callback URL resolves to blocked address range"),
        ("http://127.0.0.1:8000/x", "Callback URL resolves to blocked address range"),
        ("http://metadata.google.internal/", "Blocked hostname: metadata.google.internal"),
        ("ftp://example.com/", "URL must use http:// or https://"),
        ("https://user:pw@93.184.216.34/", "Credentials in callback URLs are not allowed"),
    ],
)
async def test_alert_webhook_url_passes_the_ssrf_guard(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str], url: str, message: str
) -> None:
    response = await client.patch("/v1/auth/me", json={"alert_webhook_url": url}, headers=auth)
    assert_error(response, 400, "invalid_alert_webhook_url", message)
    assert (await stored_user(engine, auth)).alert_webhook_url is None


@pytest.mark.parametrize(
    "body", [{}, {"email": None}, {"alert_webhook_url": None}, {"plan": "pro", "slug": "x"}]
)
async def test_nothing_to_change_is_422_no_fields(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any]
) -> None:
    response = await client.patch("/v1/auth/me", json=body, headers=auth)
    assert_error(response, 422, "no_fields", "No fields to update")
    assert (await me(client, auth))["plan"] == "free"


async def test_patch_me_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.patch("/v1/auth/me", json={"email": "a@example.com"})
    assert_error(response, 401, "invalid_api_key")


# POST /v1/auth/key/regenerate ------------------------------------------------------------------
async def test_regeneration_needs_the_confirm_header(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for headers in ({}, {"X-Confirm-Destructive": "True"}, {"X-Confirm-Destructive": "yes"}):
        response = await client.post("/v1/auth/key/regenerate", headers={**auth, **headers})
        assert_error(response, 400, "confirmation_required")
    assert (await client.get("/v1/auth/me", headers=auth)).status_code == 200


async def test_regeneration_replaces_the_key_and_the_old_one_answers_key_rotated(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await client.get("/v1/auth/me", headers=auth)).status_code == 200  # cached now
    response = await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"api_key", "previous_key_revoked"}
    assert body["previous_key_revoked"] is True
    assert re.fullmatch(r"cue_sk_[0-9a-f]{32}", body["api_key"])
    new_auth = {"Authorization": f"Bearer {body['api_key']}"}
    assert (await me(client, new_auth))["api_key_prefix"] == body["api_key"][:12]
    assert_error(await client.get("/v1/auth/me", headers=auth), 401, "key_rotated", ROTATED)
    assert_error(await client.get("/v1/cues", headers=auth), 401, "key_rotated", ROTATED)


async def test_a_rotated_key_is_recognised_for_a_day_then_just_invalid(
    client: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str]
) -> None:
    await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})
    clock.advance(hours=23)
    assert_error(await client.get("/v1/auth/me", headers=auth), 401, "key_rotated")
    clock.advance(hours=1, seconds=1)
    response = await client.get("/v1/auth/me", headers=auth)
    assert_error(response, 401, "invalid_api_key", "Invalid API key")


async def test_every_replaced_key_answers_key_rotated(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    second = (await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})).json()
    second_auth = {"Authorization": f"Bearer {second['api_key']}"}
    third = await client.post("/v1/auth/key/regenerate", headers={**second_auth, **CONFIRM})
    assert third.status_code == 200
    for old in (auth, second_auth):
        assert_error(await client.get("/v1/auth/me", headers=old), 401, "key_rotated")


async def test_the_rotation_is_seen_by_another_process_on_the_same_database(
    database_url: str, engine: Engine, clock: FakeClock, client: httpx.AsyncClient
) -> None:
    _, auth = await new_account(client, "two-nodes@example.com")
    other = Engine(make_settings(database_url), clock=clock)
    await other.open()
    try:
        async with api(other) as other_client:
            assert (await other_client.get("/v1/auth/me", headers=auth)).status_code == 200
            regenerated = await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})
            assert regenerated.status_code == 200
            other.auth.forget()  # its cache would keep the old key for auth_cache_seconds
            response = await other_client.get("/v1/auth/me", headers=auth)
            assert_error(response, 401, "key_rotated", ROTATED)
    finally:
        await other.close()


async def test_regeneration_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/auth/key/regenerate", headers=CONFIRM)
    assert_error(response, 401, "invalid_api_key")


# GET /v1/auth/key ------------------------------------------------------------------------------
async def test_reveal_never_returns_the_key(client: httpx.AsyncClient) -> None:
    key, auth = await new_account(client, "reveal@example.com")
    response = await client.get("/v1/auth/key", headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "api_key": None,
        "prefix": key[:12],
        "message": "Key not available. Regenerate to enable Reveal.",
    }
    regenerated = await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})
    new_auth = {"Authorization": f"Bearer {regenerated.json()['api_key']}"}
    body = (await client.get("/v1/auth/key", headers=new_auth)).json()
    assert body["api_key"] is None
    assert body["prefix"] == regenerated.json()["api_key"][:12]


async def test_reveal_needs_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/auth/key"), 401, "invalid_api_key")
