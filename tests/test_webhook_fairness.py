"""Push deliveries are shared fairly: one account's slow receivers cannot hold every delivery
slot, and every attempt ends at its total deadline, DNS lookup and body included."""

from __future__ import annotations

import asyncio
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from cueflow.clock import FakeClock
from cueflow.fair_share import Slot, destination, share
from cueflow.records import DeliveryCandidate
from tests.conftest import eventually
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    executions_of,
    fire,
    new_user,
    open_engine,
    webhook,
)


async def test_one_accounts_hanging_receivers_do_not_delay_another_accounts_webhooks(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(
            database_url, clock, delivery_concurrency=8, delivery_per_account_concurrency=4
        ) as engine,
        api(engine) as client,
        Receiver() as healthy,
        # Closed before the engine stops, so the attempts still hanging end at once.
        Receiver(delay=3600) as hanging,
        Receiver(trickle=0.2) as trickling,
    ):
        hostile, tenant = await new_user(client), await new_user(client)
        for n in range(60):
            await create_cue(client, hostile, clock, (hanging, trickling)[n % 2].url())
        clock.advance(1)  # the healthy tenant's cues fall due later: the hostile ones are older
        cues = [await create_cue(client, tenant, clock, healthy.url()) for _ in range(3)]
        await engine.start()

        clock.advance(61)

        # Far below the hostile receivers' 30 s attempt deadline.
        await eventually(lambda: _all_delivered(client, tenant, cues), timeout=3)
        assert len(healthy.requests) == 3
        assert len(hanging.requests) + len(trickling.requests) == 4  # the account's cap
        # What the hostile account could not start yet was never claimed: no attempt used.
        waiting = await client.get(
            "/v1/executions", params={"status": "pending", "limit": 100}, headers=hostile
        )
        assert waiting.json()["total"] == 56
        assert {e["attempts"] for e in waiting.json()["executions"]} == {0}


async def _all_delivered(client: Any, auth: dict[str, str], cues: list[dict]) -> bool:
    for cue in cues:
        executions = await executions_of(client, auth, cue["id"])
        if not executions or executions[0]["status"] != "success":
            return False
    return True


def _row(account: str, minute: int, url: str | None = None) -> DeliveryCandidate:
    when = datetime(2026, 1, 5, 12, minute, tzinfo=UTC)
    return DeliveryCandidate(f"{account}{minute}", account, when, url)


def test_free_slots_go_round_robin_to_the_accounts_with_fewest_deliveries_in_flight() -> None:
    candidates = [_row("a", m) for m in range(5)] + [_row("b", 7), _row("b", 8), _row("c", 9)]
    busy = [Slot("webhook", "a"), Slot("webhook", "a")]

    chosen = share(candidates, 4, busy, per_account=3, per_host=0)

    assert [r.id for r in chosen] == ["b7", "c9", "b8", "a0"]


def test_no_account_or_destination_goes_over_its_cap() -> None:
    slow = "https://slow.example.test/hook"
    candidates = [_row("a", m) for m in range(5)] + [_row("b", 7, slow), _row("c", 8, slow)]
    busy = [Slot("webhook", "a"), Slot("webhook", "z", destination(slow))]

    chosen = share(candidates, 10, busy, per_account=3, per_host=2)

    assert [r.id for r in chosen] == ["b7", "a0", "a1"]
    assert destination(slow) == "slow.example.test:443"
    assert destination("http://Hooks.example.test.:8080/x") == "hooks.example.test:8080"


async def test_a_trickling_answer_ends_the_attempt_at_its_deadline(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock, webhook_timeout_seconds=0.5) as engine,
        api(engine) as client,
        Receiver(trickle=0.05) as trickling,
    ):
        auth = await new_user(client)
        cue = await create_cue(client, auth, clock, trickling.url(), retry={"max_attempts": 2})

        assert await fire(engine, clock) == 1

        [execution] = await executions_of(client, auth, cue["id"])
        assert (execution["status"], execution["error_message"]) == (
            "retrying",
            "Webhook endpoint timed out",
        )


async def test_a_slow_dns_answer_ends_the_attempt_at_its_deadline(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock, webhook_timeout_seconds=0.5) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        slow = False

        async def resolve(host: str) -> list[str]:
            if slow:
                await asyncio.sleep(3)
            return ["127.0.0.1"]

        webhook(engine).guard.resolve = resolve
        auth = await new_user(client)
        url = receiver.url(host="hooks.example.test")
        cue = await create_cue(client, auth, clock, url, retry={"max_attempts": 2})
        slow = True

        assert await fire(engine, clock) == 1

        assert receiver.requests == []
        [execution] = await executions_of(client, auth, cue["id"])
        assert (execution["status"], execution["error_message"]) == (
            "retrying",
            "Webhook endpoint timed out",
        )


async def test_stuck_system_dns_lookups_neither_outlast_the_deadline_nor_take_the_shared_pool(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = socket.getaddrinfo
    stuck = threading.Event()
    release = threading.Event()

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not str(host).endswith(".slow.test"):
            return real(host, *args, **kwargs)
        if stuck.is_set():
            release.wait(10)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    async with (
        open_engine(database_url, clock, webhook_timeout_seconds=0.5) as engine,
        api(engine) as client,
        Receiver() as receiver,
    ):
        auth = await new_user(client)
        # More names than the event loop's default executor has threads on a small machine.
        cues = [
            await create_cue(client, auth, clock, receiver.url(host=f"h{n}.slow.test"))
            for n in range(8)
        ]
        stuck.set()
        try:
            assert await fire(engine, clock) == 8

            # The loop's shared thread pool still serves while every lookup hangs.
            assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), 1) == "free"
        finally:
            release.set()
        assert receiver.requests == []
        for cue in cues:
            [execution] = await executions_of(client, auth, cue["id"])
            assert execution["error_message"] == "Webhook endpoint timed out"
