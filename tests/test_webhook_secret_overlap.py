"""Rotating the webhook secret without downtime: for an overlap window after a rotation,
deliveries carry a signature with the new and with the previous secret (two ``v1=`` values),
and each verifies with the official SDK's ``verify_webhook``; after the window, only the new
secret signs. Without a window (the default, as CueAPI) the header keeps its single value."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from tests.webhook_support import (
    Received,
    Receiver,
    api,
    create_cue,
    fire,
    load_verifier,
    new_user,
    open_engine,
    verifies,
)

CONFIRM = {"X-Confirm-Destructive": "true"}
EVERY_MINUTE = {"type": "recurring", "cron": "* * * * *", "timezone": "UTC"}


def verifies_any_value(request: Received, secret: str) -> bool:
    """What a receiver of a rotation window does: the SDK's verifier on each ``v1=`` value of
    the signature header; the delivery is accepted if one matches its secret."""
    verify = load_verifier()
    values = request.headers["x-cueapi-signature"].split(",")
    timestamp = request.headers["x-cueapi-timestamp"]
    return any(verify(request.body, value.strip(), secret, timestamp) for value in values)


async def _secret(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.get("/v1/auth/webhook-secret", headers=auth)
    return str(response.json()["webhook_secret"])


async def _rotate(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/auth/webhook-secret/regenerate", headers={**auth, **CONFIRM}, json=body or None
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_deliveries_in_the_window_verify_with_either_secret_then_with_the_new_only(
    database_url: str, clock: FakeClock
) -> None:
    load_verifier()
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock, webhook_secret_overlap_seconds=3600) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        old = await _secret(client, auth)
        await create_cue(client, auth, clock, receiver.url(), schedule=EVERY_MINUTE)
        assert await fire(engine, clock) == 1
        before = receiver.requests[-1]
        assert verifies(before, old)  # one value: the SDK checks the header whole

        rotated = await _rotate(client, auth)
        new = rotated["webhook_secret"]
        assert rotated["previous_secret_revoked"] is False
        until = datetime.fromisoformat(
            rotated["previous_secret_valid_until"].replace("Z", "+00:00")
        )
        assert abs(until - (clock.now() + timedelta(hours=1))) < timedelta(seconds=1)

        assert await fire(engine, clock) == 1
        during = receiver.requests[-1]
        assert during.headers["x-cueapi-signature"].count("v1=") == 2
        assert verifies_any_value(during, old)
        assert verifies_any_value(during, new)
        assert not verifies_any_value(during, "whsec_" + "0" * 64)
        # the SDK verifier given the whole two-value header accepts neither (docs/operations.md)
        assert not verifies(during, old)
        assert not verifies(during, new)
        assert rotated["previous_secret_valid_until"].endswith("Z")

        clock.advance(3600)  # the window ends
        assert await fire(engine, clock) == 1
        after = receiver.requests[-1]
        assert after.headers["x-cueapi-signature"].count("v1=") == 1
        assert verifies(after, new)
        assert not verifies(after, old)
        assert not verifies_any_value(after, old)


async def test_a_rotation_names_its_own_window_and_a_second_rotation_replaces_the_kept_secret(
    database_url: str, clock: FakeClock
) -> None:
    load_verifier()
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        first = await _secret(client, auth)
        await create_cue(client, auth, clock, receiver.url(), schedule=EVERY_MINUTE)

        second = (await _rotate(client, auth, overlap_seconds=600))["webhook_secret"]
        third = (await _rotate(client, auth, overlap_seconds=600))["webhook_secret"]
        assert await fire(engine, clock) == 1
        delivery = receiver.requests[-1]
        assert verifies_any_value(delivery, third)
        assert verifies_any_value(delivery, second)
        assert not verifies_any_value(delivery, first)

        clock.advance(600)
        assert await fire(engine, clock) == 1
        assert verifies(receiver.requests[-1], third)
        assert not verifies_any_value(receiver.requests[-1], second)


async def test_without_a_window_the_previous_secret_stops_at_once(
    database_url: str, clock: FakeClock
) -> None:
    load_verifier()
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock, webhook_secret_overlap_seconds=3600) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        old = await _secret(client, auth)
        await create_cue(client, auth, clock, receiver.url(), schedule=EVERY_MINUTE)
        rotated = await _rotate(client, auth, overlap_seconds=0)
        assert rotated == {
            "webhook_secret": rotated["webhook_secret"],
            "previous_secret_revoked": True,
        }
        assert await fire(engine, clock) == 1
        assert verifies(receiver.requests[-1], rotated["webhook_secret"])
        assert not verifies_any_value(receiver.requests[-1], old)


async def test_a_window_out_of_bounds_is_refused_with_422(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        before = await _secret(client, auth)
        for overlap in (-1, 604_801, "soon"):
            response = await client.post(
                "/v1/auth/webhook-secret/regenerate",
                headers={**auth, **CONFIRM},
                json={"overlap_seconds": overlap},
            )
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "validation_error"
        assert await _secret(client, auth) == before
