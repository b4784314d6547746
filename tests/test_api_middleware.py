"""Cross-cutting HTTP behaviour: rate limits, CORS, verify-echo, request ids, body limit."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from cueflow.api import create_app
from cueflow.api.ratelimit import SlidingWindow
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import make_settings, register


@pytest.fixture
async def limited(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose keys may make 5 requests a minute (anonymous callers 3)."""
    settings = make_settings(
        database_url, rate_limit_per_minute=5, rate_limit_anonymous_per_minute=3
    )
    engine = Engine(settings, clock=clock)
    await engine.open()
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as client:
        yield client
    await engine.close()


async def test_keyed_requests_carry_rate_limit_headers_and_get_429_past_the_limit(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    remaining = []
    for _ in range(5):
        response = await limited.get("/v1/cues", headers=auth)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Limit"] == "5"
        assert int(response.headers["X-RateLimit-Reset"]) > 0
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = await limited.get("/v1/cues", headers=auth)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["status"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining"] == "0"


async def test_each_key_has_its_own_budget(limited: httpx.AsyncClient) -> None:
    first, second = await register(limited), await register(limited)
    for _ in range(5):
        await limited.get("/v1/cues", headers=first)
    assert (await limited.get("/v1/cues", headers=first)).status_code == 429
    assert (await limited.get("/v1/cues", headers=second)).status_code == 200


async def test_invalid_key_floods_are_limited_too(limited: httpx.AsyncClient) -> None:
    bad = {"Authorization": "Bearer cue_sk_" + "0" * 32}
    codes = [(await limited.get("/v1/cues", headers=bad)).status_code for _ in range(7)]
    assert codes[:3] == [401] * 3  # the address's budget of failures (the anonymous limit)
    assert codes[3:] == [429] * 4


async def test_health_paths_are_exempt(limited: httpx.AsyncClient) -> None:
    for _ in range(10):
        response = await limited.get("/openapi.json")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers


def test_sliding_window_frees_capacity_as_the_minute_passes() -> None:
    now = [0.0]
    window = SlidingWindow(limit=2, clock=lambda: now[0])
    assert window.hit("k").allowed and window.hit("k").allowed
    refused = window.hit("k")
    assert not refused.allowed and 1 <= refused.retry_after <= 60
    now[0] = 61.0  # next minute: the previous one still weighs (59/60) * 2
    assert not window.hit("k").allowed
    now[0] = 90.0  # half of the previous minute's hits have decayed
    assert window.hit("k").allowed
    now[0] = 200.0
    assert window.hit("k").remaining == 1


async def test_cors_preflight_allows_any_origin_and_exposes_the_headers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/v1/cues",
        headers={
            "Origin": "https://dashboard.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://dashboard.example"
    simple = await client.get("/v1/cues", headers={"Origin": "https://dashboard.example"})
    assert "X-Request-Id" in simple.headers["access-control-expose-headers"]


async def test_verify_echo_returns_the_body_and_its_canonical_hash(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await client.post("/v1/worker/heartbeat", headers=auth, json={"worker_id": "w"})
    body = {"worker_id": "w", "handlers": ["é"]}
    response = await client.post(
        "/v1/worker/heartbeat",
        headers={**auth, "X-CueAPI-Verify-Echo": " TRUE ", "Content-Type": "application/json"},
        content=json.dumps(body),
    )
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["acknowledged"] is True
    assert echoed["body_received"] == body
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert echoed["body_received_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert int(response.headers["content-length"]) == len(response.content)


async def test_verify_echo_is_opt_in_and_skips_errors_and_reads(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    plain = await client.post("/v1/worker/heartbeat", headers=auth, json={"worker_id": "w"})
    assert "body_received" not in plain.json()
    echo = {**auth, "X-CueAPI-Verify-Echo": "true"}
    failed = await client.post("/v1/worker/heartbeat", headers=echo, json={})
    assert failed.status_code == 422 and "body_received" not in failed.json()
    read = await client.get("/v1/workers", headers=echo)
    assert "body_received" not in read.json()


async def test_every_response_has_a_fresh_request_id(client: httpx.AsyncClient) -> None:
    first, second = await client.get("/v1/cues"), await client.get("/nope")
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


async def test_bodies_over_one_mebibyte_get_413_even_when_streamed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b" " * 65536

    response = await client.post("/v1/cues", headers=auth, content=chunks())
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "request_too_large",
        "message": "Request body exceeds 1048576 bytes",
        "status": 413,
    }


async def test_nul_in_a_query_string_is_a_400(client: httpx.AsyncClient, auth: dict) -> None:
    response = await client.get("/v1/cues?status=a%00b", headers=auth)
    assert response.status_code == 400
