"""A cue's schedule (contract §2.2.1, §2.2.6): recurring and one-time schedules, time zones, how
``next_run`` follows from them on create, on change and after a one-time fire, and the
schedules refused."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import fire, make_once_cue, make_worker_cue
from tests.helpers import (
    EVERY_5_MIN,
    OFFSET_DATETIME,
    Z_DATETIME,
    assert_error,
    create_cue,
    get_cue,
    patched_cue,
    zulu,
)


async def test_create_defaults_timezone_to_utc_and_next_run_is_next_tick(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    clock.advance(61)  # 12:01:01

    cue = await make_worker_cue(client, auth)

    assert cue["schedule"] == {"type": "recurring", "cron": EVERY_5_MIN, "timezone": "UTC"}
    assert cue["next_run"] == "2026-01-05T12:05:00Z"


async def test_create_on_a_tick_schedules_the_following_tick(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "0 * * * *"})

    assert cue["next_run"] == "2026-01-05T13:00:00Z"


async def test_create_once_with_naive_at_is_taken_as_utc(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(
        client, auth, schedule={"type": "once", "at": "2026-01-06T08:30:00"}
    )

    assert cue["schedule"] == {"type": "once", "at": "2026-01-06T08:30:00+00:00", "timezone": "UTC"}
    assert cue["next_run"] == "2026-01-06T08:30:00Z"


async def test_create_once_ignores_the_timezone_for_a_naive_at(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "once", "at": "2026-01-06T08:30:00", "timezone": "Asia/Tokyo"}

    cue = await make_worker_cue(client, auth, schedule=schedule)

    assert cue["schedule"]["at"] == "2026-01-06T08:30:00+00:00"
    assert cue["schedule"]["timezone"] == "Asia/Tokyo"
    assert cue["next_run"] == "2026-01-06T08:30:00Z"


async def test_create_once_with_offset_at_is_converted_to_utc(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "once", "at": "2026-01-06T10:30:00+02:00"}

    cue = await make_worker_cue(client, auth, schedule=schedule)

    assert cue["schedule"]["at"] == "2026-01-06T08:30:00+00:00"
    assert cue["next_run"] == "2026-01-06T08:30:00Z"


async def test_once_schedule_omits_cron_and_recurring_omits_at(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    once = await make_once_cue(client, auth, clock)
    recurring = await make_worker_cue(client, auth)

    assert "cron" not in once["schedule"]
    assert "at" not in recurring["schedule"]


async def test_model_datetimes_end_in_z_and_schedule_at_in_offset(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_once_cue(client, auth, clock)

    assert OFFSET_DATETIME.match(cue["schedule"]["at"])
    for key in ("next_run", "created_at", "updated_at"):
        assert Z_DATETIME.match(cue[key]), key


async def test_timezone_lookup_is_case_insensitive_and_stored_as_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "recurring", "cron": "0 9 * * *", "timezone": "europe/paris"}

    cue = await make_worker_cue(client, auth, schedule=schedule)

    assert cue["schedule"]["timezone"] == "europe/paris"
    assert cue["next_run"] == "2026-01-06T08:00:00Z"


async def test_fired_once_cue_has_null_next_run(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_once_cue(client, auth, clock, in_seconds=60)

    assert await fire(engine, clock, 60) == 1

    after = await get_cue(client, auth, cue["id"])
    assert after["next_run"] is None
    assert after["fired_count"] == 1
    assert after["executions"][0]["scheduled_for"] == zulu(clock.now())


# changing the schedule ------------------------------------------------------------------------
async def test_schedule_change_recomputes_next_run(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    clock.advance(120)  # 12:02

    hourly = await patched_cue(
        client, auth, cue["id"], {"schedule": {"type": "recurring", "cron": "30 * * * *"}}
    )
    once = await patched_cue(
        client, auth, cue["id"], {"schedule": {"type": "once", "at": "2026-01-07T00:00:00Z"}}
    )

    assert hourly["next_run"] == "2026-01-05T12:30:00Z"
    assert hourly["schedule"] == {"type": "recurring", "cron": "30 * * * *", "timezone": "UTC"}
    assert once["next_run"] == "2026-01-07T00:00:00Z"
    assert once["schedule"] == {
        "type": "once",
        "at": "2026-01-07T00:00:00+00:00",
        "timezone": "UTC",
    }


async def test_schedule_patch_without_timezone_resets_it_to_utc(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "recurring", "cron": "0 9 * * *", "timezone": "America/New_York"}
    cue = await make_worker_cue(client, auth, schedule=schedule)

    after = await patched_cue(
        client, auth, cue["id"], {"schedule": {"type": "recurring", "cron": "0 9 * * *"}}
    )

    assert after["schedule"]["timezone"] == "UTC"
    assert after["next_run"] == "2026-01-06T09:00:00Z"


# refused schedules ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"type": "weekly", "cron": EVERY_5_MIN}, "Schedule type must be 'once' or 'recurring'"),
        ({"type": "recurring"}, "Cron expression is required for recurring schedules"),
        ({"type": "recurring", "cron": ""}, "Cron expression is required for recurring schedules"),
        ({"type": "recurring", "cron": "not a cron"}, "Invalid cron expression"),
        ({"type": "recurring", "cron": "61 * * * *"}, "Invalid cron expression"),
        ({"type": "once"}, "Timestamp is required for one-time schedules"),
        ({"type": "once", "at": "2026-01-05T11:59:00Z"}, "Scheduled time must be in the future"),
        ({"type": "once", "at": "2026-01-05T12:00:00Z"}, "Scheduled time must be in the future"),
    ],
)
async def test_invalid_schedule_is_rejected_with_400(
    client: httpx.AsyncClient, auth: dict[str, str], schedule: dict[str, Any], message: str
):
    response = await create_cue(client, auth, schedule=schedule)

    assert_error(response, 400, "invalid_schedule", message)


async def test_unknown_timezone_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "recurring", "cron": EVERY_5_MIN, "timezone": "Mars/Base"}

    response = await create_cue(client, auth, schedule=schedule)

    assert_error(response, 422, "invalid_timezone", "Unknown timezone: 'Mars/Base'")


async def test_unknown_timezone_is_checked_before_the_schedule_type(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """Contract §2.2.1 order of checks: timezone (422) before schedule (400)."""
    schedule = {"type": "weekly", "cron": EVERY_5_MIN, "timezone": "Mars/Base"}

    response = await create_cue(client, auth, schedule=schedule)

    assert_error(response, 422, "invalid_timezone", "Unknown timezone: 'Mars/Base'")
