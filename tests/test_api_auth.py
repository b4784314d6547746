"""Registration and bearer-key authentication (contract §1.1, §2.1.1)."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import assert_error, assert_validation_error

MISSING_HEADER = "Missing or invalid Authorization header"


async def test_register_returns_201_with_only_api_key_and_email(client: httpx.AsyncClient):
    response = await client.post("/v1/auth/register", json={"email": "ada@example.com"})

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"api_key", "email"}
    assert re.fullmatch(r"cue_sk_[0-9a-f]{32}", body["api_key"])
    assert body["email"] == "ada@example.com"


async def test_register_ignores_unknown_fields(client: httpx.AsyncClient):
    response = await client.post(
        "/v1/auth/register", json={"email": "ben@example.com", "plan": "pro", "name": "Ben"}
    )

    assert response.status_code == 201
    assert set(response.json()) == {"api_key", "email"}


async def test_register_strips_the_email_and_lower_cases_its_domain_only(client: httpx.AsyncClient):
    response = await client.post("/v1/auth/register", json={"email": "  Grace.Hopper@Example.COM "})

    assert response.status_code == 201
    assert response.json()["email"] == "Grace.Hopper@example.com"


async def test_each_registration_gets_a_different_key(client: httpx.AsyncClient):
    first = await client.post("/v1/auth/register", json={"email": "a1@example.com"})
    second = await client.post("/v1/auth/register", json={"email": "a2@example.com"})

    assert first.json()["api_key"] != second.json()["api_key"]


async def test_duplicate_email_is_rejected_with_409(client: httpx.AsyncClient):
    await client.post("/v1/auth/register", json={"email": "dup@example.com"})

    response = await client.post("/v1/auth/register", json={"email": "dup@example.com"})

    assert_error(response, 409, "duplicate_email", "Email already registered")


async def test_duplicate_is_detected_after_domain_normalisation(client: httpx.AsyncClient):
    await client.post("/v1/auth/register", json={"email": "case@example.com"})

    response = await client.post("/v1/auth/register", json={"email": "case@EXAMPLE.com"})

    assert_error(response, 409, "duplicate_email", "Email already registered")


@pytest.mark.parametrize("email", ["not-an-email", "", "a@", "@example.com"])
async def test_invalid_email_is_rejected_with_422_and_details(
    client: httpx.AsyncClient, email: str
):
    response = await client.post("/v1/auth/register", json={"email": email})

    assert_validation_error(response, "body.email")


async def test_missing_email_is_rejected_with_422(client: httpx.AsyncClient):
    response = await client.post("/v1/auth/register", json={})

    error = assert_validation_error(response, "body.email")
    assert error["message"] == "body.email: Field required"
    assert error["details"] == [{"field": "body.email", "message": "Field required"}]


async def test_registered_key_authenticates(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.get("/v1/cues", headers=auth)

    assert response.status_code == 200


async def test_missing_authorization_header_is_rejected_with_401(client: httpx.AsyncClient):
    response = await client.get("/v1/cues")

    assert_error(response, 401, "invalid_api_key", MISSING_HEADER)


@pytest.mark.parametrize(
    "value",
    [
        "cue_sk_0123456789abcdef0123456789abcdef",
        "Basic dXNlcjpwYXNz",
        "Token cue_sk_0123456789abcdef0123456789abcdef",
        "bearer cue_sk_0123456789abcdef0123456789abcdef",
        "BEARER cue_sk_0123456789abcdef0123456789abcdef",
        "Bearer",
        "",
    ],
)
async def test_header_not_starting_with_bearer_space_is_rejected_with_401(
    client: httpx.AsyncClient, value: str
):
    response = await client.get("/v1/cues", headers={"Authorization": value})

    assert_error(response, 401, "invalid_api_key", MISSING_HEADER)


async def test_real_key_without_bearer_prefix_is_rejected(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    key = auth["Authorization"].removeprefix("Bearer ")

    for value in (key, f"bearer {key}", f"Token {key}"):
        response = await client.get("/v1/cues", headers={"Authorization": value})
        assert_error(response, 401, "invalid_api_key", MISSING_HEADER)


async def test_unknown_api_key_is_rejected_with_401(client: httpx.AsyncClient):
    headers = {"Authorization": "Bearer cue_sk_0123456789abcdef0123456789abcdef"}

    response = await client.get("/v1/cues", headers=headers)

    assert_error(response, 401, "invalid_api_key", "Invalid API key")


async def test_altered_api_key_is_rejected_with_401(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    key = auth["Authorization"].removeprefix("Bearer ")
    altered = key[:-1] + ("0" if key[-1] != "0" else "1")

    response = await client.get("/v1/cues", headers={"Authorization": f"Bearer {altered}"})

    assert_error(response, 401, "invalid_api_key", "Invalid API key")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/cues"),
        ("GET", "/v1/cues"),
        ("GET", "/v1/cues/cue_abcdefghijkl"),
        ("PATCH", "/v1/cues/cue_abcdefghijkl"),
        ("DELETE", "/v1/cues/cue_abcdefghijkl"),
        ("GET", "/v1/executions"),
        ("GET", "/v1/executions/claimable"),
        ("GET", "/v1/executions/00000000-0000-4000-8000-000000000000"),
        ("POST", "/v1/executions/claim"),
        ("POST", "/v1/executions/00000000-0000-4000-8000-000000000000/claim"),
        ("POST", "/v1/executions/00000000-0000-4000-8000-000000000000/heartbeat"),
        ("POST", "/v1/executions/00000000-0000-4000-8000-000000000000/outcome"),
        ("POST", "/v1/worker/heartbeat"),
        ("GET", "/v1/workers"),
        ("DELETE", "/v1/workers/w1"),
    ],
)
async def test_every_core_endpoint_requires_a_key(
    client: httpx.AsyncClient, method: str, path: str
):
    response = await client.request(method, path)

    assert_error(response, 401, "invalid_api_key", MISSING_HEADER)
