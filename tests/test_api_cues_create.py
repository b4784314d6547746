"""``POST /v1/cues`` (contract §2.2.1, §2.2.3): what a created cue looks like, what is stored
as sent or normalised, and the create-time warning when no worker is alive."""

from __future__ import annotations

import re

import httpx

from cueflow.clock import FakeClock
from tests.factories import make_worker_cue
from tests.helpers import (
    CUE_KEYS,
    NO_WORKER_WARNING,
    START,
    create_cue,
    get_cue,
    list_cues,
    patched_cue,
    worker_heartbeat,
)


async def test_create_recurring_worker_cue_returns_201_with_every_contract_key(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(
        client,
        auth,
        name="nightly",
        description="runs at nine",
        schedule={"type": "recurring", "cron": "0 9 * * *", "timezone": "America/New_York"},
    )

    assert response.status_code == 201, response.text
    cue = response.json()
    assert set(cue) >= CUE_KEYS
    assert re.fullmatch(r"cue_[a-z0-9]{12}", cue["id"])
    assert cue["name"] == "nightly"
    assert cue["description"] == "runs at nine"
    assert cue["status"] == "active"
    assert cue["transport"] == "worker"
    assert cue["schedule"] == {
        "type": "recurring",
        "cron": "0 9 * * *",
        "timezone": "America/New_York",
    }
    assert cue["callback"] == {"url": None, "method": "POST", "headers": {}}
    assert cue["payload"] == {"task": "report"}
    assert cue["retry"] == {"max_attempts": 3, "backoff_minutes": [1, 5, 15]}
    # 09:00 in New York on 2026-01-05 (EST, UTC-5) is 14:00 UTC, the first tick after 12:00 UTC.
    assert cue["next_run"] == "2026-01-05T14:00:00Z"
    assert cue["last_run"] is None
    assert cue["run_count"] == 0
    assert cue["fired_count"] == 0
    assert cue["on_failure"] == {"email": True, "webhook": None, "pause": False}
    assert cue["verification"] is None
    assert cue["created_at"] == START
    assert cue["updated_at"] == START


async def test_create_ignores_unknown_top_level_fields(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(
        client,
        auth,
        delivery={"mode": "fast"},
        alerts=[{"type": "email"}],
        payload_override={"x": 1},
    )

    assert response.status_code == 201, response.text
    cue = response.json()
    assert not {"delivery", "alerts", "payload_override"} & set(cue)


async def test_create_keeps_callback_method_headers_and_normalises_url(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    callback = {"url": "https://example.com", "method": "PUT", "headers": {"X-Team": "ops"}}

    cue = await make_worker_cue(client, auth, callback=callback)

    assert cue["callback"] == {
        "url": "https://example.com/",
        "method": "PUT",
        "headers": {"X-Team": "ops"},
    }


async def test_create_with_null_payload_stores_empty_object(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, payload=None)

    assert cue["payload"] == {}


async def test_create_echoes_retry_on_failure_and_verification(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(
        client,
        auth,
        retry={"max_attempts": 5, "backoff_minutes": [2, 4]},
        on_failure={"email": False, "pause": True},
        verification={"mode": "require_external_id"},
    )

    assert cue["retry"] == {"max_attempts": 5, "backoff_minutes": [2, 4]}
    assert cue["on_failure"] == {"email": False, "webhook": None, "pause": True}
    assert cue["verification"] == {"mode": "require_external_id"}


# the no-live-worker warning --------------------------------------------------------------------
async def test_worker_cue_without_live_worker_carries_the_warning(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    assert cue["warning"] == NO_WORKER_WARNING


async def test_worker_cue_warning_is_null_after_a_worker_heartbeat(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    assert (await worker_heartbeat(client, auth)).status_code == 200

    cue = await make_worker_cue(client, auth)

    assert cue["warning"] is None


async def test_worker_cue_warning_returns_when_the_worker_went_silent(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    await worker_heartbeat(client, auth)
    clock.advance(181)

    cue = await make_worker_cue(client, auth)

    assert cue["warning"] == NO_WORKER_WARNING


async def test_another_users_worker_does_not_silence_the_warning(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    await worker_heartbeat(client, other_auth)

    cue = await make_worker_cue(client, auth)

    assert cue["warning"] == NO_WORKER_WARNING


async def test_warning_is_only_on_the_create_response(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    assert (await get_cue(client, auth, cue["id"]))["warning"] is None
    assert (await patched_cue(client, auth, cue["id"], {"description": "x"}))["warning"] is None
    [listed] = (await list_cues(client, auth)).json()["cues"]
    assert listed["warning"] is None
