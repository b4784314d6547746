"""``GET /v1/usage`` (contract §2.5) and the plan limits behind it (§4.9, §4.11): the active cue
limit, enforced atomically, and the monthly execution limit, on both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.quotas import MONTHLY_LIMIT_REACHED, month_start, next_month_start
from tests.conftest import make_settings, register
from tests.factories import (
    due_execution,
    make_once_cue,
    make_paused_cue,
    make_worker_cue,
    manual_run,
    missed_execution,
    once_schedule,
    reported_execution,
)
from tests.helpers import assert_error, create_cue, executions_of, get_cue
from tests.webhook_support import api

USAGE_KEYS = {
    "plan",
    "billing_period",
    "period",
    "cues",
    "executions",
    "outcomes",
    "rate_limit",
    "upgrade_url",
}


async def usage(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/usage", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
async def limited(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an engine with an active cue limit of 3 and a monthly limit of 2."""
    settings = make_settings(database_url, active_cue_limit=3, monthly_execution_limit=2)
    engine = Engine(settings, clock=clock)
    await engine.open()
    try:
        async with api(engine) as client:
            client.engine = engine  # type: ignore[attr-defined]
            yield client
    finally:
        await engine.close()


# GET /v1/usage ---------------------------------------------------------------------------------
async def test_usage_has_every_contract_key(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    body = await usage(client, auth)
    assert set(body) == USAGE_KEYS
    assert body["plan"] == "free"
    assert body["billing_period"] == {
        "start": "2026-01-01",
        "end": "2026-01-31",
        "days_remaining": 26,
    }
    assert body["period"] == {"start": "2026-01-01", "end": "2026-01-31"}
    assert body["cues"] == {
        "used": 0,
        "active": 0,
        "limit": 0,
        "remaining": None,
        "percent_used": 0,
    }
    assert body["executions"] == {
        "used": 0,
        "limit": 0,
        "remaining": None,
        "percent_used": 0,
        "percentage": 0.0,
        "projected_month_end": 0,
        "will_exceed_limit": False,
    }
    assert body["outcomes"] == {"reported": 0, "succeeded": 0, "failed": 0}
    assert set(body["rate_limit"]) == {"requests_per_minute", "limit", "current_usage", "scope"}
    assert body["rate_limit"]["scope"] == "per_node"  # each node counts its own requests
    assert body["rate_limit"]["requests_per_minute"] == engine.settings.rate_limit_per_minute
    assert body["rate_limit"]["limit"] == engine.settings.rate_limit_per_minute
    assert body["upgrade_url"] is None


async def test_usage_counts_cues_executions_and_outcomes(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await reported_execution(client, engine, clock, auth, {"success": True})
    await reported_execution(client, engine, clock, auth, {"success": False})
    missed = await missed_execution(client, engine, clock, auth)
    await make_paused_cue(client, auth)
    body = await usage(client, auth)
    assert body["cues"]["used"] == body["cues"]["active"] == 4
    listed = await client.get("/v1/executions", params={"limit": 100}, headers=auth)
    runs = listed.json()["executions"]
    assert (await client.get(f"/v1/executions/{missed['id']}", headers=auth)).json()[
        "status"
    ] == "missed"
    unreported = [r for r in runs if r["outcome"] is None]
    assert body["executions"]["used"] == sum(r["status"] != "missed" for r in runs)
    assert body["outcomes"] == {
        "reported": 2,
        "succeeded": 1,
        "failed": 1 + sum(r["status"] in ("failed", "missed") for r in unreported),
    }


async def test_usage_starts_again_each_month(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await due_execution(client, engine, clock, auth)
    assert (await usage(client, auth))["executions"]["used"] == 1
    clock.set(datetime(2026, 2, 28, 23, 0, tzinfo=UTC))
    body = await usage(client, auth)
    assert body["executions"]["used"] == 0
    assert body["billing_period"] == {
        "start": "2026-02-01",
        "end": "2026-02-28",
        "days_remaining": 0,
    }


async def test_usage_is_the_callers_own(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    await due_execution(client, engine, clock, auth)
    body = await usage(client, other_auth)
    assert body["cues"]["used"] == 0
    assert body["executions"]["used"] == 0


async def test_usage_reports_the_callers_rate_limit_window(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for _ in range(3):
        await client.get("/v1/cues", headers=auth)
    assert (await usage(client, auth))["rate_limit"]["current_usage"] >= 4


async def test_usage_with_limits_reports_shares_and_projection(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    auth = await register(limited)
    engine: Engine = limited.engine  # type: ignore[attr-defined]
    await due_execution(limited, engine, clock, auth)
    body = await usage(limited, auth)
    assert body["cues"] == {
        "used": 1,
        "active": 1,
        "limit": 3,
        "remaining": 2,
        "percent_used": 33,
    }
    executions = body["executions"]
    assert executions["used"] == 1
    assert executions["limit"] == 2
    assert executions["remaining"] == 1
    assert executions["percent_used"] == 50
    assert executions["percentage"] == 50.0
    assert executions["projected_month_end"] == round(1 / 5 * 31)
    assert executions["will_exceed_limit"] is True


async def test_usage_needs_credentials(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/usage"), 401, "invalid_api_key")


def test_month_bounds_are_utc_calendar_months() -> None:
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert month_start(december) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_month_start(december) == datetime(2027, 1, 1, tzinfo=UTC)


# the active cue limit --------------------------------------------------------------------------
async def test_creating_past_the_active_cue_limit_is_403(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    auth = await register(limited)
    first = await make_worker_cue(limited, auth)
    await make_paused_cue(limited, auth)
    await make_worker_cue(limited, auth)
    response = await create_cue(limited, auth)
    assert_error(response, 403, "cue_limit_exceeded", "Active cue limit of 3 reached")
    assert (await limited.delete(f"/v1/cues/{first['id']}", headers=auth)).status_code == 204
    assert (await create_cue(limited, auth)).status_code == 201
    other = await register(limited)
    assert (await create_cue(limited, other)).status_code == 201


async def test_the_limit_is_checked_before_the_cue_is_validated(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    for _ in range(3):
        await make_worker_cue(limited, auth)
    bad = await create_cue(limited, auth, schedule={"type": "recurring", "cron": "nope"})
    assert_error(bad, 403, "cue_limit_exceeded")


async def test_finished_cues_do_not_count_toward_the_limit(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    auth = await register(limited)
    engine: Engine = limited.engine  # type: ignore[attr-defined]
    execution = await reported_execution(
        limited, engine, clock, auth, schedule=once_schedule(clock)
    )
    assert (await get_cue(limited, auth, execution["cue_id"]))["status"] == "completed"
    for _ in range(3):
        assert (await create_cue(limited, auth)).status_code == 201


async def test_concurrent_creates_cannot_overshoot_the_limit(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    responses = await asyncio.gather(*(create_cue(limited, auth) for _ in range(8)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201] * 3 + [403] * 5
    listed = await limited.get("/v1/cues", headers=auth)
    assert listed.json()["total"] == 3


# the monthly execution limit -------------------------------------------------------------------
async def test_scheduled_runs_past_the_monthly_limit_are_missed(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    auth = await register(limited)
    engine: Engine = limited.engine  # type: ignore[attr-defined]
    cue = await make_worker_cue(limited, auth)
    for _ in range(3):
        clock.advance(300)
        await engine.fire_due()
    runs = await executions_of(limited, auth, cue["id"])
    assert [r["status"] for r in runs] == ["missed", "pending", "pending"]
    assert runs[0]["error_message"] == MONTHLY_LIMIT_REACHED
    assert (await usage(limited, auth))["executions"]["used"] == 2
    fired = await limited.post(f"/v1/cues/{cue['id']}/fire", headers=auth)
    assert fired.status_code == 200, fired.text
    me = (await limited.get("/v1/auth/me", headers=auth)).json()
    assert me["executions_this_month"] == 3
    assert (await get_cue(limited, auth, cue["id"]))["status"] == "active"


async def test_the_monthly_limit_is_per_account_and_per_month(
    limited: httpx.AsyncClient, clock: FakeClock
) -> None:
    engine: Engine = limited.engine  # type: ignore[attr-defined]
    first, second = await register(limited), await register(limited)
    cues = [await make_worker_cue(limited, who) for who in (first, second, second)]
    clock.advance(300)
    await engine.fire_due()
    statuses = [
        (await executions_of(limited, a, c["id"]))[0]["status"]
        for a, c in zip((first, second, second), cues, strict=True)
    ]
    assert statuses == ["pending", "pending", "pending"]
    clock.advance(300)
    await engine.fire_due()
    latest = [
        (await executions_of(limited, a, c["id"]))[0]["status"]
        for a, c in zip((first, second, second), cues, strict=True)
    ]
    assert latest == ["pending", "missed", "missed"]
    clock.set(datetime(2026, 2, 1, 0, 0, 30, tzinfo=UTC))
    await engine.fire_due()
    latest = [
        (await executions_of(limited, a, c["id"]))[0]
        for a, c in zip((first, second, second), cues, strict=True)
    ]
    assert sum(e["status"] == "pending" for e in latest) == 3


async def test_a_refused_one_time_cue_fails(limited: httpx.AsyncClient, clock: FakeClock) -> None:
    auth = await register(limited)
    engine: Engine = limited.engine  # type: ignore[attr-defined]
    cue = await make_worker_cue(limited, auth)
    for _ in range(2):
        await manual_run(limited, auth, cue["id"])
    once = await make_once_cue(limited, auth, clock, in_seconds=30)
    clock.advance(30)
    await engine.fire_due()
    [run] = await executions_of(limited, auth, once["id"])
    assert run["status"] == "missed"
    assert run["error_message"] == MONTHLY_LIMIT_REACHED
    assert (await get_cue(limited, auth, once["id"]))["status"] == "failed"
