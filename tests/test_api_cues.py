"""``/v1/cues``: create, list, read, change, pause/resume, delete (contract §2.2)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.helpers import (
    EVERY_5_MIN,
    EXECUTION_ADDITIVE_KEYS,
    EXECUTION_CONTRACT_KEYS,
    NO_WORKER_WARNING,
    OFFSET_DATETIME,
    START,
    Z_DATETIME,
    assert_error,
    assert_validation_error,
    create_cue,
    fire,
    get_cue,
    make_once_cue,
    make_worker_cue,
    worker_heartbeat,
    zulu,
)

CUE_KEYS = {
    "id",
    "name",
    "description",
    "status",
    "transport",
    "schedule",
    "callback",
    "payload",
    "retry",
    "next_run",
    "last_run",
    "run_count",
    "fired_count",
    "on_failure",
    "verification",
    "warning",
    "created_at",
    "updated_at",
}
"""Every key of the contract's Cue object (§2.2.2)."""
DETAIL_KEYS = {"executions", "execution_total", "execution_limit", "execution_offset"}


async def patch(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, body: Any
) -> httpx.Response:
    """``PATCH /v1/cues/{id}``."""
    return await client.patch(f"/v1/cues/{cue_id}", json=body, headers=auth)


async def patched(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, body: Any
) -> dict[str, Any]:
    """``PATCH /v1/cues/{id}`` that must succeed; returns the cue."""
    response = await patch(client, auth, cue_id, body)
    assert response.status_code == 200, response.text
    return response.json()


async def list_cues(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> httpx.Response:
    """``GET /v1/cues``."""
    return await client.get("/v1/cues", params=params, headers=auth)


# create ------------------------------------------------------------------------------------------
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
    assert (await patched(client, auth, cue["id"], {"description": "x"}))["warning"] is None
    [listed] = (await list_cues(client, auth)).json()["cues"]
    assert listed["warning"] is None


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


async def test_timezone_lookup_is_case_insensitive_and_stored_as_sent(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    schedule = {"type": "recurring", "cron": "0 9 * * *", "timezone": "europe/paris"}

    cue = await make_worker_cue(client, auth, schedule=schedule)

    assert cue["schedule"]["timezone"] == "europe/paris"
    assert cue["next_run"] == "2026-01-06T08:00:00Z"


async def test_unknown_timezone_is_checked_before_the_schedule_type(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    """Contract §2.2.1 order of checks: timezone (422) before schedule (400)."""
    schedule = {"type": "weekly", "cron": EVERY_5_MIN, "timezone": "Mars/Base"}

    response = await create_cue(client, auth, schedule=schedule)

    assert_error(response, 422, "invalid_timezone", "Unknown timezone: 'Mars/Base'")


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


# list --------------------------------------------------------------------------------------------
async def test_list_shape_and_default_limit(client: httpx.AsyncClient, auth: dict[str, str]):
    await make_worker_cue(client, auth)

    response = await list_cues(client, auth)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"cues", "total", "limit", "offset"}
    assert (body["total"], body["limit"], body["offset"]) == (1, 50, 0)
    assert set(body["cues"][0]) >= CUE_KEYS
    assert not DETAIL_KEYS & set(body["cues"][0])


async def test_list_is_empty_for_a_new_user(client: httpx.AsyncClient, auth: dict[str, str]):
    body = (await list_cues(client, auth)).json()

    assert body == {"cues": [], "total": 0, "limit": 50, "offset": 0}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 101}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
async def test_list_bounds_are_enforced_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any], field: str
):
    response = await list_cues(client, auth, **params)

    assert_validation_error(response, field)


