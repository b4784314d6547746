"""cueflow's worker extensions: ``limit`` and ``wait`` (long-poll) on claimable, batch claims
(``POST /v1/executions/claims``) and batch outcomes (``POST /v1/executions/outcomes``).

Each batched item must behave exactly as the single request would: one lease per claim, an
execution to one worker only, outcomes written once, 409s reported per item.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_once_cue
from tests.helpers import assert_validation_error, claim, get_cue, get_execution, zulu


async def pending(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    count: int,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """``count`` one-time worker cues fired one second apart; their claimable items, oldest
    first."""
    for n in range(count):
        await make_once_cue(client, auth, clock, in_seconds=60 + n, payload={"n": n}, **overrides)
    clock.advance(60 + count)
    assert await engine.fire_due() == count
    response = await client.get("/v1/executions/claimable", headers=auth)
    return response.json()["executions"]


async def claims(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    """A batch claim that must answer 200."""
    response = await client.post(
        "/v1/executions/claims", json={"worker_id": "w1", **body}, headers=auth
    )
    assert response.status_code == 200, response.text
    return response.json()


async def outcomes(
    client: httpx.AsyncClient, auth: dict[str, str], items: list[dict[str, Any]], **body: Any
) -> list[dict[str, Any]]:
    """A batch outcome report that must answer 200; its per-item results."""
    response = await client.post(
        "/v1/executions/outcomes", json={"outcomes": items, **body}, headers=auth
    )
    assert response.status_code == 200, response.text
    return response.json()["results"]


async def test_claimable_limit(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    items = await pending(client, engine, clock, auth, 3)
    response = await client.get("/v1/executions/claimable?limit=2", headers=auth)
    assert [i["execution_id"] for i in response.json()["executions"]] == [
        i["execution_id"] for i in items[:2]
    ]
    for bad in ("0", "101", "many"):
        response = await client.get(f"/v1/executions/claimable?limit={bad}", headers=auth)
        assert_validation_error(response, "query.limit")


async def test_batch_claim_takes_the_oldest_with_payload_and_lease(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    items = await pending(client, engine, clock, auth, 5)
    first = await claims(client, auth, limit=3)
    assert [c["execution_id"] for c in first["claimed"]] == [i["execution_id"] for i in items[:3]]
    assert [c["payload"] for c in first["claimed"]] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert first["lease_seconds"] == engine.settings.worker_claim_timeout_seconds
    assert all(c["attempt"] == 1 for c in first["claimed"])
    # each item reads as a single claim's answer in the Workers document's shape too
    assert [c["id"] for c in first["claimed"]] == [c["execution_id"] for c in first["claimed"]]
    assert {c["status"] for c in first["claimed"]} == {"claimed"}
    assert {c["claimed_at"] for c in first["claimed"]} == {zulu(clock.now())}
    assert first["failed"] == []
    execution = await get_execution(client, auth, items[0]["execution_id"])
    assert execution["status"] == "delivering"
    assert execution["claimed_by_worker"] == "w1"
    rest = await claims(client, auth, limit=10, worker_id="w2")
    assert [c["execution_id"] for c in rest["claimed"]] == [i["execution_id"] for i in items[3:]]
    assert (await claims(client, auth, limit=10))["claimed"] == []


async def test_batch_claim_of_listed_ids_reports_each_refusal(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    items = await pending(client, engine, clock, auth, 3)
    ids = [i["execution_id"] for i in items]
    assert (await claim(client, auth, ids[1], worker_id="other")).status_code == 200
    unknown = str(uuid.uuid4())
    got = await claims(client, auth, execution_ids=[ids[0], ids[1], "not-an-id", unknown, ids[2]])
    assert [c["execution_id"] for c in got["claimed"]] == [ids[0], ids[2]]
    assert [f["execution_id"] for f in got["failed"]] == [ids[1], "not-an-id", unknown]
    assert {f["error"]["code"] for f in got["failed"]} == {"claim_failed"}
    assert {f["error"]["status"] for f in got["failed"]} == {409}
    held = await get_execution(client, auth, ids[1])
    assert held["claimed_by_worker"] == "other"


async def test_batch_claim_validates_its_body(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    for body, field in (
        ({"limit": 5}, "body.worker_id"),
        ({"worker_id": "w", "limit": 0}, "body.limit"),
        ({"worker_id": "w", "limit": 101}, "body.limit"),
        ({"worker_id": "w", "wait": 61}, "body.wait"),
        ({"worker_id": "w", "execution_ids": []}, "body.execution_ids"),
    ):
        response = await client.post("/v1/executions/claims", json=body, headers=auth)
        assert_validation_error(response, field)


async def test_batch_outcomes_write_each_once_and_finish_one_time_cues(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await pending(client, engine, clock, auth, 4)
    got = (await claims(client, auth, limit=4))["claimed"]
    ids = [c["execution_id"] for c in got]
    unknown = str(uuid.uuid4())
    results = await outcomes(
        client,
        auth,
        [
            {"execution_id": ids[0], "success": True, "result": "ok"},
            {"execution_id": ids[1], "success": True, "result": "ok"},
            {"execution_id": ids[2], "success": False, "error": "boom"},
            {"execution_id": unknown, "success": True},
            {"execution_id": ids[0], "success": False, "error": "again"},
        ],
        worker_id="w1",
    )
    assert [r["status"] for r in results] == [200, 200, 200, 404, 409]
    assert results[0]["outcome_recorded"] is True
    assert results[0]["outcome_state"] == "reported_success"
    assert results[2]["outcome_state"] == "reported_failure"
    assert results[3]["error"]["code"] == "execution_not_found"
    assert results[4]["error"]["code"] == "outcome_already_recorded"
    first = await get_execution(client, auth, ids[0])
    failed = await get_execution(client, auth, ids[2])
    assert first["status"] == "success"
    assert first["outcome"]["result"] == "ok"
    assert failed["status"] == "failed"
    assert failed["outcome"]["error"] == "boom"
    cue_of = {c["execution_id"]: c["cue_id"] for c in got}
    done = await get_cue(client, auth, cue_of[ids[0]])
    assert (done["status"], done["run_count"]) == ("completed", 1)
    assert (await get_cue(client, auth, cue_of[ids[2]]))["status"] == "failed"
    assert (await get_cue(client, auth, cue_of[ids[3]]))["status"] == "active"
    again = await outcomes(client, auth, [{"execution_id": ids[1], "success": True}])
    assert again[0]["status"] == 409
    assert again[0]["error"]["code"] == "outcome_already_recorded"


async def test_batch_outcome_from_a_worker_that_lost_its_lease_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await pending(client, engine, clock, auth, 2)
    ids = [c["execution_id"] for c in (await claims(client, auth, limit=2))["claimed"]]
    clock.advance(engine.settings.worker_claim_timeout_seconds + 1)
    assert await engine.sweep() == 2
    taken = await claims(client, auth, execution_ids=[ids[0]], worker_id="w2")
    assert [c["execution_id"] for c in taken["claimed"]] == [ids[0]]
    late = await outcomes(
        client,
        auth,
        [
            {"execution_id": ids[0], "success": False, "error": "late"},
            {"execution_id": ids[1], "success": True},
        ],
        worker_id="w1",
    )
    assert [r["status"] for r in late] == [409, 200]
    assert late[0]["error"]["code"] == "lease_lost"
    result = await outcomes(
        client, auth, [{"execution_id": ids[0], "success": True}], worker_id="w2"
    )
    assert result[0]["status"] == 200
    assert (await get_execution(client, auth, ids[0]))["status"] == "success"


async def test_batch_outcome_validates_its_body(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await client.post("/v1/executions/outcomes", json={"outcomes": []}, headers=auth)
    assert_validation_error(response, "body.outcomes")
    many = [{"execution_id": str(uuid.uuid4()), "success": True}] * 101
    response = await client.post("/v1/executions/outcomes", json={"outcomes": many}, headers=auth)
    assert_validation_error(response, "body.outcomes")
    response = await client.post(
        "/v1/executions/outcomes", json={"outcomes": [{"success": True}]}, headers=auth
    )
    assert response.status_code == 422


async def test_another_user_can_neither_claim_nor_report(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    items = await pending(client, engine, clock, auth, 2)
    ids = [i["execution_id"] for i in items]
    assert (await claims(client, other_auth, limit=10))["claimed"] == []
    stolen = await claims(client, other_auth, execution_ids=ids)
    assert stolen["claimed"] == []
    assert len(stolen["failed"]) == 2
    results = await outcomes(client, other_auth, [{"execution_id": ids[0], "success": True}])
    assert results[0]["status"] == 404
    assert (await get_execution(client, auth, ids[0]))["status"] == "pending"


async def test_long_poll_returns_when_work_arrives(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    # Two executions become due together: one for the batch claimer (limit 1), at least one
    # left for the poller whichever of them looks first.
    await make_once_cue(client, auth, clock, in_seconds=30)
    await make_once_cue(client, auth, clock, in_seconds=30)
    polling = asyncio.create_task(client.get("/v1/executions/claimable?wait=60", headers=auth))
    batch = asyncio.create_task(
        client.post(
            "/v1/executions/claims", json={"worker_id": "w", "wait": 60, "limit": 1}, headers=auth
        )
    )
    await asyncio.sleep(0.2)
    assert not polling.done()
    assert not batch.done()
    clock.advance(30)  # the cues are due: firing them wakes the waiters
    assert await engine.fire_due() == 2
    listed = await asyncio.wait_for(polling, 10)
    claimed = await asyncio.wait_for(batch, 10)
    assert len(listed.json()["executions"]) >= 1
    assert len(claimed.json()["claimed"]) == 1


async def test_long_poll_answers_empty_when_the_wait_is_over(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    polling = asyncio.create_task(client.get("/v1/executions/claimable?wait=5", headers=auth))
    await asyncio.sleep(0.2)
    assert not polling.done()
    # Move time past the wait, again if the request had not started waiting yet.
    for _ in range(20):
        clock.advance(6)
        done, _ = await asyncio.wait({polling}, timeout=0.5)
        if done:
            break
    response = await asyncio.wait_for(polling, 10)
    assert response.status_code == 200
    assert response.json() == {"executions": []}
    # An old client sends no wait and is answered at once.
    response = await asyncio.wait_for(client.get("/v1/executions/claimable", headers=auth), 5)
    assert response.json() == {"executions": []}


async def test_a_returned_claim_wakes_long_polls(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    items = await pending(client, engine, clock, auth, 1)
    eid = items[0]["execution_id"]
    assert (await claim(client, auth, eid)).status_code == 200
    polling = asyncio.create_task(client.get("/v1/executions/claimable?wait=30", headers=auth))
    await asyncio.sleep(0.2)
    assert not polling.done()
    released = await client.post(  # at once, not after the cue's retry backoff
        f"/v1/executions/{eid}/release",
        json={"worker_id": "w1", "retry_after_seconds": 0},
        headers=auth,
    )
    assert released.status_code == 200, released.text
    response = await asyncio.wait_for(polling, 10)
    assert [i["execution_id"] for i in response.json()["executions"]] == [eid]


async def test_racing_batch_claimers_each_get_distinct_executions(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await pending(client, engine, clock, auth, 60)

    async def claimer(n: int) -> list[str]:
        got: list[str] = []
        while True:
            batch = await engine.claim_batch(
                await engine.authenticate(auth["Authorization"]), f"w{n}", limit=7
            )
            if not batch.claimed:
                return got
            got += [run.id for run in batch.claimed]

    results = await asyncio.gather(*(claimer(n) for n in range(8)))
    claimed = [eid for got in results for eid in got]
    assert len(claimed) == 60
    assert len(set(claimed)) == 60


async def test_a_report_after_the_last_lease_ran_out_is_refused(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    await pending(client, engine, clock, auth, 2, retry={"max_attempts": 1})
    ids = [c["execution_id"] for c in (await claims(client, auth, limit=2))["claimed"]]
    clock.advance(engine.settings.worker_claim_timeout_seconds + 1)
    assert await engine.sweep() == 2
    assert (await get_execution(client, auth, ids[0]))["status"] == "failed"
    single = await client.post(
        f"/v1/executions/{ids[0]}/outcome", json={"success": True, "worker_id": "w1"}, headers=auth
    )
    assert single.status_code == 409
    assert single.json()["error"]["code"] == "lease_lost"
    late = await outcomes(client, auth, [{"execution_id": ids[1], "success": True}], worker_id="w1")
    assert (late[0]["status"], late[0]["error"]["code"]) == (409, "lease_lost")
    for eid in ids:
        execution = await get_execution(client, auth, eid)
        assert (execution["status"], execution["outcome"]) == ("failed", None)
