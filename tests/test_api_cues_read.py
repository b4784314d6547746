"""Reading cues (contract §2.2.4, §2.2.5): ``GET /v1/cues`` (pages, status filter, the caller's
own only) and ``GET /v1/cues/{id}`` (the cue with a page of its executions)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import fire, make_paused_cue, make_worker_cue
from tests.helpers import (
    CUE_KEYS,
    EXECUTION_ADDITIVE_KEYS,
    EXECUTION_CONTRACT_KEYS,
    assert_error,
    assert_validation_error,
    get_cue,
    list_cues,
)

DETAIL_KEYS = {"executions", "execution_total", "execution_limit", "execution_offset"}


# GET /v1/cues ----------------------------------------------------------------------------------
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
    paused = await make_paused_cue(client, auth)

    only_paused = (await list_cues(client, auth, status="paused")).json()
    only_active = (await list_cues(client, auth, status="active")).json()
    nothing = (await list_cues(client, auth, status="completed")).json()

    assert [c["id"] for c in only_paused["cues"]] == [paused["id"]]
    assert only_paused["total"] == 1
    assert [c["id"] for c in only_active["cues"]] == [active["id"]]
    assert nothing == {"cues": [], "total": 0, "limit": 50, "offset": 0}


async def test_list_searches_names_ignoring_case_and_wildcards(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    nightly = await make_worker_cue(client, auth, name="Nightly-Report")
    await make_worker_cue(client, auth, name="hourly-sync")
    literal = await make_worker_cue(client, auth, name="100%_done")

    found = (await list_cues(client, auth, name="REPORT")).json()
    assert [c["id"] for c in found["cues"]] == [nightly["id"]]
    assert found["total"] == 1
    percent = (await list_cues(client, auth, name="%_")).json()  # no LIKE wildcards
    assert [c["id"] for c in percent["cues"]] == [literal["id"]]
    assert (await list_cues(client, auth, name="weekly")).json()["total"] == 0


async def test_list_shows_only_the_callers_cues(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    mine = await make_worker_cue(client, auth)
    await make_worker_cue(client, other_auth)

    body = (await list_cues(client, auth)).json()

    assert [c["id"] for c in body["cues"]] == [mine["id"]]
    assert body["total"] == 1


# GET /v1/cues/{id} -----------------------------------------------------------------------------
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