async def test_list_is_newest_first_and_pages_with_offset(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    names = []
    for i in range(5):
        names.append((await make_worker_cue(client, auth, name=f"c{i}"))["name"])
        clock.advance(1)

    first = (await list_cues(client, auth, limit=2)).json()
    second = (await list_cues(client, auth, limit=2, offset=2)).json()
    last = (await list_cues(client, auth, limit=2, offset=4)).json()
    beyond = (await list_cues(client, auth, limit=2, offset=10)).json()

    assert [c["name"] for c in first["cues"]] == ["c4", "c3"]
    assert [c["name"] for c in second["cues"]] == ["c2", "c1"]
    assert [c["name"] for c in last["cues"]] == ["c0"]
    assert beyond["cues"] == []
    assert {page["total"] for page in (first, second, last, beyond)} == {5}
    assert (second["limit"], second["offset"]) == (2, 2)


async def test_list_filters_by_status(client: httpx.AsyncClient, auth: dict[str, str]):
    active = await make_worker_cue(client, auth)
    paused = await make_worker_cue(client, auth)
    await patched(client, auth, paused["id"], {"status": "paused"})

    only_paused = (await list_cues(client, auth, status="paused")).json()
    only_active = (await list_cues(client, auth, status="active")).json()
    nothing = (await list_cues(client, auth, status="completed")).json()

    assert [c["id"] for c in only_paused["cues"]] == [paused["id"]]
    assert only_paused["total"] == 1
    assert [c["id"] for c in only_active["cues"]] == [active["id"]]
    assert nothing == {"cues": [], "total": 0, "limit": 50, "offset": 0}


async def test_list_shows_only_the_callers_cues(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    mine = await make_worker_cue(client, auth)
    await make_worker_cue(client, other_auth)

    body = (await list_cues(client, auth)).json()

    assert [c["id"] for c in body["cues"]] == [mine["id"]]
    assert body["total"] == 1


# get ---------------------------------------------------------------------------------------------
async def test_get_returns_detail_with_execution_page(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    detail = await get_cue(client, auth, cue["id"])

    assert set(detail) >= CUE_KEYS | DETAIL_KEYS
    assert detail["executions"] == []
    assert detail["execution_total"] == 0
    assert detail["execution_limit"] == 10
    assert detail["execution_offset"] == 0
    assert {k: detail[k] for k in CUE_KEYS - {"warning"}} == {
        k: cue[k] for k in CUE_KEYS - {"warning"}
    }


async def test_get_pages_executions_newest_first(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(12):
        assert await fire(engine, clock, 60) == 1

    default = await get_cue(client, auth, cue["id"])
    tail = (
        await client.get(f"/v1/cues/{cue['id']}", params={"execution_offset": 10}, headers=auth)
    ).json()
    everything = (
        await client.get(f"/v1/cues/{cue['id']}", params={"execution_limit": 100}, headers=auth)
    ).json()

    assert len(default["executions"]) == 10
    assert default["execution_total"] == 12
    assert default["executions"][0]["scheduled_for"] == "2026-01-05T12:12:00Z"
    assert set(default["executions"][0]) == EXECUTION_CONTRACT_KEYS | EXECUTION_ADDITIVE_KEYS
    assert [e["scheduled_for"] for e in tail["executions"]] == [
        "2026-01-05T12:02:00Z",
        "2026-01-05T12:01:00Z",
    ]
    assert (tail["execution_limit"], tail["execution_offset"]) == (10, 10)
    assert len(everything["executions"]) == 12
    assert everything["execution_limit"] == 100
    assert everything["fired_count"] == 12


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"execution_limit": 0}, "query.execution_limit"),
        ({"execution_limit": 101}, "query.execution_limit"),
        ({"execution_offset": -1}, "query.execution_offset"),
    ],
)
async def test_get_execution_page_bounds_are_enforced_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any], field: str
):
    cue = await make_worker_cue(client, auth)

    response = await client.get(f"/v1/cues/{cue['id']}", params=params, headers=auth)

    assert_validation_error(response, field)


async def test_get_unknown_cue_is_404(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await client.get("/v1/cues/cue_doesnotexist", headers=auth)

    assert_error(response, 404, "cue_not_found", "Cue not found")


async def test_fired_once_cue_has_null_next_run(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_once_cue(client, auth, clock, in_seconds=60)

    assert await fire(engine, clock, 60) == 1

    after = await get_cue(client, auth, cue["id"])
    assert after["next_run"] is None
    assert after["fired_count"] == 1
    assert after["executions"][0]["scheduled_for"] == zulu(clock.now())


# patch -------------------------------------------------------------------------------------------
async def test_patch_with_unknown_field_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    response = await patch(client, auth, cue["id"], {"colour": "blue"})

    error = assert_validation_error(response, "body.colour")
    assert error["message"] == "body.colour: Extra inputs are not permitted"


async def test_patch_cannot_change_transport(client: httpx.AsyncClient, auth: dict[str, str]):
    cue = await make_worker_cue(client, auth)

    response = await patch(client, auth, cue["id"], {"transport": "webhook"})

    assert_validation_error(response, "body.transport")


@pytest.mark.parametrize("status", ["completed", "deleted", "PAUSED", ""])
async def test_patch_with_bad_status_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], status: str
):
    cue = await make_worker_cue(client, auth)

    response = await patch(client, auth, cue["id"], {"status": status})

    error = assert_validation_error(response, "body.status")
    assert error["message"] == "body.status: Value error, status must be 'active' or 'paused'"


