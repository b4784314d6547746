"""The rate limiter cannot be walked around: it counts exactly what authenticated (or the
client address when nothing did), and believes proxy headers only from configured proxies."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import make_settings, register
from tests.server import cueflow_server


@pytest.fixture
async def limited(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app whose keys may make 5 requests a minute (anonymous callers 3)."""
    settings = make_settings(
        database_url, rate_limit_per_minute=5, rate_limit_anonymous_per_minute=3
    )
    engine = Engine(settings, clock=clock)
    await engine.open()
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as client:
        yield client
    await engine.close()


@pytest.mark.parametrize("suffix", [b"\xa0", b"\x85", b"\xa0\x85"])
async def test_a_key_with_trailing_unicode_whitespace_gets_no_budget_of_its_own(
    limited: httpx.AsyncClient, suffix: bytes
) -> None:
    key = (await register(limited))["Authorization"].encode()
    for _ in range(5):
        assert (await limited.get("/v1/cues", headers={"Authorization": key})).status_code == 200
    variant = await limited.get("/v1/cues", headers={"Authorization": key + suffix})
    assert variant.status_code in (401, 429)  # never a fresh budget for the same key


async def test_made_up_keys_on_registration_count_against_the_address(
    limited: httpx.AsyncClient,
) -> None:
    codes = []
    for n in range(6):
        made_up = {"Authorization": f"Bearer cue_sk_{secrets.token_hex(16)}"}
        body = {"email": f"walk{n}@example.com"}
        codes.append(
            (await limited.post("/v1/auth/register", json=body, headers=made_up)).status_code
        )
    # all six count against the address, whatever key they carry
    assert codes == [201] * 3 + [429] * 3


async def test_probing_existing_emails_is_refused_past_the_anonymous_limit(
    limited: httpx.AsyncClient,
) -> None:
    codes = []
    for _ in range(6):
        made_up = {"Authorization": f"Bearer cue_sk_{secrets.token_hex(16)}"}
        body = {"email": "taken@example.com"}
        codes.append(
            (await limited.post("/v1/auth/register", json=body, headers=made_up)).status_code
        )
    assert codes == [201, 409, 409, 429, 429, 429]


async def test_a_valid_key_on_an_anonymous_route_counts_against_the_address(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)  # 1 of the address's 3
    codes = []
    for n in range(4):
        body = {"email": f"keyed{n}@example.com"}
        codes.append((await limited.post("/v1/auth/register", json=body, headers=auth)).status_code)
    assert codes == [201, 201, 429, 429]
    # the key's own budget is untouched
    assert (await limited.get("/v1/cues", headers=auth)).headers["X-RateLimit-Remaining"] == "4"


def test_forwarded_for_is_ignored_unless_the_peer_is_a_configured_proxy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    env = {"CUEFLOW_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "3"}
    with cueflow_server(url, tmp_path, **env) as base, httpx.Client(base_url=base) as client:
        codes = [
            client.post(
                "/v1/auth/register",
                json={"email": f"xff{n}@example.com"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(5)
        ]
    assert codes == [201] * 3 + [429] * 2


def test_forwarded_for_is_believed_from_a_configured_proxy(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cueflow.db'}"
    env = {
        "CUEFLOW_RATE_LIMIT_ANONYMOUS_PER_MINUTE": "3",
        "CUEFLOW_FORWARDED_ALLOW_IPS": "127.0.0.1",
    }
    with cueflow_server(url, tmp_path, **env) as base, httpx.Client(base_url=base) as client:
        codes = [
            client.post(
                "/v1/auth/register",
                json={"email": f"proxied{n}@example.com"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(5)
        ]
    assert codes == [201] * 5  # each client behind the proxy has its own budget
