"""A cue's ``overlap_policy`` (issue 17): what a scheduled fire does while an earlier run of
the same cue is not over yet, on both stores. The worker side goes through the REST API."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_worker_cue, manual_run
from tests.helpers import assert_error, claim, get_execution, report

EVERY_5_S = {"type": "interval", "interval_seconds": 5}


def parse(value: str) -> datetime:
    """A ``Z`` or ``+00:00`` datetime string."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def runs_of(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str
) -> list[dict[str, Any]]:
    """Every execution of one cue, oldest scheduled first."""
    found: list[dict[str, Any]] = []
    while True:
        response = await client.get(
            "/v1/executions",
            params={"cue_id": cue_id, "limit": 100, "offset": len(found)},
            headers=auth,
        )
        assert response.status_code == 200, response.text
        page = response.json()["executions"]
        found += page
        if len(page) < 100:
            return sorted(found, key=lambda e: (e["scheduled_for"], e["created_at"]))


async def overlap_cue(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock, policy: str
) -> dict[str, Any]:
    """A worker cue every 5 s with ``policy``, the clock set to its first run."""
    cue = await make_worker_cue(client, auth, schedule=EVERY_5_S, overlap_policy=policy)
    assert cue["overlap_policy"] == policy
    clock.set(parse(cue["next_run"]))
    return cue


async def fire_ticks(engine: Engine, clock: FakeClock, ticks: int) -> None:
    """Fire the cue's current tick, then ``ticks - 1`` more, 5 s apart, as the loop would."""
    for index in range(ticks):
        if index:
            clock.advance(5)
        assert await engine.fire_due() == 1


def statuses(runs: list[dict[str, Any]]) -> list[str]:
    """The statuses of ``runs``, in order."""
    return [run["status"] for run in runs]


async def test_skip_with_no_worker_keeps_one_pending_and_records_the_rest_missed(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "skip")
    await fire_ticks(engine, clock, 180)  # 15 minutes, nobody working
    runs = await runs_of(client, auth, cue["id"])
    assert len(runs) == 180
    assert statuses(runs) == ["pending"] + ["missed"] * 179
    first = runs[0]["id"]
    for run in runs[1:]:
        assert run["error_message"] == (
            f"Skipped: overlapped execution {first} (overlap_policy skip)"
        )
        assert run["triggered_by"] == runs[0]["triggered_by"]  # still a scheduled fire


async def test_skip_runs_again_once_the_earlier_run_ended(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "skip")
    await fire_ticks(engine, clock, 1)
    [first] = await runs_of(client, auth, cue["id"])
    assert (await claim(client, auth, first["id"])).status_code == 200
    clock.advance(5)
    assert await engine.fire_due() == 1  # the first is being worked on: skipped
    assert (await report(client, auth, first["id"], success=True)).status_code == 200
    clock.advance(5)
    assert await engine.fire_due() == 1
    assert statuses(await runs_of(client, auth, cue["id"])) == ["success", "missed", "pending"]


async def test_buffer_one_keeps_exactly_one_run_waiting_behind_the_one_under_way(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "buffer_one")
    await fire_ticks(engine, clock, 1)
    [first] = await runs_of(client, auth, cue["id"])
    assert (await claim(client, auth, first["id"])).status_code == 200
    clock.advance(5)
    await fire_ticks(engine, clock, 10)
    runs = await runs_of(client, auth, cue["id"])
    assert statuses(runs) == ["delivering", "pending"] + ["missed"] * 9
    buffered = runs[1]["id"]
    assert all(buffered in run["error_message"] for run in runs[2:])
    assert all("overlap_policy buffer_one" in run["error_message"] for run in runs[2:])
    # the run under way ends: the buffered one is taken, and the next fire is buffered again
    assert (await report(client, auth, first["id"], success=True)).status_code == 200
    assert (await claim(client, auth, buffered, "w2")).status_code == 200
    clock.advance(5)
    assert await engine.fire_due() == 1
    runs = await runs_of(client, auth, cue["id"])
    assert statuses(runs)[-1] == "pending"
    assert [r["status"] for r in runs if r["status"] in ("pending", "delivering")] == [
        "delivering",
        "pending",
    ]


async def test_buffer_one_with_no_worker_keeps_the_first_run_waiting(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "buffer_one")
    await fire_ticks(engine, clock, 6)
    assert statuses(await runs_of(client, auth, cue["id"])) == ["pending"] + ["missed"] * 5


