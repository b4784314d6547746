"""Large ``for_each`` fan-outs on both stores: 1,000 items, worked through batch claims and
batch outcomes, are each processed once and fan in, in order; the bound is a setting."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from cueflow.clock import FakeClock
from tests.conftest import register
from tests.flows_support import create_flow, run_of, start, task, work
from tests.webhook_support import api, open_engine

ITEMS = 1000


async def _claim_and_double(
    client: httpx.AsyncClient, auth: dict[str, str], step: str
) -> list[int]:
    """Claim up to 100 items of ``step`` and report each one's output (twice its item) in one
    batch of outcomes; the item indexes worked."""
    body = {"worker_id": "w1", "limit": 100, "task": step}
    response = await client.post("/v1/executions/claims", json=body, headers=auth)
    assert response.status_code == 200, response.text
    claimed = response.json()["claimed"]
    reports = []
    indexes = []
    for item in claimed:
        flow = item["payload"]["flow"]
        assert flow["item"] == flow["item_index"]
        indexes.append(flow["item_index"])
        reports.append(
            {"execution_id": item["execution_id"], "success": True, "output": flow["item"] * 2}
        )
    if reports:
        answer = await client.post(
            "/v1/executions/outcomes", json={"outcomes": reports}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        assert all("error" not in r for r in answer.json()["results"]), answer.text
    return indexes


async def test_a_for_each_over_1000_items_processes_each_item_once_and_fans_in_in_order(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(
        client,
        auth,
        [task("list"), task("each", "list", for_each="list"), task("sum", "each")],
    )
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=list(range(ITEMS)))
    worked: Counter[int] = Counter()
    for _ in range(ITEMS // 100 + 2):
        indexes = await _claim_and_double(client, auth, "each")
        worked.update(indexes)
        if not indexes:
            break
    assert sorted(worked) == list(range(ITEMS))
    assert set(worked.values()) == {1}, "an item was delivered twice"
    last = await work(client, auth, "sum")
    assert last["payload"]["flow"]["parents"] == {"each": [2 * i for i in range(ITEMS)]}
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    each = done["steps"]["each"]
    assert each["status"] == "succeeded"
    assert [i["item"] for i in each["items"]] == list(range(ITEMS))
    assert {i["attempts"] for i in each["items"]} == {1}
    assert len(set(each["execution_ids"])) == ITEMS
    listed = await client.get(
        "/v1/executions",
        params={"flow_run_id": run["id"], "step_id": "each", "limit": 1},
        headers=auth,
    )
    assert listed.json()["total"] == ITEMS


async def test_a_for_each_over_more_items_than_the_bound_fails_the_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("list"), task("each", "list", for_each="list")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "list", output=list(range(ITEMS + 1)))
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "failed"
    assert done["steps"]["each"]["error"]["type"] == "for_each"
    assert f"over {ITEMS} items" in done["steps"]["each"]["error"]["reason"]
    assert done["steps"]["each"]["items"] == []


@pytest.fixture
async def bounded(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an engine whose ``for_each`` bound is 3 (``CUEFLOW_FLOW_FOR_EACH_LIMIT``)."""
    async with (
        open_engine(database_url, clock, flow_for_each_limit=3) as engine,
        api(engine) as client,
    ):
        yield client


async def test_the_for_each_bound_is_a_setting(bounded: httpx.AsyncClient) -> None:
    auth = await register(bounded)
    flow = await create_flow(bounded, auth, [task("list"), task("each", "list", for_each="list")])
    fits = await start(bounded, auth, flow["id"])
    await work(bounded, auth, "list", output=[1, 2, 3])
    assert len((await run_of(bounded, auth, fits["id"]))["steps"]["each"]["items"]) == 3
    over = await start(bounded, auth, flow["id"])
    await work(bounded, auth, "list", output=[1, 2, 3, 4])
    failed = await run_of(bounded, auth, over["id"])
    assert failed["steps"]["each"]["error"]["reason"] == "for_each 'list' output has over 3 items"
