"""Webhook fan-out: a burst of webhooks due at once is delivered once each and recorded in few
transactions, and a receiver that never answers holds only its host's share of the delivery
slots, so another tenant's webhooks go out at their normal pace."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

import cueflow.push_attempts as push_attempts
from cueflow.clock import FakeClock
from tests.conftest import eventually
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    executions_of,
    fire,
    new_user,
    open_engine,
)


@asynccontextmanager
async def silent_receiver() -> AsyncIterator[tuple[str, list[asyncio.StreamWriter]]]:
    """A local server that accepts every connection and never answers (nor reads); yields its
    URL and the connections it holds, all closed on exit."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook", held
    finally:
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()


async def test_a_receiver_that_never_answers_does_not_delay_another_tenants_webhooks(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        # No per-account cap: only the per-host bound keeps the silent host from every slot.
        open_engine(
            database_url,
            clock,
            delivery_concurrency=8,
            delivery_per_account_concurrency=0,
            delivery_per_host_concurrency=3,
        ) as engine,
        api(engine) as client,
        Receiver() as healthy,
        # Closed first, so the attempts still hanging end before the engine stops.
        silent_receiver() as (silent_url, held),
    ):
        # As many accounts as slots share the silent host: fairness between accounts alone
        # would give it every slot.
        hostile = [await new_user(client) for _ in range(8)]
        for n in range(32):
            await create_cue(client, hostile[n % 8], clock, silent_url)
        tenant = await new_user(client)
        clock.advance(1)  # the tenant's cues fall due later: the hostile ones are older
        cues = [await create_cue(client, tenant, clock, healthy.url()) for _ in range(12)]
        await engine.start()

        clock.advance(61)

        # Far below the silent receiver's 30 s attempt deadline.
        await eventually(lambda: _all_delivered(client, tenant, cues), timeout=5)
        assert len(held) == 3  # the host's share of the slots, no more
        ids = [json.loads(r.body)["execution_id"] for r in healthy.requests]
        assert len(ids) == 12 and len(set(ids)) == 12  # each delivered once
        waiting = [
            (await client.get("/v1/executions", params={"status": "pending"}, headers=auth)).json()[
                "executions"
            ]
            for auth in hostile
        ]
        # What the silent host could not take yet was never claimed: no attempt used.
        assert sum(len(page) for page in waiting) == 29
        assert {e["attempts"] for page in waiting for e in page} == {0}


def _count_recorder_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the batches the attempt recorder writes itself, in order, from now on."""
    sizes: list[int] = []
    record = push_attempts.record_attempts

    async def counted(services: Any, attempts: Any) -> Any:
        sizes.append(len(attempts))
        return await record(services, attempts)

    monkeypatch.setattr(push_attempts, "record_attempts", counted)
    return sizes


async def test_a_burst_is_delivered_once_each_and_recorded_in_few_transactions(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches = _count_recorder_writes(monkeypatch)
    async with (
        open_engine(database_url, clock, delivery_per_account_concurrency=0) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        auth = await new_user(client)
        cues = [await create_cue(client, auth, clock, receiver.url()) for _ in range(60)]

        assert await fire(engine, clock) == 60

        ids = Counter(json.loads(r.body)["execution_id"] for r in receiver.requests)
        assert len(ids) == 60 and set(ids.values()) == {1}
        assert sum(batches) == 60 and len(batches) < 60
        for cue in cues:
            [execution] = await executions_of(client, auth, cue["id"])
            assert (execution["status"], execution["http_status"]) == ("success", 200)
            assert execution["id"] in ids
            shown = (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()
            assert (shown["status"], shown["run_count"]) == ("completed", 1)
        assert await fire(engine, clock) == 0  # nothing left to deliver again


async def test_failures_and_successes_finishing_together_are_each_recorded(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock, delivery_per_account_concurrency=0) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        receiver.reply("/bad", 500)
        auth = await new_user(client)
        good = [await create_cue(client, auth, clock, receiver.url("/good")) for _ in range(10)]
        bad = [
            await create_cue(client, auth, clock, receiver.url("/bad"), retry={"max_attempts": 2})
            for _ in range(10)
        ]

        assert await fire(engine, clock) == 20

        for cue in good:
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["status"] == "success"
        for cue in bad:
            [execution] = await executions_of(client, auth, cue["id"])
            assert (execution["status"], execution["http_status"]) == ("retrying", 500)
            assert execution["error_message"] == "Webhook endpoint returned server error (500)"


async def _all_delivered(client: Any, auth: dict[str, str], cues: list[dict[str, Any]]) -> bool:
    for cue in cues:
        executions = await executions_of(client, auth, cue["id"])
        if not executions or executions[0]["status"] != "success":
            return False
    return True


async def test_with_the_loop_running_results_are_recorded_by_the_passes_that_claim_again(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_writes = _count_recorder_writes(monkeypatch)
    async with (
        open_engine(database_url, clock, delivery_per_account_concurrency=4) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        auth = await new_user(client)
        cues = [await create_cue(client, auth, clock, receiver.url()) for _ in range(20)]
        await engine.start()

        clock.advance(61)

        await eventually(lambda: _all_delivered(client, auth, cues), timeout=10)
        ids = Counter(json.loads(r.body)["execution_id"] for r in receiver.requests)
        assert len(ids) == 20 and set(ids.values()) == {1}
        # each result went into the transaction of a dispatcher pass, none into one of its own
        assert own_writes == []
        for cue in cues:
            shown = (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()
            assert (shown["status"], shown["run_count"]) == ("completed", 1)
