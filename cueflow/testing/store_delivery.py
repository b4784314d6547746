"""Store conformance, part three: execution listings, push delivery and alerts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.states import Event, move
from cueflow.store import ExecutionFilter
from cueflow.testing.harness import (
    SCENARIO_TIMEOUT,
    RecordingTransport,
    fire,
    new_user,
    one_time_cue,
    only_execution,
)
from cueflow.testing.store_fixtures import OpenEngine, StoreFixtures
from cueflow.transport import DeliveryResult

PUSH = RecordingTransport.name


async def deliver_due(engine: Engine) -> int:
    """Deliver every due push execution, bounded in time."""
    async with asyncio.timeout(SCENARIO_TIMEOUT):
        return await engine.deliver_due()


class StoreDeliveryTests(StoreFixtures):
    """Reading executions back, and the push side of the queue."""

    async def test_executions_list_newest_first_with_filters_and_pages(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        first = await one_time_cue(engine, user, delay=60)
        second = await one_time_cue(engine, user, delay=120)
        await fire(engine, clock)
        await fire(engine, clock)
        a = (await only_execution(engine, user, first.id)).id
        b = (await only_execution(engine, user, second.id)).id
        await engine.claim(user, "w1", a)
        claimed_at = clock.now()
        clock.advance(1)
        page = await engine.list_executions(user, ExecutionFilter(worker_id="w1"))
        assert [r.id for r in page.rows] == [a]
        assert page.oldest_claimed_at == claimed_at
        await engine.report_outcome(user, a, {"success": True}, "w1")

        everything = await engine.list_executions(user)
        assert everything.total == 2
        assert [r.id for r in everything.rows] == [b, a]
        checks = [
            (ExecutionFilter(cue_id=first.id), [a]),
            (ExecutionFilter(statuses=["pending"]), [b]),
            (ExecutionFilter(statuses=["success", "pending"]), [b, a]),
            (ExecutionFilter(worker_id="w1"), [a]),
            (ExecutionFilter(worker_id="nobody"), []),
            (ExecutionFilter(outcome_state="reported_success"), [a]),
        ]
        for where, expected in checks:
            found = await engine.list_executions(user, where)
            assert [r.id for r in found.rows] == expected, where
            assert found.total == len(expected), where
        second_page = await engine.list_executions(user, limit=1, offset=1)
        assert ([r.id for r in second_page.rows], second_page.total) == ([a], 2)

    async def test_a_cues_executions_come_newest_first_in_pages(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue, _ = await engine.create_cue(
            user,
            {
                "name": "every-five-minutes",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
            },
        )
        for _ in range(3):
            assert await fire(engine, clock, seconds=300) == 1
        rows, total = await engine.cue_executions(user, cue.id, limit=2)
        assert total == 3
        start = clock.now()
        assert [r.scheduled_for for r in rows] == [start, start - timedelta(minutes=5)]
        rows, _ = await engine.cue_executions(user, cue.id, limit=2, offset=2)
        assert [r.scheduled_for for r in rows] == [start - timedelta(minutes=10)]

    async def test_a_push_delivery_that_succeeds_is_recorded_once(
        self, engine: Engine, clock: FakeClock, recorder: RecordingTransport
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, PUSH, payload={"task": "push", "n": 1})
        await fire(engine, clock)
        assert await deliver_due(engine) == 1
        assert await deliver_due(engine) == 0
        execution = await only_execution(engine, user, cue.id)
        assert execution.status == "success"
        assert (execution.attempts, execution.http_status) == (1, 200)
        assert execution.delivered_at == clock.now()
        [delivery] = recorder.deliveries
        assert (delivery.execution_id, delivery.cue_id) == (execution.id, cue.id)
        assert (delivery.attempt, delivery.payload) == (1, {"task": "push", "n": 1})
        assert delivery.cue_name == cue.name
        assert delivery.callback is None  # the recorder sends no callbacks, sees no secret
        after = await engine.get_cue(user, cue.id)
        assert (after.status, after.run_count) == ("completed", 1)

    async def test_a_failing_push_delivery_is_retried_then_fails_with_an_alert(
        self, engine: Engine, clock: FakeClock, recorder: RecordingTransport
    ) -> None:
        recorder.results = [
            DeliveryResult(ok=False, http_status=500, error="boom"),
            DeliveryResult(ok=False, http_status=503, error="still down"),
        ]
        user = await new_user(engine)
        cue = await one_time_cue(
            engine, user, PUSH, retry={"max_attempts": 2, "backoff_minutes": [1]}
        )
        await fire(engine, clock)
        assert await deliver_due(engine) == 1
        retrying = await only_execution(engine, user, cue.id)
        assert (retrying.status, retrying.error_message) == ("retrying", "boom")
        assert retrying.next_retry == clock.now() + timedelta(minutes=1)
        async with engine.store.tx() as tx:
            assert await tx.next_delivery_due([PUSH]) == retrying.next_retry
        clock.advance(59)
        assert await deliver_due(engine) == 0
        clock.advance(1)
        assert await deliver_due(engine) == 1
        failed = await only_execution(engine, user, cue.id)
        assert (failed.status, failed.attempts, failed.http_status) == ("failed", 2, 503)
        assert (await engine.get_cue(user, cue.id)).status == "failed"
        alerts, total = await engine.list_alerts(user)
        assert total == 1
        assert (alerts[0].alert_type, alerts[0].execution_id) == (
            "delivery_failed",
            failed.id,
        )
        assert (await engine.list_alerts(user, alert_type="outcome_timeout"))[1] == 0
        later = clock.now() + timedelta(seconds=1)
        assert (await engine.list_alerts(user, since=later))[1] == 0

    async def test_a_push_attempt_whose_lease_runs_out_counts_as_failed_and_is_retried(
        self, engine: Engine, clock: FakeClock, recorder: RecordingTransport
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(
            engine, user, PUSH, retry={"max_attempts": 3, "backoff_minutes": [1]}
        )
        await fire(engine, clock)
        now = clock.now()
        lease = {
            "lease_expires_at": now + timedelta(seconds=30),
            "last_attempt_at": now,
            "updated_at": now,
        }
        async with engine.store.tx() as tx:  # a node claims the attempt, then dies
            [claimed] = await tx.claim_deliveries(PUSH, move(Event.CLAIM), now, 10, lease)
        assert (claimed.cue_id, claimed.attempts) == (cue.id, 1)
        assert claimed.cue_name == cue.name and claimed.payload == cue.payload
        assert claimed.webhook_secret.startswith("whsec_")
        async with engine.store.tx() as tx:
            assert await tx.next_delivery_due([PUSH]) == now + timedelta(seconds=30)
        clock.advance(31)
        assert await deliver_due(engine) == 0
        interrupted = await only_execution(engine, user, cue.id)
        assert interrupted.status == "retrying" and interrupted.error_message
        clock.advance(60)
        assert await deliver_due(engine) == 1
        assert (await only_execution(engine, user, cue.id)).status == "success"
        assert [d.attempt for d in recorder.deliveries] == [2]

    async def test_delivery_candidates_are_each_accounts_oldest_taken_round_robin(
        self, engine: Engine, clock: FakeClock, recorder: RecordingTransport
    ) -> None:
        busy, quiet = await new_user(engine), await new_user(engine)
        for delay in (60, 61, 62, 63):
            await one_time_cue(engine, busy, PUSH, delay=delay)
        for delay in (64, 65):
            await one_time_cue(engine, quiet, PUSH, delay=delay)
        assert await fire(engine, clock, 70) == 6
        now, claim = clock.now(), move(Event.CLAIM)
        async with engine.store.tx() as tx:
            every = await tx.due_deliveries(PUSH, claim, now, 10, 2)
            first_turns = await tx.due_deliveries(PUSH, claim, now, 3, 2)
            only_quiet = await tx.due_deliveries(PUSH, claim, now, 10, 2, None, [busy.user_id])
        owners = [row.user_id for row in sorted(every, key=lambda r: r.scheduled_for)]
        assert owners == [busy.user_id] * 2 + [quiet.user_id] * 2
        assert sorted(r.user_id for r in first_turns) == sorted(
            [busy.user_id] * 2 + [quiet.user_id]
        )
        assert {r.user_id for r in only_quiet} == {quiet.user_id}
        assert all(r.callback_url is None for r in every)
        chosen = only_quiet[0].id
        async with engine.store.tx() as tx:
            claimed = await tx.claim_deliveries(PUSH, claim, now, 5, {}, ids=[chosen])
        assert [row.id for row in claimed] == [chosen]
        assert await deliver_due(engine) == 5

    async def test_two_nodes_delivering_together_deliver_each_execution_once(
        self,
        engine: Engine,
        clock: FakeClock,
        recorder: RecordingTransport,
        another_engine: OpenEngine,
    ) -> None:
        user = await new_user(engine)
        for _ in range(10):
            await one_time_cue(engine, user, PUSH)
        assert await fire(engine, clock) == 10
        async with another_engine() as other:
            made = await asyncio.gather(deliver_due(engine), deliver_due(other))
        assert sum(made) == 10
        assert len({d.execution_id for d in recorder.deliveries}) == 10
        page = await engine.list_executions(user, ExecutionFilter(statuses=["success"]))
        assert page.total == 10
