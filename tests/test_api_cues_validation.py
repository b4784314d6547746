"""What ``POST /v1/cues`` refuses, with which error and in which order (contract §2.2.1):
transport, retry, name, duplicates, payload, callback method; a refused cue stores nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import make_worker_cue
from tests.helpers import assert_error, assert_validation_error, create_cue, get_cue, list_cues


async def test_transport_inside_callback_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(client, auth, callback={"transport": "worker"})

    error = assert_validation_error(response, "body")
    assert error["message"] == (
        "body: Value error, transport must be specified at the top level, not inside callback"
    )


@pytest.mark.parametrize("transport", ["carrier-pigeon", "WORKER", ""])
async def test_unknown_transport_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], transport: str
):
    response = await create_cue(client, auth, transport=transport)

    error = assert_validation_error(response, "body")
    assert error["message"].startswith("body: Value error, transport must be ")


@pytest.mark.parametrize("attempts", [0, 11, -1])
async def test_retry_max_attempts_out_of_range_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], attempts: int
):
    response = await create_cue(client, auth, retry={"max_attempts": attempts})

    assert_validation_error(response, "body.retry.max_attempts")


@pytest.mark.parametrize("attempts", [1, 10])
async def test_retry_max_attempts_bounds_are_accepted(
    client: httpx.AsyncClient, auth: dict[str, str], attempts: int
):
    cue = await make_worker_cue(client, auth, retry={"max_attempts": attempts})

    assert cue["retry"]["max_attempts"] == attempts


async def test_name_of_255_characters_is_accepted(client: httpx.AsyncClient, auth: dict[str, str]):
    cue = await make_worker_cue(client, auth, name="n" * 255)

    assert cue["name"] == "n" * 255


async def test_name_of_256_characters_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(client, auth, name="n" * 256)

    assert_validation_error(response, "body.name")


async def test_missing_name_and_schedule_are_rejected_with_422_listing_both(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await client.post("/v1/cues", json={"transport": "worker"}, headers=auth)

    error = assert_validation_error(response, "body.name")
    assert {d["field"] for d in error["details"]} == {"body.name", "body.schedule"}


async def test_duplicate_name_is_rejected_with_409(client: httpx.AsyncClient, auth: dict[str, str]):
    await make_worker_cue(client, auth, name="backup")

    response = await create_cue(client, auth, name="backup")

    assert_error(response, 409, "duplicate_cue_name", "A cue named 'backup' already exists")


async def test_duplicate_name_is_checked_before_payload_and_schedule(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """Contract §2.2.1 order of checks: duplicate name (409) before payload and schedule."""
    await make_worker_cue(client, auth, name="backup")

    bad_cron = await create_cue(
        client, auth, name="backup", schedule={"type": "recurring", "cron": "bad"}
    )
    bad_payload = await create_cue(client, auth, name="backup", payload={"x": "\x00"})

    assert_error(bad_cron, 409, "duplicate_cue_name", "A cue named 'backup' already exists")
    assert_error(bad_payload, 409, "duplicate_cue_name", "A cue named 'backup' already exists")


async def test_same_name_is_allowed_for_different_users(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    await make_worker_cue(client, auth, name="backup")

    response = await create_cue(client, other_auth, name="backup")

    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "payload",
    [{"text": "a\x00b"}, {"k\x00": 1}, {"nested": {"list": ["ok", "bad\x00"]}}],
)
async def test_payload_with_nul_is_rejected_with_400(
    client: httpx.AsyncClient, auth: dict[str, str], payload: dict[str, Any]
):
    response = await create_cue(client, auth, payload=payload)

    assert_error(
        response, 400, "invalid_payload", "Payload contains null bytes which are not supported"
    )


async def test_payload_over_one_mebibyte_is_rejected_with_400(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    # Each "1e9" becomes 1000000000.0 once parsed: a ~360 KB request (under the 1 MiB
    # request-body limit of contract §1.3) carrying a payload of ~1.2 MB.
    numbers = ",".join(["1e9"] * 90_000)
    body = (
        '{"name": "big", "transport": "worker", '
        '"schedule": {"type": "recurring", "cron": "*/5 * * * *"}, '
        f'"payload": {{"numbers": [{numbers}]}}}}'
    )
    assert len(body) < 1_048_576

    response = await client.post(
        "/v1/cues", content=body, headers={**auth, "Content-Type": "application/json"}
    )

    assert_error(response, 400, "invalid_payload_size", "Payload must be under 1MB")


async def test_payload_with_an_integer_beyond_64_bits_is_not_a_500(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """JSON allows any integer (CueAPI stores it); cueflow must store it or refuse it with a
    4xx, never crash (DESIGN §8)."""
    response = await create_cue(client, auth, payload={"big": 2**70})

    if response.status_code == 201:
        assert response.json()["payload"] == {"big": 2**70}
        assert (await get_cue(client, auth, response.json()["id"]))["payload"] == {"big": 2**70}
    else:
        assert_error(response, 400, "invalid_payload")


@pytest.mark.parametrize("method", ["VERYLONGMETHODNAME", "TRACE", "DELETE"])
async def test_callback_method_outside_post_get_put_patch_is_rejected(
    client: httpx.AsyncClient, auth: dict[str, str], method: str
):
    """Contract §2.2.1: only POST, GET, PUT, PATCH are storable (CueAPI answers a misleading
    409 ⚠); a method cueflow cannot store must be a 4xx, not a 500 or a silent accept."""
    response = await create_cue(client, auth, callback={"method": method})

    assert response.status_code in (400, 422), response.text
    assert_error(response, response.status_code, response.json()["error"]["code"])


async def test_payload_that_is_not_an_object_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(client, auth, payload=[1, 2, 3])

    assert_validation_error(response, "body.payload")


async def test_rejected_create_stores_nothing(client: httpx.AsyncClient, auth: dict[str, str]):
    await create_cue(client, auth, payload={"text": "\x00"})
    await create_cue(client, auth, schedule={"type": "recurring", "cron": "bad"})

    assert (await list_cues(client, auth)).json()["total"] == 0
