"""The ``inprocess`` transport on both stores, around the handlers: the concurrency bound, sync
handlers off the loop, unknown handlers, executions that wait for a process holding their
handler, outcomes reported through the API first, and what a delivery carries.

Time moves on the fake clock; ``fire_due``/``deliver_due`` drive the engine. Handler runs take
real time, so the waits inside handlers are short and bounded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cueflow import HandlerContext
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.cues import CueValidationError
from cueflow.engine import Engine
from cueflow.errors import PluginError
from cueflow.push_attempts import delivery_of
from cueflow.records import DueDelivery
from cueflow.states import Event, move
from cueflow.transport import Delivery
from tests.conftest import register
from tests.helpers import assert_error
from tests.inprocess_support import WAITING, due_cue, fire, only_execution, opened


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_concurrent_handler_runs_never_exceed_the_bound(
    database_url: str, clock: FakeClock, kind: str
) -> None:
    lock = threading.Lock()
    running = 0
    most = 0

    def enter() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)

    def leave() -> None:
        nonlocal running
        with lock:
            running -= 1

    def alone() -> bool:
        """Whether no other run is in flight yet (runs wait a little for a peer, so the test
        sees the bound reached even on a slow machine)."""
        with lock:
            return running < 2

    async with opened(database_url, clock, handler_concurrency=2) as engine:
        if kind == "async":

            async def work(payload: dict[str, Any]) -> int:
                enter()
                for _ in range(100):
                    if not alone():
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0.01)
                leave()
                return int(payload["n"])

        else:

            def work(payload: dict[str, Any]) -> int:
                enter()
                for _ in range(100):
                    if not alone():
                        break
                    time.sleep(0.005)
                time.sleep(0.01)
                leave()
                return int(payload["n"])

        engine.handler("work")(work)
        user = await engine.account("app@example.com")
        cues = [await due_cue(engine, user, clock, "work", payload={"n": n}) for n in range(10)]

        assert await fire(engine, clock) == 10

        assert most == 2
        for n, cue in enumerate(cues):
            execution = await only_execution(engine, user, cue.id)
            assert (execution.status, execution.outcome_result) == ("success", str(n))

        # The transport bounds its own runs too, whoever calls it.
        most = 0
        await due_cue(engine, user, clock, "work", payload={"n": 0})
        clock.advance(60)
        await engine.fire_due()
        [row] = await claimed_rows(engine)
        transport = engine.transports["inprocess"]
        delivery = delivery_of(row, transport)
        results = await asyncio.gather(*(transport.deliver(delivery) for _ in range(10)))
        assert all(result.ok for result in results)
        assert most == 2


async def claimed_rows(engine: Engine) -> list[DueDelivery]:
    """Claim the due ``inprocess`` executions the way the dispatcher does (without running)."""
    now = engine.clock.now()
    values = {"lease_expires_at": now + timedelta(minutes=10), "updated_at": now}
    async with engine.store.tx() as tx:
        return await tx.claim_deliveries("inprocess", move(Event.CLAIM), now, 10, values)


async def test_a_blocking_sync_handler_does_not_stall_the_event_loop(
    database_url: str, clock: FakeClock
) -> None:
    blocker_started = threading.Event()
    released = threading.Event()
    threads: list[threading.Thread] = []
    async with opened(database_url, clock) as engine:

        @engine.handler("blocker")
        def blocker(payload: dict[str, Any]) -> bool:
            threads.append(threading.current_thread())
            blocker_started.set()
            return released.wait(5)  # only an async handler running meanwhile releases it

        @engine.handler("releaser")
        async def releaser(payload: dict[str, Any]) -> str:
            for _ in range(500):
                if blocker_started.is_set():
                    break
                await asyncio.sleep(0.01)
            released.set()
            return "released"

        user = await engine.account("app@example.com")
        blocking = await due_cue(engine, user, clock, "blocker")
        releasing = await due_cue(engine, user, clock, "releaser")

        assert await fire(engine, clock) == 2

        assert threads and threads[0] is not threading.main_thread()
        assert (await only_execution(engine, user, blocking.id)).outcome_result == "true"
        assert (await only_execution(engine, user, releasing.id)).status == "success"


async def test_a_cue_naming_no_registered_handler_is_refused_when_handlers_are_known(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as engine:
        engine.handler("known")(lambda payload: None)
        app = create_app(engine, manage_engine=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
        ) as client:
            auth = await register(client)
            body = {
                "name": "report",
                "transport": "inprocess",
                "schedule": {"type": "recurring", "cron": "0 9 * * *"},
            }

            unknown = await client.post(
                "/v1/cues", json={**body, "payload": {"task": "other"}}, headers=auth
            )
            assert_error(
                unknown,
                422,
                "validation_error",
                "body: Value error, no in-process handler named 'other' is registered",
            )
            for payload in ({}, {"task": ""}, {"task": 7}, {"task": "x" * 256}):
                missing = await client.post(
                    "/v1/cues", json={**body, "payload": payload}, headers=auth
                )
                error = assert_error(missing, 422, "validation_error")
                assert error["message"].startswith("body: Value error, payload.task ")
            too_long = await client.post(
                "/v1/cues",
                json={**body, "payload": {"task": "known"}, "timeout_seconds": 301},
                headers=auth,
            )
            assert_error(too_long, 422, "validation_error")
            zero = await client.post(
                "/v1/cues",
                json={**body, "payload": {"task": "known"}, "timeout_seconds": 0},
                headers=auth,
            )
            assert_error(zero, 422, "validation_error")

            created = await client.post(
                "/v1/cues",
                json={**body, "payload": {"task": "known"}, "timeout_seconds": 30},
                headers=auth,
            )
            assert created.status_code == 201, created.text
            cue = created.json()
            assert (cue["transport"], cue["timeout_seconds"], cue["warning"]) == (
                "inprocess",
                30,
                None,
            )
            renamed = await client.patch(
                f"/v1/cues/{cue['id']}", json={"payload": {"task": "other"}}, headers=auth
            )
            assert_error(renamed, 422, "validation_error")
            changed = await client.patch(
                f"/v1/cues/{cue['id']}", json={"timeout_seconds": 60}, headers=auth
            )
            assert changed.status_code == 200, changed.text
            assert changed.json()["timeout_seconds"] == 60
            assert (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()[
                "timeout_seconds"
            ] == 60


async def test_without_handlers_a_cue_is_accepted_and_waits_visibly_for_a_process_with_one(
    database_url: str, clock: FakeClock
) -> None:
    sqlite = database_url.startswith("sqlite")
    async with opened(database_url, clock) as rest_node:
        user = await rest_node.account("app@example.com")
        with pytest.raises(CueValidationError):
            await due_cue(rest_node, user, clock, "")
        served = await due_cue(rest_node, user, clock, "x", payload={"n": 1})
        unserved = await due_cue(rest_node, user, clock, "y")

        assert await fire(rest_node, clock) == 0
        for cue in (served, unserved):
            execution = await only_execution(rest_node, user, cue.id)
            assert (execution.status, execution.error_message) == ("pending", None)
        assert await rest_node.dispatcher.next_due() is None  # nothing to wake up for

        clock.advance(2 * rest_node.settings.delivery_poll_seconds + 1)
        assert await rest_node.deliver_due() == 0
        for cue, task in ((served, "x"), (unserved, "y")):
            execution = await only_execution(rest_node, user, cue.id)
            assert execution.status == "pending"
            assert execution.attempts == 0
            assert execution.error_message == WAITING.format(task)
        if sqlite:  # one process at a time on a SQLite file
            await rest_node.close()

        ran: list[dict[str, Any]] = []
        async with opened(database_url, clock) as handler_node:
            handler_node.handler("x")(lambda payload: ran.append(payload) or "ran")

            assert await handler_node.deliver_due() == 1

            execution = await only_execution(handler_node, user, served.id)
            assert ran == [{"task": "x", "n": 1}]
            assert (execution.status, execution.error_message) == ("success", None)
            assert execution.outcome_result == "ran"
            waiting = await only_execution(handler_node, user, unserved.id)
            assert (waiting.status, waiting.error_message) == ("pending", WAITING.format("y"))


async def test_an_outcome_reported_through_the_api_first_is_kept(
    database_url: str, clock: FakeClock
) -> None:
    proceed = asyncio.Event()
    running = asyncio.Event()
    async with opened(database_url, clock) as engine:

        @engine.handler("slow")
        async def slow(payload: dict[str, Any]) -> str:
            running.set()
            await asyncio.wait_for(proceed.wait(), 5)
            return "from the handler"

        user = await engine.account("app@example.com")
        cue = await due_cue(engine, user, clock, "slow")
        clock.advance(60)
        await engine.fire_due()
        delivering = asyncio.create_task(engine.deliver_due())
        await asyncio.wait_for(running.wait(), 5)
        execution = await only_execution(engine, user, cue.id)
        await engine.report_outcome(user, execution.id, {"success": True, "result": "first"})
        proceed.set()
        assert await asyncio.wait_for(delivering, 5) == 1

        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "success"
        assert execution.outcome_result == "first"


async def test_handler_names_register_once(database_url: str, clock: FakeClock) -> None:
    async with opened(database_url, clock) as engine:
        engine.handler("once")(lambda payload: None)
        with pytest.raises(ValueError, match="already registered"):
            engine.handler("once")(lambda payload: None)
        with pytest.raises(ValueError):
            engine.handler("")(lambda payload: None)
    async with opened(database_url, clock, disable_plugins="inprocess") as engine:
        with pytest.raises(PluginError, match="in-process handlers"):
            engine.handler("x")


async def test_an_in_process_delivery_carries_no_signing_secret(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with opened(database_url, clock) as engine:
        transport = engine.transports["inprocess"]
        seen: list[Delivery] = []
        deliver = transport.deliver  # type: ignore[attr-defined]

        async def recording(delivery: Delivery) -> Any:
            seen.append(delivery)
            return await deliver(delivery)

        monkeypatch.setattr(transport, "deliver", recording)
        engine.handler("quiet")(lambda payload: "ok")
        user = await engine.account("app@example.com")
        secret = await engine.webhook_secret(user)
        await due_cue(engine, user, clock, "quiet")
        assert await fire(engine, clock) == 1
        [delivery] = seen
        assert delivery.callback is None
        assert secret.startswith("whsec_") and secret not in repr(delivery)


def test_handler_context_is_importable_from_the_core_and_the_plugin_alike() -> None:
    import cueflow_inprocess

    import cueflow

    assert cueflow_inprocess.HandlerContext is HandlerContext is cueflow.HandlerContext
    assert HandlerContext.__module__ == "cueflow.handler_context"
