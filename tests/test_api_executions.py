"""Execution history: ``GET /v1/executions`` and ``GET /v1/executions/{id}`` (contract §2.3.1-4).

The worker pull protocol on ``/v1/executions/...`` is tested in ``test_api_claimable.py``,
``test_api_claims.py``, ``test_api_leases.py`` and ``test_api_outcomes.py``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import due_execution, fire, make_worker_cue
from tests.helpers import (
    EXECUTION_ADDITIVE_KEYS,
    EXECUTION_CONTRACT_KEYS,
    OFFSET_DATETIME,
    UNKNOWN_ID,
    Z_DATETIME,
    assert_error,
    assert_validation_error,
    claim,
    get_execution,
    report,
)


async def list_executions(
    client: httpx.AsyncClient, auth: dict[str, str], **params: Any
) -> httpx.Response:
    """``GET /v1/executions``."""
    return await client.get("/v1/executions", params=params, headers=auth)


async def listed(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> dict[str, Any]:
    """``GET /v1/executions`` that must succeed; returns the body."""
    response = await list_executions(client, auth, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def two_cues_three_executions(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cue ``a`` fires at 12:05 and 12:10, cue ``b`` (hourly at :10) at 12:10."""
    a = await make_worker_cue(client, auth, name="a")
    b = await make_worker_cue(
        client, auth, name="b", schedule={"type": "recurring", "cron": "10 * * * *"}
    )
    assert await fire(engine, clock, 300) == 1
    assert await fire(engine, clock, 300) == 2
    return a, b