async def test_cancel_other_cancels_a_claimed_run_and_fences_its_worker(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "cancel_other")
    await fire_ticks(engine, clock, 1)
    [old] = await runs_of(client, auth, cue["id"])
    assert (await claim(client, auth, old["id"], "w1")).status_code == 200
    clock.advance(5)
    assert await engine.fire_due() == 1
    old_run, new_run = await runs_of(client, auth, cue["id"])
    assert new_run["status"] == "pending"
    assert old_run["status"] == "failed"
    message = f"cancelled: superseded by {new_run['id']} (overlap_policy cancel_other)"
    assert old_run["error_message"] == message
    # the old holder learns it through its heartbeat and its outcome; nothing is overwritten
    beat = await client.post(
        f"/v1/executions/{old['id']}/heartbeat", headers={**auth, "X-Worker-Id": "w1"}
    )
    assert_error(beat, 409, "execution_cancelled")
    released = await client.post(
        f"/v1/executions/{old['id']}/release", json={"worker_id": "w1"}, headers=auth
    )
    assert_error(released, 409, "execution_cancelled")
    late = await report(client, auth, old["id"], success=True, worker_id="w1")
    assert_error(late, 409, "execution_cancelled")
    unnamed = await report(client, auth, old["id"], success=True)
    assert_error(unnamed, 409, "execution_cancelled")
    batch = await client.post(
        "/v1/executions/outcomes",
        json={"outcomes": [{"execution_id": old["id"], "success": True}], "worker_id": "w1"},
        headers=auth,
    )
    assert batch.status_code == 200, batch.text
    [item] = batch.json()["results"]
    assert item["status"] == 409 and item["error"]["code"] == "execution_cancelled"
    after = await get_execution(client, auth, old["id"])
    assert after["status"] == "failed"
    assert after["error_message"] == message
    assert after.get("outcome") in (None, {}) or after["outcome"].get("success") is None
    # the new run is the one a worker gets
    assert (await claim(client, auth, new_run["id"], "w2")).status_code == 200


async def test_cancel_other_cancels_every_waiting_run_and_runs_the_newest(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "cancel_other")
    await fire_ticks(engine, clock, 4)
    runs = await runs_of(client, auth, cue["id"])
    assert statuses(runs) == ["failed", "failed", "failed", "pending"]
    for older, newer in itertools.pairwise(runs):
        assert older["error_message"] == (
            f"cancelled: superseded by {newer['id']} (overlap_policy cancel_other)"
        )


async def test_allow_is_unchanged(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "allow")
    await fire_ticks(engine, clock, 5)
    runs = await runs_of(client, auth, cue["id"])
    assert statuses(runs) == ["pending"] * 5
    assert all(run["error_message"] is None for run in runs)


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "cancel_other"])
async def test_manual_fires_are_not_subject_to_the_overlap_policy(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    engine: Engine,
    clock: FakeClock,
    policy: str,
) -> None:
    cue = await overlap_cue(client, auth, clock, policy)
    await fire_ticks(engine, clock, 1)
    first = await manual_run(client, auth, cue["id"])
    second = await manual_run(client, auth, cue["id"])
    assert first["status"] == second["status"] == "pending"
    assert statuses(await runs_of(client, auth, cue["id"])) == ["pending"] * 3


async def test_a_scheduled_fire_overlaps_a_manual_run(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth, schedule=EVERY_5_S, overlap_policy="skip")
    manual = await manual_run(client, auth, cue["id"])  # before the first tick
    clock.set(parse(cue["next_run"]))
    assert await engine.fire_due() == 1
    runs = await runs_of(client, auth, cue["id"])
    scheduled = next(run for run in runs if run["id"] != manual["id"])
    assert scheduled["status"] == "missed"
    assert manual["id"] in scheduled["error_message"]


async def test_cancel_other_fences_a_push_delivery_in_flight(
    engine: Engine, clock: FakeClock
) -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(payload: dict[str, Any]) -> str:
        started.set()
        await asyncio.wait_for(release.wait(), 10)
        return "done"

    engine.handler("slow")(slow)
    email = f"overlap-{uuid.uuid4().hex[:8]}@example.com"
    await engine.register(email)
    user = await engine.account(email)
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "push",
            "transport": "inprocess",
            "schedule": EVERY_5_S,
            "payload": {"task": "slow"},
            "overlap_policy": "cancel_other",
        },
    )
    assert cue.next_run is not None
    clock.set(cue.next_run)
    assert await engine.fire_due() == 1
    delivering = asyncio.create_task(engine.deliver_due())
    await asyncio.wait_for(started.wait(), 10)
    clock.advance(5)
    assert await engine.fire_due() == 1  # cancels the run being delivered
    release.set()
    await asyncio.wait_for(delivering, 10)
    runs, _ = await engine.cue_executions(user, cue.id)
    old, new = sorted(runs, key=lambda run: run.scheduled_for)
    assert old.status == "failed"
    assert old.error_message == (f"cancelled: superseded by {new.id} (overlap_policy cancel_other)")
    assert old.delivered_at is None
    assert new.status in ("pending", "success")  # the new run goes on (maybe delivered already)


async def test_cancel_other_cancels_a_run_another_transaction_holds_once_it_is_free(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await overlap_cue(client, auth, clock, "cancel_other")
    await fire_ticks(engine, clock, 1)
    [old] = await runs_of(client, auth, cue["id"])
    assert (await claim(client, auth, old["id"], "w1")).status_code == 200
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        """An outcome or a delivery result under way: the old run's row is locked."""
        async with engine.services.store.tx() as tx:
            await tx.update_execution(old["id"], {"updated_at": clock.now()})
            holding.set()
            await asyncio.wait_for(done.wait(), 10)

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(holding.wait(), 10)
    clock.advance(5)
    firing = asyncio.create_task(engine.fire_due())
    await asyncio.sleep(0.2)
    done.set()
    assert await asyncio.wait_for(firing, 10) == 1
    await asyncio.wait_for(holder, 10)
    old_run, new_run = await runs_of(client, auth, cue["id"])
    assert old_run["status"] == "failed"
    assert old_run["error_message"].startswith(f"cancelled: superseded by {new_run['id']}")
    assert new_run["status"] == "pending"
