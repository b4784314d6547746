"""The ``inprocess`` transport on both stores, running a handler: the payload in, the return
value or exception as the outcome, retries, failure policies and timeouts.

Time moves on the fake clock; ``fire_due``/``deliver_due`` drive the engine. Handler runs take
real time, so the waits inside handlers are short and bounded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from cueflow import HandlerContext
from cueflow.api.render import execution_json
from cueflow.clock import FakeClock
from cueflow.cues import CueValidationError
from tests.inprocess_support import due_cue, fire, only_execution, opened


async def test_sync_and_async_handlers_run_with_the_payload_and_return_the_outcome(
    database_url: str, clock: FakeClock
) -> None:
    calls: list[tuple[str, Any]] = []
    async with opened(database_url, clock) as engine:

        @engine.handler("sync-report")
        def sync_report(payload: dict[str, Any]) -> dict[str, Any]:
            calls.append(("sync", payload))
            return {"rows": payload["n"], "city": "Zürich"}

        @engine.handler("async-report")
        async def async_report(payload: dict[str, Any], context: HandlerContext) -> str:
            calls.append(("async", (payload, context)))
            return f"done {payload['n']}"

        user = await engine.account("app@example.com")
        first = await due_cue(engine, user, clock, "sync-report", payload={"n": 1})
        second = await due_cue(engine, user, clock, "async-report", payload={"n": 2})

        assert await fire(engine, clock) == 2

        sync_run = await only_execution(engine, user, first.id)
        async_run = await only_execution(engine, user, second.id)
        assert ("sync", {"task": "sync-report", "n": 1}) in calls
        [(payload, context)] = [args for kind, args in calls if kind == "async"]
        assert payload == {"task": "async-report", "n": 2}
        assert context == HandlerContext(
            execution_id=async_run.id,
            cue_id=second.id,
            cue_name=second.name,
            task="async-report",
            scheduled_for=second.schedule_at,
            attempt=1,
        )
        for execution, result in (
            (sync_run, '{"rows": 1, "city": "Zürich"}'),
            (async_run, "done 2"),
        ):
            wire = execution_json(execution)
            assert wire["status"] == "success"
            assert wire["attempts"] == 1
            assert wire["error_message"] is None
            assert wire["http_status"] is None
            assert wire["delivered_at"] is not None
            assert wire["outcome_state"] == "reported_success"
            outcome = wire["outcome"]
            assert outcome["success"] is True
            assert outcome["result"] == result
            assert outcome["error"] is None
            assert outcome["recorded_at"] == execution.delivered_at
        cue = await engine.get_cue(user, first.id)
        assert cue.status == "completed"
        assert cue.run_count == 1
        assert await engine.deliver_due() == 0


async def test_results_are_text_json_or_nothing_and_cut_to_2000_characters(
    database_url: str, clock: FakeClock
) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    returns: dict[str, Any] = {
        "long": "x" * 5000,
        "none": None,
        "list": [1, "two", None],
        "opaque": {"value": Opaque()},
        "nul": "a\x00b",
    }
    expected = {
        "long": "x" * 2000,
        "none": None,
        "list": '[1, "two", null]',
        "opaque": '{"value": "opaque"}',
        "nul": "ab",
    }
    async with opened(database_url, clock) as engine:
        for name, value in returns.items():
            engine.handler(name)(lambda payload, value=value: value)
        engine.handler("awaitable")(lambda payload: asyncio.sleep(0, "awaited"))
        expected["awaitable"] = "awaited"
        user = await engine.account("app@example.com")
        cues = {name: await due_cue(engine, user, clock, name) for name in expected}

        assert await fire(engine, clock) == len(expected)

        for name, cue in cues.items():
            execution = await only_execution(engine, user, cue.id)
            assert execution.status == "success"
            assert execution.outcome_result == expected[name], name


async def test_an_exception_is_retried_per_policy_then_fails_with_the_outcome_error(
    database_url: str, clock: FakeClock
) -> None:
    attempts: list[int] = []
    async with opened(database_url, clock) as engine:

        @engine.handler("flaky")
        def flaky(payload: dict[str, Any], context: HandlerContext) -> None:
            attempts.append(context.attempt)
            raise RuntimeError(f"boom {context.attempt}")

        user = await engine.account("app@example.com")
        cue = await due_cue(
            engine, user, clock, "flaky", retry={"max_attempts": 3, "backoff_minutes": [1, 5]}
        )

        assert await fire(engine, clock) == 1
        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "retrying"
        assert execution.error_message == "boom 1"
        assert execution.outcome_recorded_at is None
        assert execution.next_retry == clock.now() + timedelta(minutes=1)

        assert await fire(engine, clock, 59) == 0
        assert await fire(engine, clock, 1) == 1
        execution = await only_execution(engine, user, cue.id)
        assert (execution.status, execution.error_message) == ("retrying", "boom 2")
        assert execution.next_retry == clock.now() + timedelta(minutes=5)

        assert await fire(engine, clock, 300) == 1
        execution = await only_execution(engine, user, cue.id)
        assert attempts == [1, 2, 3]
        wire = execution_json(execution)
        assert wire["status"] == "failed"
        assert wire["attempts"] == 3
        assert wire["error_message"] == "boom 3"
        assert wire["outcome_state"] == "reported_failure"
        assert wire["outcome"]["success"] is False
        assert wire["outcome"]["error"] == "boom 3"
        assert wire["outcome"]["result"] is None
        assert (await engine.get_cue(user, cue.id)).status == "failed"
        alerts, total = await engine.list_alerts(user)
        assert total == 1
        assert alerts[0].alert_type == "delivery_failed"
        assert await fire(engine, clock, 3600) == 0


async def test_final_failure_of_a_recurring_cue_applies_on_failure_pause(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock) as engine:

        @engine.handler("broken")
        async def broken(payload: dict[str, Any]) -> None:
            raise ValueError

        user = await engine.account("app@example.com")
        cue, _ = await engine.create_cue(
            user,
            {
                "name": "every-five",
                "transport": "inprocess",
                "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
                "payload": {"task": "broken"},
                "retry": {"max_attempts": 1},
                "on_failure": {"pause": True},
            },
        )

        assert await fire(engine, clock, 300) == 1

        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "failed"
        assert execution.error_message == "ValueError"
        assert execution.outcome_error == "ValueError"
        assert (await engine.get_cue(user, cue.id)).status == "paused"


async def test_a_run_longer_than_the_cue_timeout_is_a_failed_attempt(
    database_url: str, clock: FakeClock
) -> None:
    release = threading.Event()
    cancelled = asyncio.Event()
    async with opened(database_url, clock) as engine:

        @engine.handler("slow-async")
        async def slow_async(payload: dict[str, Any]) -> str:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return "too late"

        @engine.handler("slow-sync")
        def slow_sync(payload: dict[str, Any]) -> str:
            release.wait(10)
            return "too late"

        user = await engine.account("app@example.com")
        once = {"max_attempts": 1}
        slow = [
            await due_cue(engine, user, clock, task, timeout_seconds=1, retry=once)
            for task in ("slow-async", "slow-sync")
        ]
        try:
            started = time.monotonic()
            assert await fire(engine, clock) == 2
            assert time.monotonic() - started < 5
        finally:
            release.set()

        assert cancelled.is_set()
        for cue in slow:
            assert cue.timeout_seconds == 1
            execution = await only_execution(engine, user, cue.id)
            assert execution.status == "failed"
            assert execution.error_message == "Handler timed out after 1 s"
            assert execution.outcome_error == "Handler timed out after 1 s"


async def test_the_handler_timeout_setting_is_the_default_and_the_limit(
    database_url: str, clock: FakeClock
) -> None:
    async with opened(database_url, clock, handler_timeout_seconds=1) as engine:
        transport = engine.transports["inprocess"]
        assert transport.lease_seconds == 1 + engine.settings.delivery_lease_margin_seconds

        @engine.handler("slow")
        async def slow(payload: dict[str, Any]) -> None:
            await asyncio.sleep(30)

        user = await engine.account("app@example.com")
        with pytest.raises(CueValidationError) as refused:
            await due_cue(engine, user, clock, "slow", timeout_seconds=2)
        assert refused.value.message == (
            "body.timeout_seconds: Value error, timeout_seconds must be at most 1 "
            "(CUEFLOW_HANDLER_TIMEOUT_SECONDS)"
        )
        cue = await due_cue(engine, user, clock, "slow", retry={"max_attempts": 1})
        assert cue.timeout_seconds is None

        assert await fire(engine, clock) == 1

        execution = await only_execution(engine, user, cue.id)
        assert execution.error_message == "Handler timed out after 1 s"