async def test_list_shape_with_contract_keys(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    body = await listed(client, auth)

    assert set(body) == {"executions", "total", "limit", "offset", "has_more", "oldest_claimed_at"}
    assert (body["total"], body["limit"], body["offset"]) == (1, 20, 0)
    assert body["has_more"] is False
    assert body["oldest_claimed_at"] is None
    [item] = body["executions"]
    assert item == execution
    assert set(item) == EXECUTION_CONTRACT_KEYS | EXECUTION_ADDITIVE_KEYS


async def test_fresh_execution_values(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    assert uuid.UUID(execution["id"]).version == 4
    assert str(uuid.UUID(execution["id"])) == execution["id"]
    assert execution["status"] == "pending"
    assert execution["scheduled_for"] == "2026-01-05T12:05:00Z"
    assert execution["attempts"] == 0
    for key in (
        "http_status",
        "error_message",
        "started_at",
        "delivered_at",
        "last_attempt_at",
        "outcome",
        "claimed_by_worker",
        "outcome_state",
    ):
        assert execution[key] is None, key
    assert execution["created_at"] == "2026-01-05T12:05:00Z"
    assert execution["updated_at"] == "2026-01-05T12:05:00Z"


async def test_empty_list(client: httpx.AsyncClient, auth: dict[str, str]):
    body = await listed(client, auth)

    assert body == {
        "executions": [],
        "total": 0,
        "limit": 20,
        "offset": 0,
        "has_more": False,
        "oldest_claimed_at": None,
    }


async def test_list_is_newest_first(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(3):
        await fire(engine, clock, 60)

    body = await listed(client, auth, cue_id=cue["id"])

    assert [e["scheduled_for"] for e in body["executions"]] == [
        "2026-01-05T12:03:00Z",
        "2026-01-05T12:02:00Z",
        "2026-01-05T12:01:00Z",
    ]


async def test_list_filters_by_cue_id(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a, b = await two_cues_three_executions(client, engine, clock, auth)

    of_a = await listed(client, auth, cue_id=a["id"])
    of_b = await listed(client, auth, cue_id=b["id"])
    of_none = await listed(client, auth, cue_id="cue_doesnotexist")

    assert {e["cue_id"] for e in of_a["executions"]} == {a["id"]}
    assert of_a["total"] == 2
    assert [e["cue_id"] for e in of_b["executions"]] == [b["id"]]
    assert of_none["total"] == 0


async def test_list_filters_by_status_status_in_and_worker_id(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a, _ = await two_cues_three_executions(client, engine, clock, auth)
    oldest = (await listed(client, auth, cue_id=a["id"]))["executions"][-1]
    assert (await claim(client, auth, oldest["id"], "w1")).status_code == 200

    delivering = await listed(client, auth, status="delivering")
    pending = await listed(client, auth, status="pending")
    both = await listed(client, auth, status__in="pending,delivering")
    spaced = await listed(client, auth, status__in=" delivering , ,success")
    by_w1 = await listed(client, auth, worker_id="w1")
    by_w2 = await listed(client, auth, worker_id="w2")

    assert [e["id"] for e in delivering["executions"]] == [oldest["id"]]
    assert pending["total"] == 2
    assert oldest["id"] not in {e["id"] for e in pending["executions"]}
    assert both["total"] == 3
    assert [e["id"] for e in spaced["executions"]] == [oldest["id"]]
    assert [e["id"] for e in by_w1["executions"]] == [oldest["id"]]
    assert by_w1["executions"][0]["claimed_by_worker"] == "w1"
    assert by_w2["total"] == 0


async def test_list_filters_by_outcome_state(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    _, b = await two_cues_three_executions(client, engine, clock, auth)
    [done] = (await listed(client, auth, cue_id=b["id"]))["executions"]
    await report(client, auth, done["id"], success=True)

    reported = await listed(client, auth, outcome_state="reported_success")
    failed = await listed(client, auth, outcome_state="reported_failure")

    assert [e["id"] for e in reported["executions"]] == [done["id"]]
    assert reported["executions"][0]["outcome_state"] == "reported_success"
    assert failed["total"] == 0


async def test_filters_combine(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a, b = await two_cues_three_executions(client, engine, clock, auth)

    body = await listed(client, auth, cue_id=b["id"], status="pending")
    none = await listed(client, auth, cue_id=a["id"], status="delivering")

    assert body["total"] == 1
    assert none["total"] == 0


async def test_status_and_status_in_together_are_rejected_with_400(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await list_executions(client, auth, status="pending", status__in="pending")

    assert_error(
        response, 400, "conflicting_filters", "Pass either `status` or `status__in`, not both."
    )


@pytest.mark.parametrize("value", [",", "", " , ,"])
async def test_status_in_without_entries_is_rejected_with_400(
    client: httpx.AsyncClient, auth: dict[str, str], value: str
):
    response = await list_executions(client, auth, status__in=value)

    assert_error(response, 400, "invalid_status_in")


async def test_unknown_query_parameters_are_ignored(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await due_execution(client, engine, clock, auth)

    body = await listed(client, auth, triggered_by="manual_fire", colour="blue")

    assert body["total"] == 1


async def test_has_more_and_offset_paging(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(5):
        await fire(engine, clock, 60)

    first = await listed(client, auth, limit=2)
    middle = await listed(client, auth, limit=2, offset=2)
    last = await listed(client, auth, limit=2, offset=4)
    exact = await listed(client, auth, limit=5)
    beyond = await listed(client, auth, limit=2, offset=9)

    assert (first["has_more"], middle["has_more"], last["has_more"]) == (True, True, False)
    assert exact["has_more"] is False
    assert beyond["executions"] == []
    assert beyond["has_more"] is False
    assert {page["total"] for page in (first, middle, last, exact, beyond)} == {5}
    pages = first["executions"] + middle["executions"] + last["executions"]
    assert [e["id"] for e in pages] == [e["id"] for e in exact["executions"]]
    assert (middle["limit"], middle["offset"]) == (2, 2)


async def test_default_limit_is_20(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    await make_worker_cue(client, auth, schedule={"type": "recurring", "cron": "* * * * *"})
    for _ in range(21):
        await fire(engine, clock, 60)

    body = await listed(client, auth)

    assert len(body["executions"]) == 20
    assert body["total"] == 21
    assert body["has_more"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "query.limit"),
        ({"limit": 0}, "query.limit"),
        ({"offset": -1}, "query.offset"),
    ],
)
async def test_list_bounds_are_enforced_with_422(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any], field: str
):
    response = await list_executions(client, auth, **params)

    assert_validation_error(response, field)


async def test_limit_100_is_accepted(client: httpx.AsyncClient, auth: dict[str, str]):
    assert (await listed(client, auth, limit=100))["limit"] == 100


async def test_oldest_claimed_at_is_the_earliest_claim_of_the_filtered_set(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    a, b = await two_cues_three_executions(client, engine, clock, auth)
    [execution_b] = (await listed(client, auth, cue_id=b["id"]))["executions"]
    newest_a, oldest_a = (await listed(client, auth, cue_id=a["id"]))["executions"]
    await claim(client, auth, oldest_a["id"], "w1")  # at 12:10:00
    clock.advance(30)
    await claim(client, auth, execution_b["id"], "w2")  # at 12:10:30

    everything = await listed(client, auth)
    only_b = await listed(client, auth, cue_id=b["id"])
    only_pending = await listed(client, auth, status="pending")

    assert everything["oldest_claimed_at"] == "2026-01-05T12:10:00+00:00"
    assert only_b["oldest_claimed_at"] == "2026-01-05T12:10:30+00:00"
    assert OFFSET_DATETIME.match(only_b["oldest_claimed_at"])
    assert [e["id"] for e in only_pending["executions"]] == [newest_a["id"]]
    assert only_pending["oldest_claimed_at"] is None


async def test_list_shows_only_the_callers_executions(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    mine = await due_execution(client, engine, clock, auth)
    theirs = await due_execution(client, engine, clock, other_auth)

    body = await listed(client, auth)

    assert mine["id"] in {e["id"] for e in body["executions"]}
    assert {e["cue_id"] for e in body["executions"]} == {mine["cue_id"]}
    assert body["total"] == len(body["executions"])
    assert theirs["id"] not in {e["id"] for e in body["executions"]}
    foreign_cue = await listed(client, other_auth, cue_id=mine["cue_id"])
    assert foreign_cue["total"] == 0


async def test_get_one_returns_the_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)

    got = await get_execution(client, auth, execution["id"])

    assert isinstance(got.pop("payload"), dict)  # GET only: the payload the run carries
    assert got == execution
    for key in ("scheduled_for", "created_at", "updated_at"):
        assert Z_DATETIME.match(got[key]), key


async def test_get_after_claim_shows_the_claim(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    execution = await due_execution(client, engine, clock, auth)
    clock.advance(7)
    await claim(client, auth, execution["id"], "w9")

    got = await get_execution(client, auth, execution["id"])

    assert got["status"] == "delivering"
    assert got["attempts"] == 1
    assert got["claimed_by_worker"] == "w9"
    assert got["started_at"] == "2026-01-05T12:05:07Z"
    assert got["last_attempt_at"] == "2026-01-05T12:05:07Z"
    assert got["updated_at"] == "2026-01-05T12:05:07Z"
    assert got["outcome"] is None


@pytest.mark.parametrize(
    "execution_id",
    [
        UNKNOWN_ID,
        "not-a-uuid",
        "exec_01HXABCDEF",
        "12345",
        "00000000-0000-0000-0000-00000000000g",
    ],
)
async def test_get_unknown_or_malformed_id_is_404(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str
):
    response = await client.get(f"/v1/executions/{execution_id}", headers=auth)

    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_get_another_users_execution_is_404(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
):
    execution = await due_execution(client, engine, clock, auth)

    response = await client.get(f"/v1/executions/{execution['id']}", headers=other_auth)

    assert_error(response, 404, "execution_not_found", "Execution not found")


async def test_upper_case_id_finds_nothing_or_the_same_execution(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
):
    """Never a 500: an id in another case is either the same execution or a 404."""
    execution = await due_execution(client, engine, clock, auth)

    response = await client.get(f"/v1/executions/{execution['id'].upper()}", headers=auth)

    if response.status_code == 200:
        assert response.json()["id"] == execution["id"]
    else:
        assert_error(response, 404, "execution_not_found", "Execution not found")
