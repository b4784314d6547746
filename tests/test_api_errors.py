"""The error envelope and request-parsing rules shared by every endpoint (contract §1.2-1.4)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import assert_error, assert_validation_error, cue_body

JSON = {"Content-Type": "application/json"}
INVALID_JSON = "Request body is not valid JSON"


@pytest.mark.parametrize(
    "path",
    ["/v1/cues", "/v1/auth/register", "/v1/worker/heartbeat", "/v1/executions/claim"],
)
async def test_malformed_json_is_400_invalid_json_even_without_auth(
    client: httpx.AsyncClient, path: str
):
    response = await client.post(path, content=b'{"name": ', headers=JSON)

    assert_error(response, 400, "invalid_json", INVALID_JSON)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2", b"\xff\xfe", b"{'a': 1}"])
async def test_any_unparseable_json_body_is_400(client: httpx.AsyncClient, content: bytes):
    response = await client.post("/v1/cues", content=content, headers=JSON)

    assert_error(response, 400, "invalid_json", INVALID_JSON)


async def test_malformed_json_is_400_with_auth_too(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.post("/v1/cues", content=b"{,}", headers={**auth, **JSON})

    assert_error(response, 400, "invalid_json", INVALID_JSON)


async def test_malformed_json_on_patch_is_400(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.patch(
        "/v1/cues/cue_abcdefghijkl", content=b"{oops", headers={**auth, **JSON}
    )

    assert_error(response, 400, "invalid_json", INVALID_JSON)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/cues", {"name": 5}),
        ("/v1/cues", {}),
        ("/v1/worker/heartbeat", {"handlers": "x"}),
        ("/v1/executions/claim", {}),
        ("/v1/executions/00000000-0000-4000-8000-000000000000/outcome", {"success": "maybe"}),
    ],
)
async def test_schema_invalid_body_without_auth_is_401(
    client: httpx.AsyncClient, path: str, body: dict[str, Any]
):
    response = await client.post(path, json=body)

    assert_error(response, 401, "invalid_api_key", "Missing or invalid Authorization header")


async def test_validation_error_lists_every_failure_and_names_the_first(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    body = cue_body(name="n" * 300, retry={"max_attempts": 99})

    response = await client.post("/v1/cues", json=body, headers=auth)

    error = assert_validation_error(response, "body.name")
    assert set(error) == {"code", "message", "status", "details"}
    fields = [d["field"] for d in error["details"]]
    assert fields == ["body.name", "body.retry.max_attempts"]
    first = error["details"][0]
    assert error["message"] == f"{first['field']}: {first['message']}"
    assert error["details"][1]["message"] == "Input should be less than or equal to 10"


async def test_query_validation_error_names_the_query_parameter(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await client.get("/v1/cues", params={"limit": 0}, headers=auth)

    error = assert_validation_error(response, "query.limit")
    assert error["message"] == "query.limit: Input should be greater than or equal to 1"
    assert error["details"] == [
        {"field": "query.limit", "message": "Input should be greater than or equal to 1"}
    ]


async def test_body_that_is_not_an_object_is_422(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.post("/v1/worker/heartbeat", json=["w1"], headers=auth)

    assert_validation_error(response, "body")


async def test_callback_url_with_bad_scheme_is_422(client: httpx.AsyncClient, auth: dict[str, str]):
    body = cue_body(callback={"url": "ftp://example.com/x"})

    response = await client.post("/v1/cues", json=body, headers=auth)

    error = assert_validation_error(response, "body.callback.url")
    assert error["message"] == "body.callback.url: URL scheme should be 'http' or 'https'"


async def test_unknown_path_is_404_http_error(client: httpx.AsyncClient, auth: dict[str, str]):
    for headers in ({}, auth):
        response = await client.get("/v1/nothing-here", headers=headers)

        assert response.status_code == 404
        assert response.json() == {
            "error": {"code": "http_error", "message": "Not Found", "status": 404}
        }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/v1/cues"),
        ("DELETE", "/v1/cues"),
        ("POST", "/v1/workers"),
        ("GET", "/v1/worker/heartbeat"),
        ("GET", "/v1/auth/register"),
        ("PUT", "/v1/executions/00000000-0000-4000-8000-000000000000"),
    ],
)
async def test_wrong_method_is_405_http_error(client: httpx.AsyncClient, method: str, path: str):
    response = await client.request(method, path)

    assert response.status_code == 405
    assert response.json() == {
        "error": {"code": "http_error", "message": "Method Not Allowed", "status": 405}
    }


async def test_error_responses_are_json(client: httpx.AsyncClient):
    response = await client.get("/v1/cues")

    assert response.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/v1/cues", {}),
        ("GET", "/v1/nope", {}),
        ("DELETE", "/v1/cues", {}),
        ("POST", "/v1/cues", {"content": b"{", "headers": JSON}),
        ("POST", "/v1/auth/register", {"json": {"email": "x"}}),
        ("GET", "/v1/cues?limit=1000", {"auth": True}),
        ("GET", "/v1/cues/cue_unknown00000", {"auth": True}),
        ("GET", "/v1/executions/not-a-uuid", {"auth": True}),
        ("GET", "/v1/executions?status=a&status__in=b", {"auth": True}),
        ("POST", "/v1/executions/claim", {"auth": True, "json": {"worker_id": "w"}}),
        ("DELETE", "/v1/workers/ghost", {"auth": True}),
        ("POST", "/v1/cues", {"auth": True, "json": cue_body(schedule={"type": "x"})}),
    ],
)
async def test_every_error_body_is_an_envelope_with_code_message_and_status(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, Any],
):
    headers = dict(kwargs.pop("headers", {}))
    if kwargs.pop("auth", False):
        headers.update(auth)

    response = await client.request(method, path, headers=headers, **kwargs)

    assert 400 <= response.status_code < 500
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["error"]
    error = body["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert error["status"] == response.status_code
    assert set(error) <= {"code", "message", "status", "details"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/cues/cue_%00abc", None),
        ("PATCH", "/v1/cues/cue_%00abc", {}),
        ("DELETE", "/v1/cues/cue_%00abc", None),
        ("GET", "/v1/cues?status=a%00", None),
        ("GET", "/v1/executions?cue_id=a%00", None),
        ("GET", "/v1/executions?status=a%00", None),
        ("GET", "/v1/executions?worker_id=a%00", None),
        ("GET", "/v1/executions/claimable?task=a%00", None),
        ("DELETE", "/v1/workers/a%00", None),
        ("POST", "/v1/worker/heartbeat", {"worker_id": "a\x00"}),
        ("POST", "/v1/executions/claim", {"worker_id": "a\x00"}),
        ("POST", "/v1/cues", cue_body(name="a\x00")),
        ("POST", "/v1/cues", cue_body(description="a\x00")),
        ("POST", "/v1/cues", cue_body(callback={"headers": {"X-A": "\x00"}})),
    ],
)
async def test_nul_character_in_any_input_is_not_a_500(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
):
    """PostgreSQL refuses NUL in text: such input must be a 4xx (or nothing found), never a 500
    (DESIGN §8). The contract's payload NUL check (§2.2.1) exists for the same reason."""
    response = await client.request(method, path, json=body, headers=auth)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["error"]["code"])


async def test_request_body_over_one_mebibyte_is_413(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """Contract §1.2/§1.3: the body-size middleware answers 413 on every path."""
    body = {"worker_id": "w1", "handlers": ["h" * 1000] * 1100}

    response = await client.post("/v1/worker/heartbeat", json=body, headers=auth)

    assert_error(response, 413, "request_too_large", "Request body exceeds 1048576 bytes")


async def test_every_response_carries_a_fresh_request_id(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """Contract §1.3: ``X-Request-Id`` (a new UUID per response, incoming values ignored)."""
    first = await client.get("/v1/cues", headers={**auth, "X-Request-Id": "mine"})
    second = await client.get("/v1/nothing-here")

    ids = [r.headers.get("x-request-id") for r in (first, second)]
    assert all(ids), ids
    assert len(set(ids)) == 2
    assert "mine" not in ids
