"""``PATCH /v1/cues/{id}`` (contract §2.2.6): changing a cue's fields, pausing and resuming it,
and the changes refused (which leave the cue as it was). Schedule changes are in
``test_api_cues_schedules.py``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import fire, make_paused_cue, make_worker_cue
from tests.helpers import (
    CUE_KEYS,
    EVERY_5_MIN,
    assert_error,
    assert_validation_error,
    get_cue,
    patch_cue,
    patched_cue,
)


async def test_patch_with_unknown_field_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    response = await patch_cue(client, auth, cue["id"], {"colour": "blue"})

    error = assert_validation_error(response, "body.colour")
    assert error["message"] == "body.colour: Extra inputs are not permitted"


async def test_patch_cannot_change_transport(client: httpx.AsyncClient, auth: dict[str, str]):
    cue = await make_worker_cue(client, auth)

    response = await patch_cue(client, auth, cue["id"], {"transport": "webhook"})

    assert_validation_error(response, "body.transport")


@pytest.mark.parametrize("status", ["completed", "deleted", "PAUSED", ""])
async def test_patch_with_bad_status_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], status: str
):
    cue = await make_worker_cue(client, auth)

    response = await patch_cue(client, auth, cue["id"], {"status": status})

    error = assert_validation_error(response, "body.status")
    assert error["message"] == "body.status: Value error, status must be 'active' or 'paused'"


# pause and resume -----------------------------------------------------------------------------
async def test_pause_sets_status_paused_and_clears_next_run(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    paused = await patched_cue(client, auth, cue["id"], {"status": "paused"})

    assert paused["status"] == "paused"
    assert paused["next_run"] is None
    assert (await get_cue(client, auth, cue["id"]))["next_run"] is None


async def test_paused_cue_does_not_fire(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    await make_paused_cue(client, auth)

    assert await fire(engine, clock, 3600) == 0


async def test_resume_recomputes_next_run_from_now(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_paused_cue(client, auth)
    clock.advance(17 * 60)  # 12:17, ticks 12:05 .. 12:15 passed while paused

    resumed = await patched_cue(client, auth, cue["id"], {"status": "active"})

    assert resumed["status"] == "active"
    assert resumed["next_run"] == "2026-01-05T12:20:00Z"
    assert resumed["updated_at"] == "2026-01-05T12:17:00Z"


# changing fields ------------------------------------------------------------------------------
async def test_empty_patch_is_a_no_op_that_bumps_updated_at(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    clock.advance(30)

    after = await patched_cue(client, auth, cue["id"], {})

    assert after["updated_at"] == "2026-01-05T12:00:30Z"
    unchanged = CUE_KEYS - {"updated_at", "warning"}
    assert {k: after[k] for k in unchanged} == {k: cue[k] for k in unchanged}


async def test_patch_with_nulls_leaves_fields_unchanged(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, description="keep me")

    after = await patched_cue(
        client,
        auth,
        cue["id"],
        {"name": None, "description": None, "schedule": None, "payload": None, "retry": None},
    )

    for key in ("name", "description", "schedule", "payload", "retry", "next_run"):
        assert after[key] == cue[key], key


async def test_patch_changes_name_description_payload_and_retry(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    after = await patched_cue(
        client,
        auth,
        cue["id"],
        {
            "name": "renamed",
            "description": "now described",
            "payload": {"task": "other", "n": 1},
            "retry": {"max_attempts": 7, "backoff_minutes": [3]},
        },
    )

    assert after["name"] == "renamed"
    assert after["description"] == "now described"
    assert after["payload"] == {"task": "other", "n": 1}
    assert after["retry"] == {"max_attempts": 7, "backoff_minutes": [3]}
    assert await get_cue(client, auth, cue["id"]) == {
        **after,
        "executions": [],
        "execution_total": 0,
        "execution_limit": 10,
        "execution_offset": 0,
    }


async def test_partial_callback_patch_keeps_method_and_headers(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """cueflow deliberately differs from CueAPI here (contract §2.2.6 ⚠ resets them)."""
    callback = {"url": "https://example.com/a", "method": "PUT", "headers": {"X-Team": "ops"}}
    cue = await make_worker_cue(client, auth, callback=callback)

    new_url = await patched_cue(
        client, auth, cue["id"], {"callback": {"url": "https://example.org"}}
    )
    new_headers = await patched_cue(
        client, auth, cue["id"], {"callback": {"headers": {"X-B": "2"}}}
    )
    new_method = await patched_cue(client, auth, cue["id"], {"callback": {"method": "PATCH"}})

    assert new_url["callback"] == {
        "url": "https://example.org/",
        "method": "PUT",
        "headers": {"X-Team": "ops"},
    }
    assert new_headers["callback"] == {
        "url": "https://example.org/",
        "method": "PUT",
        "headers": {"X-B": "2"},
    }
    assert new_method["callback"] == {
        "url": "https://example.org/",
        "method": "PATCH",
        "headers": {"X-B": "2"},
    }


# refused changes ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"schedule": {"type": "recurring", "cron": "bad"}}, 400, "invalid_schedule"),
        ({"schedule": {"type": "once", "at": "2020-01-01T00:00:00Z"}}, 400, "invalid_schedule"),
        (
            {"schedule": {"type": "recurring", "cron": EVERY_5_MIN, "timezone": "Mars/Base"}},
            422,
            "invalid_timezone",
        ),
        ({"payload": {"x": "\x00"}}, 400, "invalid_payload"),
    ],
)
async def test_invalid_patch_is_rejected_and_changes_nothing(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    clock: FakeClock,
    body: dict[str, Any],
    status: int,
    code: str,
):
    cue = await make_worker_cue(client, auth)
    clock.advance(10)

    response = await patch_cue(client, auth, cue["id"], {"name": "changed", **body})

    assert_error(response, status, code)
    stored = await get_cue(client, auth, cue["id"])
    assert stored["name"] == cue["name"]
    assert stored["updated_at"] == cue["updated_at"]


async def test_patch_to_a_taken_name_is_rejected_with_409(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    await make_worker_cue(client, auth, name="taken")
    cue = await make_worker_cue(client, auth, name="free")

    response = await patch_cue(client, auth, cue["id"], {"name": "taken"})

    assert_error(response, 409, "duplicate_cue_name", "A cue named 'taken' already exists")


async def test_patch_name_of_256_characters_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    response = await patch_cue(client, auth, cue["id"], {"name": "n" * 256})

    assert_validation_error(response, "body.name")


async def test_patch_unknown_cue_is_404(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await patch_cue(client, auth, "cue_doesnotexist", {"status": "paused"})

    assert_error(response, 404, "cue_not_found", "Cue not found")
