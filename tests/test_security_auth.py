"""API keys and signing secrets: keys are stored only as SHA-256 hashes, looked up by hash and
compared in constant time, never written to a log; floods of bad keys answer 401 and then 429;
the destructive endpoints refuse to act without ``X-Confirm-Destructive: true``."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cueflow import authentication
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Unauthorized
from cueflow.sql.accounts import AccountQueries
from cueflow.sql.tables import metadata
from tests.conftest import make_settings, register
from tests.factories import make_worker_cue
from tests.helpers import assert_error
from tests.server import cueflow_server

CONFIRM = {"X-Confirm-Destructive": "true"}
CONFIRM_MESSAGE = "This action is destructive. Set X-Confirm-Destructive: true header to confirm."


def key_of(auth: dict[str, str]) -> str:
    """The API key in auth headers."""
    return auth["Authorization"].removeprefix("Bearer ")


async def stored_text(engine: Engine) -> str:
    """Every value of every row of every table, as one string."""
    values = []
    async with engine.store.tx() as tx:
        for table in metadata.sorted_tables:
            for row in (await tx.conn.execute(select(table))).all():  # type: ignore[attr-defined]
                values += [str(v) for v in row]
    return "\n".join(values)


async def test_keys_are_stored_only_as_their_sha256(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    old = key_of(auth)
    rotated = await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})
    new = rotated.json()["api_key"]

    stored = await stored_text(engine)

    for key in (old, new):
        assert key not in stored
        assert key[len("cue_sk_") :] not in stored  # not even the random part
    assert hashlib.sha256(new.encode()).hexdigest() in stored
    revealed = await client.get("/v1/auth/key", headers={"Authorization": f"Bearer {new}"})
    assert revealed.json()["api_key"] is None  # a key is never shown twice
    assert revealed.json()["prefix"] == new[:12]


async def test_keys_are_looked_up_by_hash_and_compared_in_constant_time(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups: list[str] = []
    compared: list[tuple[Any, Any]] = []
    by_hash = AccountQueries.user_by_key_hash

    async def spy_lookup(self: AccountQueries, key_hash: str) -> Any:
        lookups.append(key_hash)
        return await by_hash(self, key_hash)

    def spy_compare(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(AccountQueries, "user_by_key_hash", spy_lookup)
    monkeypatch.setattr(authentication, "hmac", SimpleNamespace(compare_digest=spy_compare))
    engine = Engine(make_settings(database_url, auth_cache_seconds=0), clock=clock)
    await engine.open()
    try:
        key = (await engine.register("timing@example.com"))["api_key"]
        principal = await engine.authenticate(f"Bearer {key}")
        near_miss = f"Bearer {key[:-1]}{'0' if key[-1] != '0' else '1'}"
        with pytest.raises(Unauthorized):
            await engine.authenticate(near_miss)
    finally:
        await engine.close()

    digest = hashlib.sha256(key.encode()).hexdigest()
    assert principal.email == "timing@example.com"
    assert lookups[0] == digest  # the store is asked for the hash, never for the key
    assert len(lookups) == 2 and key not in lookups
    assert compared == [(digest, digest)]  # the found row's hash, compared in constant time


async def test_a_made_up_key_flood_answers_401_then_429_even_when_every_key_differs(
    database_url: str, clock: FakeClock
) -> None:
    settings = make_settings(
        database_url, rate_limit_per_minute=100, rate_limit_anonymous_per_minute=5
    )
    engine = Engine(settings, clock=clock)
    await engine.open()
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as client:
        codes = []
        for _ in range(12):
            made_up = {"Authorization": f"Bearer cue_sk_{secrets.token_hex(16)}"}
            codes.append((await client.get("/v1/cues", headers=made_up)).status_code)
        refused = await client.get("/v1/cues", headers={"Authorization": "Bearer nope"})
    other = httpx.ASGITransport(app=app, client=("198.51.100.9", 1234))
    async with httpx.AsyncClient(transport=other, base_url="http://cueflow.test") as client:
        elsewhere = await client.get("/v1/cues", headers={"Authorization": "Bearer nope"})
    await engine.close()

    assert codes[:5] == [401] * 5
    assert codes[5:] == [429] * 7
    assert_error(refused, 429, "rate_limit_exceeded")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert elsewhere.status_code == 401  # another address keeps its own budget


@pytest.mark.parametrize(
    "path",
    [
        "/v1/auth/key/regenerate",
        "/v1/auth/webhook-secret/regenerate",
        "/v1/auth/alert-webhook-secret/regenerate",
    ],
)
async def test_destructive_endpoints_refuse_without_the_confirm_header_and_change_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], path: str
) -> None:
    async def secrets_now() -> list[Any]:
        return [
            (await client.get("/v1/auth/webhook-secret", headers=auth)).json(),
            (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json(),
            (await client.get("/v1/auth/me", headers=auth)).status_code,
        ]

    before = await secrets_now()
    for confirm in (None, "false", "TRUE", "True", "yes", "1", " true", "true ", ""):
        headers = dict(auth) if confirm is None else {**auth, "X-Confirm-Destructive": confirm}
        response = await client.post(path, headers=headers)
        assert_error(response, 400, "confirmation_required", CONFIRM_MESSAGE)
    assert await secrets_now() == before

    done = await client.post(path, headers={**auth, **CONFIRM})
    assert done.status_code == 200, done.text


def secrets_in(values: list[str]) -> list[str]:
    """Every secret and its random part (the part after a ``cue_sk_``/``whsec_`` prefix)."""
    found = []
    for value in values:
        found += [value, value.split("_")[-1]]
    return found


async def test_no_key_or_secret_reaches_the_log_at_debug_level(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = await register(client, "logged@example.com")
    key = key_of(auth)
    await make_worker_cue(client, auth)
    whsec = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()["webhook_secret"]
    alert = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
    rotated = await client.post("/v1/auth/webhook-secret/regenerate", headers={**auth, **CONFIRM})
    new_key = (await client.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM})).json()
    old_key_use = await client.get("/v1/cues", headers=auth)  # 401 key_rotated
    wrong = f"cue_sk_{secrets.token_hex(16)}"
    await client.get("/v1/cues", headers={"Authorization": f"Bearer {wrong}"})
    await client.get("/v1/cues", headers={"Authorization": f"Bearer {key}x"})

    assert old_key_use.status_code == 401
    leaked = secrets_in(
        [
            key,
            wrong,
            new_key["api_key"],
            whsec,
            alert["alert_webhook_secret"],
            rotated.json()["webhook_secret"],
        ]
    )
    logged = caplog.text + "\n".join(repr(r.__dict__) for r in caplog.records)
    assert caplog.records  # the flows above do log; the check is not vacuous
    for secret in leaked:
        assert secret not in logged


@pytest.fixture
def server_log(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``cueflow serve`` at debug level (SQLite), with its log in a file."""
    log = tmp_path / "server.log"
    with (
        log.open("w") as stderr,
        cueflow_server(
            f"sqlite:///{tmp_path / 'cueflow.db'}", tmp_path, log_level="debug", stderr=stderr
        ) as base,
    ):
        yield base, log


def test_a_real_server_at_debug_level_logs_no_key_or_secret(
    server_log: tuple[str, Path],
) -> None:
    base, log = server_log
    with httpx.Client(base_url=base) as http:
        key = http.post("/v1/auth/register", json={"email": "srv@example.com"}).json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        whsec = http.get("/v1/auth/webhook-secret", headers=auth).json()["webhook_secret"]
        new_key = http.post("/v1/auth/key/regenerate", headers={**auth, **CONFIRM}).json()
        assert http.get("/v1/cues", headers=auth).status_code == 401
        http.get("/v1/cues", headers={"Authorization": "Bearer cue_sk_" + "ab" * 16})

    text = log.read_text()
    assert "GET /v1/cues" in text  # the access log is on: the check is not vacuous
    for secret in secrets_in([key, whsec, new_key["api_key"], "cue_sk_" + "ab" * 16]):
        assert secret not in text
