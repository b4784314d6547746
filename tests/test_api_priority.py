"""Priority (cueflow extension, :mod:`cueflow.run_controls`): claimable lists, claim-next, batch
claims and push deliveries take higher ``priority`` first, and the oldest first within one
priority. Each test makes six one-time cues due a second apart whose priorities put the queue in
an order that neither the due times nor the creation order give."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_once_cue
from tests.helpers import NONE_AVAILABLE, assert_error, claim_next, claimable, patched_cue
from tests.inprocess_support import due_cue, opened
from tests.webhook_support import Receiver, api, new_user, open_engine
from tests.webhook_support import create_cue as create_webhook_cue

PRIORITIES = {"e": -1, "a": 0, "b": 5, "c": 5, "d": 10, "f": 0}
"""Cue name → priority, in the order the cues fall due (``e`` first, one second apart)."""
QUEUE_ORDER = ["d", "b", "c", "a", "f", "e"]
"""Higher priority first, then the one due first."""


async def due_mix(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    limited: dict[str, dict[str, Any]] | None = None,
) -> dict[str, str]:
    """The six cues of :data:`PRIORITIES` (those named in ``limited`` with that concurrency),
    fired; execution id → cue name."""
    names: dict[str, str] = {}
    for offset, (name, priority) in enumerate(PRIORITIES.items()):
        extra = {"concurrency": limited[name]} if limited and name in limited else {}
        cue = await make_once_cue(
            client,
            auth,
            clock,
            in_seconds=60 + offset,
            priority=priority,
            payload={"n": name},
            **extra,
        )
        names[cue["id"]] = name
    clock.advance(60 + len(PRIORITIES))
    assert await engine.fire_due() == len(PRIORITIES)
    listed = await claimable(client, auth)
    return {item["execution_id"]: names[item["cue_id"]] for item in listed}


async def test_the_claimable_list_shows_higher_priority_first_then_oldest(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    names = await due_mix(client, engine, clock, auth)

    listed = await claimable(client, auth)

    assert [names[item["execution_id"]] for item in listed] == QUEUE_ORDER
    first_three = await claimable(client, auth, limit=3)
    assert [names[item["execution_id"]] for item in first_three] == QUEUE_ORDER[:3]


async def test_claim_next_takes_higher_priority_first_then_oldest(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    names = await due_mix(client, engine, clock, auth)

    taken = []
    for _ in PRIORITIES:
        response = await claim_next(client, auth)
        assert response.status_code == 200, response.text
        taken.append(names[response.json()["execution_id"]])

    assert taken == QUEUE_ORDER
    assert_error(await claim_next(client, auth), 409, "claim_failed", NONE_AVAILABLE)


async def test_batch_claims_take_higher_priority_first_then_oldest(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    names = await due_mix(client, engine, clock, auth)

    batches = []
    for _ in range(2):
        response = await client.post(
            "/v1/executions/claims", json={"worker_id": "w1", "limit": 3}, headers=auth
        )
        assert response.status_code == 200, response.text
        batches.append([names[item["execution_id"]] for item in response.json()["claimed"]])

    assert batches == [QUEUE_ORDER[:3], QUEUE_ORDER[3:]]


async def test_a_batch_claim_keeps_queue_order_when_a_limit_holds_some_picks_back(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    # "d" and "b" share a concurrency key of one: the batch takes "d" with the unlimited picks
    # in one step and leaves "b" waiting, and the answer keeps the queue's order.
    shared = {"limit": 1, "key": "one-at-a-time"}
    names = await due_mix(client, engine, clock, auth, limited={"d": shared, "b": shared})

    response = await client.post(
        "/v1/executions/claims", json={"worker_id": "w1", "limit": 6}, headers=auth
    )

    assert response.status_code == 200, response.text
    taken = [names[item["execution_id"]] for item in response.json()["claimed"]]
    assert taken == [n for n in QUEUE_ORDER if n != "b"]
    assert all(
        item["payload"] == {"n": names[item["execution_id"]]} for item in response.json()["claimed"]
    )
    assert [names[item["execution_id"]] for item in await claimable(client, auth)] == []


async def test_a_priority_changed_by_patch_reorders_what_is_already_waiting(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    names = await due_mix(client, engine, clock, auth)
    by_name = {name: eid for eid, name in names.items()}
    listed = {i["execution_id"]: i["cue_id"] for i in await claimable(client, auth)}

    await patched_cue(client, auth, listed[by_name["e"]], {"priority": 11})

    response = await claim_next(client, auth)
    assert response.status_code == 200, response.text
    assert names[response.json()["execution_id"]] == "e"
    rest = [names[item["execution_id"]] for item in await claimable(client, auth)]
    assert rest == [n for n in QUEUE_ORDER if n != "e"]


async def test_priority_is_per_account_and_never_lets_one_take_anothers_work(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    await make_once_cue(client, other_auth, clock, in_seconds=60, priority=1000)
    mine = await make_once_cue(client, auth, clock, in_seconds=61, priority=-1000)
    clock.advance(61)
    assert await engine.fire_due() == 2

    response = await claim_next(client, auth)

    assert response.status_code == 200, response.text
    [item] = [i for i in await claimable(client, other_auth)]
    assert item["cue_id"] != mine["id"]


async def test_push_deliveries_start_with_higher_priority_when_slots_are_short(
    database_url: str, clock: FakeClock
) -> None:
    # One delivery slot: the dispatcher picks one due execution per pass, so the order the
    # receiver is called in is the order the dispatcher chose.
    async with (
        open_engine(database_url, clock, delivery_concurrency=1) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        auth = await new_user(client)
        start = clock.now()
        for offset, (name, priority) in enumerate(PRIORITIES.items()):
            at = (start + timedelta(seconds=60 + offset)).isoformat()
            await create_webhook_cue(
                client,
                auth,
                clock,
                receiver.url(f"/{name}"),
                schedule={"type": "once", "at": at},
                priority=priority,
            )
        clock.advance(60 + len(PRIORITIES))
        assert await engine.fire_due() == len(PRIORITIES)

        assert await engine.deliver_due() == len(PRIORITIES)

    assert [request.path.lstrip("/") for request in receiver.requests] == QUEUE_ORDER


async def test_in_process_handlers_start_with_higher_priority_when_slots_are_short(
    database_url: str, clock: FakeClock
) -> None:
    order: list[str] = []

    async with opened(database_url, clock, handler_concurrency=1) as engine:

        async def handle(payload: dict[str, Any]) -> str:
            order.append(str(payload["n"]))
            return "ok"

        engine.handler("prio")(handle)
        user = await engine.account("prio@example.com")
        start = clock.now()
        for offset, (name, priority) in enumerate(PRIORITIES.items()):
            at = (start + timedelta(seconds=60 + offset)).isoformat()
            schedule = {"type": "once", "at": at}
            await due_cue(
                engine,
                user,
                clock,
                "prio",
                schedule=schedule,
                priority=priority,
                payload={"n": name},
            )
        clock.advance(60 + len(PRIORITIES))
        assert await engine.fire_due() == len(PRIORITIES)

        assert await engine.deliver_due() == len(PRIORITIES)

    assert order == QUEUE_ORDER
