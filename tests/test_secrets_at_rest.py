"""Secrets at rest: with ``CUEFLOW_SECRET_KEY`` set, webhook signing secrets and callback
headers never reach the database file (SQLite) or a ``pg_dump`` (PostgreSQL) in the clear, yet
read back unchanged; ``cueflow db rotate-secret-key`` moves them to a new key (plaintext rows
stored before a key was set included) so the old key can be dropped; a missing or wrong key is
one clear error, never a secret in a traceback; without a key the server warns once."""

from __future__ import annotations

import asyncio
import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

import cueflow.sql.secret_box as secret_box
from cueflow.cli import app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.sql.reseal import reseal_secrets
from cueflow.sql.secret_box import SecretKeyError
from cueflow.sql.store import SqlStore
from tests.webhook_support import Receiver, api, create_cue, fire, new_user, open_engine

CONFIRM = {"X-Confirm-Destructive": "true"}
TOKEN = "tok_third_party_5f0c2b9e1d7a"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Tenant": "acme-tenant-7781"}
EVERY_MINUTE = {"type": "recurring", "cron": "* * * * *", "timezone": "UTC"}


def new_key() -> str:
    return Fernet.generate_key().decode()


def stored_bytes(database_url: str) -> bytes:
    """Everything the database keeps: the SQLite file and its journal, or a ``pg_dump``."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    dump = subprocess.run(
        ["pg_dump", "--no-owner", database_url],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return dump.stdout


@asynccontextmanager
async def keyed(
    database_url: str, clock: FakeClock, key: str | None
) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    async with open_engine(database_url, clock, secret_key=key) as engine, api(engine) as client:
        yield engine, client


async def _secrets_of(client: httpx.AsyncClient, auth: dict[str, str]) -> tuple[str, str]:
    webhook = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()
    alert = (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json()
    return webhook["webhook_secret"], alert["alert_webhook_secret"]


async def _store_everything(
    client: httpx.AsyncClient, clock: FakeClock, url: str
) -> dict[str, Any]:
    """A user with a webhook secret (rotated, the previous one kept for an overlap window),
    an alert secret, and a cue whose callback headers hold a token."""
    auth = await new_user(client)
    first, _ = await _secrets_of(client, auth)
    rotated = await client.post(
        "/v1/auth/webhook-secret/regenerate",
        headers={**auth, **CONFIRM},
        json={"overlap_seconds": 86_400},
    )
    assert rotated.status_code == 200
    webhook, alert = await _secrets_of(client, auth)
    cue = await create_cue(
        client,
        auth,
        clock,
        url,
        schedule=EVERY_MINUTE,
        callback={"url": url, "headers": HEADERS},
    )
    return {"auth": auth, "secrets": [first, webhook, alert], "cue": cue}


async def _reads_back(client: httpx.AsyncClient, stored: dict[str, Any]) -> None:
    auth = stored["auth"]
    assert list(await _secrets_of(client, auth)) == stored["secrets"][1:]
    cue = (await client.get(f"/v1/cues/{stored['cue']['id']}", headers=auth)).json()
    assert cue["callback"]["headers"] == HEADERS


def assert_sealed(database_url: str, stored: dict[str, Any]) -> None:
    data = stored_bytes(database_url)
    for secret in stored["secrets"]:
        assert secret.encode() not in data
        assert secret[6:].encode() not in data  # nor its hex without the whsec_ prefix
    for value in HEADERS.values():
        assert value.encode() not in data
    assert TOKEN.encode() not in data
    assert b"cfsealed1:" in data


async def _cli(*args: str, key: str | None) -> Result:
    env = {"CUEFLOW_SECRET_KEY": key} if key else {}
    if key is None:
        env["CUEFLOW_SECRET_KEY"] = ""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def test_with_a_key_no_secret_or_header_is_stored_in_the_clear_and_all_read_back(
    database_url: str, clock: FakeClock
) -> None:
    async with Receiver() as receiver:
        async with keyed(database_url, clock, new_key()) as (engine, client):
            stored = await _store_everything(client, clock, receiver.url())
            await _reads_back(client, stored)
            assert await fire(engine, clock) == 1  # deliveries are sent with the plain values
            delivered = receiver.requests[-1].headers
            assert delivered["authorization"] == HEADERS["Authorization"]
            assert delivered["x-cueapi-signature"].count("v1=") == 2
        assert_sealed(database_url, stored)


async def test_rotation_moves_every_secret_to_the_new_key_and_the_old_one_can_go(
    database_url: str, clock: FakeClock
) -> None:
    old, new = new_key(), new_key()
    async with keyed(database_url, clock, None) as (_, client):  # stored before any key
        plain = await _store_everything(client, clock, "http://127.0.0.1:9/hook")
    before = stored_bytes(database_url)
    assert plain["secrets"][1].encode() in before  # the check below would see a plain value
    assert TOKEN.encode() in before
    async with keyed(database_url, clock, old) as (_, client):
        sealed = await _store_everything(client, clock, "http://127.0.0.1:9/hook")
        await _reads_back(client, plain)  # plaintext rows still read with a key set

    rotated = await _cli(
        "db", "rotate-secret-key", "--database-url", database_url, key=f"{new},{old}"
    )
    assert rotated.exit_code == 0, rotated.output
    assert "Re-encrypted the secrets of 2 accounts and 2 cues" in rotated.output

    async with keyed(database_url, clock, new) as (_, client):  # the old key is dropped
        await _reads_back(client, plain)
        await _reads_back(client, sealed)
    assert_sealed(database_url, plain)
    assert_sealed(database_url, sealed)
    with pytest.raises(SecretKeyError):
        async with keyed(database_url, clock, old):
            pass


async def test_a_wrong_or_missing_key_is_one_clear_error_naming_no_secret(
    database_url: str, clock: FakeClock
) -> None:
    key = new_key()
    async with keyed(database_url, clock, key) as (_, client):
        stored = await _store_everything(client, clock, "http://127.0.0.1:9/hook")

    for wrong, message in (
        (new_key(), "cannot be decrypted with any key of CUEFLOW_SECRET_KEY"),
        (None, "the database holds encrypted secrets but CUEFLOW_SECRET_KEY is not set"),
        ("not-a-key", "CUEFLOW_SECRET_KEY: key 1 of 1 is not a Fernet key"),
    ):
        with pytest.raises(SecretKeyError) as caught:
            async with keyed(database_url, clock, wrong):
                pass
        assert message in str(caught.value)
        result = await _cli(
            "accounts", "create", "x@example.com", "--database-url", database_url, key=wrong
        )
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output
        for text in (*stored["secrets"], TOKEN, key, wrong or ""):
            if text:
                assert text not in str(caught.value)
                assert text not in result.output

    async with keyed(database_url, clock, key) as (_, client):  # nothing was damaged
        await _reads_back(client, stored)


async def test_without_a_key_the_server_warns_once_and_logs_no_secret(
    database_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    monkeypatch.setattr(secret_box, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="cueflow.secrets"):
        async with keyed(database_url, clock, None) as (_, client):
            stored = await _store_everything(client, clock, "http://127.0.0.1:9/hook")
        async with keyed(database_url, clock, None):
            pass
    warnings = [r for r in caplog.records if r.name == "cueflow.secrets"]
    assert len(warnings) == 1
    assert "CUEFLOW_SECRET_KEY is not set" in warnings[0].getMessage()
    for secret in stored["secrets"]:
        assert secret not in caplog.text


async def test_rotation_walks_every_batch(database_url: str, clock: FakeClock) -> None:
    old, new = new_key(), new_key()
    async with keyed(database_url, clock, old) as (_, client):
        stored = [await _store_everything(client, clock, "http://127.0.0.1:9/h") for _ in range(3)]
    async with keyed(database_url, clock, f"{new},{old}") as (engine, _):
        store = engine.services.store
        assert isinstance(store, SqlStore)
        done = await reseal_secrets(store, batch_size=1)
        assert (done.users, done.cues) == (3, 3)
    async with keyed(database_url, clock, new) as (_, client):
        for one in stored:
            await _reads_back(client, one)
