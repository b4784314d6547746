"""``cueflow accounts create EMAIL``: an operator creates accounts in the configured database
while ``ALLOW_REGISTER=false`` keeps ``POST /v1/auth/register`` closed; the key is printed
once and works against the API."""

from __future__ import annotations

import asyncio
import json
import re

from typer.testing import CliRunner, Result

from cueflow.cli import app
from cueflow.clock import FakeClock
from tests.webhook_support import api, open_engine


async def _create(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, app, ["accounts", "create", *args])


async def test_an_account_created_by_the_operator_works_while_registration_is_closed(
    database_url: str, clock: FakeClock
) -> None:
    created = await _create("Ops@Example.com", "--database-url", database_url)
    assert created.exit_code == 0, created.output
    keys = re.findall(r"cue_sk_[0-9a-f]{32}", created.output)
    assert len(keys) == 1
    assert "shown only this once" in created.output

    as_json = await _create("second@example.com", "--database-url", database_url, "--json")
    assert as_json.exit_code == 0, as_json.output
    second = json.loads(as_json.stdout)
    assert set(second) == {"api_key", "email"}

    async with (
        open_engine(database_url, clock, allow_register=False) as engine,
        api(engine) as client,
    ):
        closed = await client.post("/v1/auth/register", json={"email": "x@example.com"})
        assert closed.status_code == 404
        for key, email in ((keys[0], "Ops@example.com"), (second["api_key"], second["email"])):
            me = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == email


async def test_a_taken_or_invalid_email_is_refused_without_creating_anything(
    database_url: str,
) -> None:
    assert (await _create("taken@example.com", "--database-url", database_url)).exit_code == 0
    again = await _create("taken@example.com", "--database-url", database_url)
    assert again.exit_code == 1
    assert "duplicate_email" in again.output
    assert "cue_sk_" not in again.output
    invalid = await _create("not-an-email", "--database-url", database_url)
    assert invalid.exit_code == 1
    assert "validation_error" in invalid.output
