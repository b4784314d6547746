"""``GET /v1/stats/overview``: the dashboard overview's executions per minute by status, delay
percentiles and queue, per account, over the last hour or day, on both stores."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.stats import percentile
from tests.factories import claimed_execution, due_execution, reported_execution
from tests.helpers import assert_error, claim, report


async def overview(
    client: httpx.AsyncClient, auth: dict[str, str], window: str = "1h"
) -> dict[str, Any]:
    response = await client.get("/v1/stats/overview", params={"window": window}, headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_empty_account_has_empty_series_for_each_window(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    hour = await overview(client, auth)
    assert hour["bucket_seconds"] == 60
    assert len(hour["buckets"]) == 60
    assert set(hour["executions"]["per_minute"]) >= {"success", "failed", "pending"}
    assert all(len(s) == 60 for s in hour["executions"]["per_minute"].values())
    assert hour["lag"]["count"] == 0 and hour["lag"]["overall"]["p95"] is None
    assert hour["queue"]["total"] == 0
    assert hour["queue"]["waiting"] == [0] * 60
    day = await overview(client, auth, "24h")
    assert (day["bucket_seconds"], len(day["buckets"])) == (900, 96)


async def test_counts_delays_and_queue_follow_the_accounts_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    await reported_execution(client, engine, clock, auth)  # claimed when due: lag ~0
    waiting = await due_execution(client, engine, clock, auth)
    clock.advance(30)
    late = await claim(client, auth, waiting["id"], "w2")
    assert late.status_code == 200, late.text
    clock.advance(4)
    assert (await report(client, auth, waiting["id"], success=False)).status_code == 200
    await due_execution(client, engine, clock, auth)  # still queued

    stats = await overview(client, auth)
    totals = stats["executions"]["totals"]
    assert (totals["success"], totals["failed"]) == (1, 1)
    assert totals["pending"] >= 1  # each fire_due fires every cue due by then
    assert sum(sum(series) for series in stats["executions"]["per_minute"].values()) == sum(
        totals.values()
    )
    assert stats["lag"]["count"] == 2
    assert stats["lag"]["overall"]["p50"] == 0.05
    assert stats["lag"]["overall"]["p99"] == 30.0  # the late claim, in its 30 s bucket
    assert stats["latency"]["overall"]["p99"] == 5.0  # the report 4 s after the claim
    assert stats["queue"]["by_status"]["pending"] == totals["pending"]
    assert stats["queue"]["total"] == totals["pending"]
    assert stats["queue"]["oldest_scheduled_for"] is not None
    waiting = stats["queue"]["waiting"]
    assert len(waiting) == 60 and min(waiting) >= 0
    assert waiting[-1] == totals["pending"]  # the two that started no longer wait

    other = await overview(client, other_auth)
    assert other["executions"]["totals"]["success"] == 0
    assert other["queue"]["total"] == 0


async def test_executions_older_than_the_window_are_left_out(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await claimed_execution(client, engine, clock, auth)
    assert sum((await overview(client, auth))["executions"]["totals"].values()) == 1
    clock.advance(2 * 3600)
    assert sum((await overview(client, auth))["executions"]["totals"].values()) == 0
    assert sum((await overview(client, auth, "24h"))["executions"]["totals"].values()) == 1


async def test_an_unknown_window_is_a_422(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.get("/v1/stats/overview", params={"window": "7d"}, headers=auth)
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("histogram", "p", "expected"),
    [
        ((0,) * 16, 50, None),
        ((1,) + (1,) * 14 + (1,), 50, 0.05),
        ((0,) * 15 + (3,), 50, None),  # beyond the last bound
        ((0, 0, 0, 0, 1) + (2,) * 10 + (2,), 99, 2.0),
    ],
)
def test_a_percentile_is_the_bound_its_share_falls_under(
    histogram: tuple[int, ...], p: int, expected: float | None
) -> None:
    assert percentile(histogram, p) == expected


async def test_runs_still_waiting_from_before_the_window_count_in_the_queue_series(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    old = await due_execution(client, engine, clock, auth)
    clock.advance(2 * 3600)  # created two hours ago, never claimed

    stats = await overview(client, auth)
    assert stats["executions"]["totals"]["pending"] == 0  # not created in the window
    assert stats["queue"]["total"] == 1
    assert stats["queue"]["waiting"] == [1] * 60

    clock.advance(10 * 60)
    assert (await claim(client, auth, old["id"], "w1")).status_code == 200

    waiting = (await overview(client, auth))["queue"]["waiting"]
    assert waiting[0] == 1 and waiting[-2] == 1  # waited through the window
    assert waiting[-1] == 0  # until the claim, in the last minute