async def test_pause_sets_status_paused_and_clears_next_run(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    paused = await patched(client, auth, cue["id"], {"status": "paused"})

    assert paused["status"] == "paused"
    assert paused["next_run"] is None
    assert (await get_cue(client, auth, cue["id"]))["next_run"] is None


async def test_paused_cue_does_not_fire(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    await patched(client, auth, cue["id"], {"status": "paused"})

    assert await fire(engine, clock, 3600) == 0


async def test_resume_recomputes_next_run_from_now(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    await patched(client, auth, cue["id"], {"status": "paused"})
    clock.advance(17 * 60)  # 12:17, ticks 12:05 .. 12:15 passed while paused

    resumed = await patched(client, auth, cue["id"], {"status": "active"})

    assert resumed["status"] == "active"
    assert resumed["next_run"] == "2026-01-05T12:20:00Z"
    assert resumed["updated_at"] == "2026-01-05T12:17:00Z"


async def test_empty_patch_is_a_no_op_that_bumps_updated_at(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    clock.advance(30)

    after = await patched(client, auth, cue["id"], {})

    assert after["updated_at"] == "2026-01-05T12:00:30Z"
    unchanged = CUE_KEYS - {"updated_at", "warning"}
    assert {k: after[k] for k in unchanged} == {k: cue[k] for k in unchanged}


async def test_patch_with_nulls_leaves_fields_unchanged(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, description="keep me")

    after = await patched(
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

    after = await patched(
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

    new_url = await patched(client, auth, cue["id"], {"callback": {"url": "https://example.org"}})
    new_headers = await patched(client, auth, cue["id"], {"callback": {"headers": {"X-B": "2"}}})
    new_method = await patched(client, auth, cue["id"], {"callback": {"method": "PATCH"}})

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


async def test_schedule_change_recomputes_next_run(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    clock.advance(120)  # 12:02

    hourly = await patched(
        client, auth, cue["id"], {"schedule": {"type": "recurring", "cron": "30 * * * *"}}
    )
    once = await patched(
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

    after = await patched(
        client, auth, cue["id"], {"schedule": {"type": "recurring", "cron": "0 9 * * *"}}
    )

    assert after["schedule"]["timezone"] == "UTC"
    assert after["next_run"] == "2026-01-06T09:00:00Z"


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

    response = await patch(client, auth, cue["id"], {"name": "changed", **body})

    assert_error(response, status, code)
    stored = await get_cue(client, auth, cue["id"])
    assert stored["name"] == cue["name"]
    assert stored["updated_at"] == cue["updated_at"]


async def test_patch_to_a_taken_name_is_rejected_with_409(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    await make_worker_cue(client, auth, name="taken")
    cue = await make_worker_cue(client, auth, name="free")

    response = await patch(client, auth, cue["id"], {"name": "taken"})

    assert_error(response, 409, "duplicate_cue_name", "A cue named 'taken' already exists")


async def test_patch_name_of_256_characters_is_rejected_with_422(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    response = await patch(client, auth, cue["id"], {"name": "n" * 256})

    assert_validation_error(response, "body.name")


async def test_patch_unknown_cue_is_404(client: httpx.AsyncClient, auth: dict[str, str]):
    response = await patch(client, auth, "cue_doesnotexist", {"status": "paused"})

    assert_error(response, 404, "cue_not_found", "Cue not found")


# delete ------------------------------------------------------------------------------------------
async def test_delete_returns_204_with_empty_body_then_404(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    deleted = await client.delete(f"/v1/cues/{cue['id']}", headers=auth)
    again = await client.delete(f"/v1/cues/{cue['id']}", headers=auth)
    read = await client.get(f"/v1/cues/{cue['id']}", headers=auth)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(again, 404, "cue_not_found", "Cue not found")
    assert_error(read, 404, "cue_not_found", "Cue not found")


async def test_delete_removes_the_cues_executions(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    await fire(engine, clock, 300)
    [execution] = (await client.get("/v1/executions", headers=auth)).json()["executions"]

    await client.delete(f"/v1/cues/{cue['id']}", headers=auth)

    listed = (await client.get("/v1/executions", headers=auth)).json()
    assert listed["total"] == 0
    gone = await client.get(f"/v1/executions/{execution['id']}", headers=auth)
    assert_error(gone, 404, "execution_not_found")


async def test_deleted_name_can_be_reused(client: httpx.AsyncClient, auth: dict[str, str]):
    cue = await make_worker_cue(client, auth, name="again")
    await client.delete(f"/v1/cues/{cue['id']}", headers=auth)

    response = await create_cue(client, auth, name="again")

    assert response.status_code == 201, response.text


# tenancy -----------------------------------------------------------------------------------------
async def test_another_users_cue_is_404_for_get_patch_and_delete(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)
    path = f"/v1/cues/{cue['id']}"

    got = await client.get(path, headers=other_auth)
    changed = await client.patch(path, json={"status": "paused"}, headers=other_auth)
    deleted = await client.delete(path, headers=other_auth)

    for response in (got, changed, deleted):
        assert_error(response, 404, "cue_not_found", "Cue not found")
    still = await get_cue(client, auth, cue["id"])
    assert still["status"] == "active"
