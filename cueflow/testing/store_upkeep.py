"""Store conformance, part four: account lookups, rotated keys, usage and queue figures, echo
messages and unserved deliveries."""

from __future__ import annotations

from datetime import timedelta

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.states import CueStatus
from cueflow.testing.harness import RecordingTransport, fire, new_user, one_time_cue
from cueflow.testing.store_fixtures import StoreFixtures

PUSH = RecordingTransport.name


class StoreUpkeepTests(StoreFixtures):
    """Lookups and figures the engine reads outside the claim and delivery paths."""

    async def test_a_user_is_found_by_its_exact_email(self, engine: Engine) -> None:
        user = await new_user(engine)
        async with engine.store.tx() as tx:
            found = await tx.user_by_email(user.email)
            missing = await tx.user_by_email("nobody@example.com")
        assert found is not None and (found.id, found.email) == (user.user_id, user.email)
        assert missing is None

    async def test_a_rotated_key_is_remembered_until_it_is_forgotten(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        rotated_at = clock.now()
        async with engine.store.tx() as tx:
            await tx.remember_rotated_key("a" * 64, user.user_id, rotated_at)
            await tx.remember_rotated_key("a" * 64, user.user_id, rotated_at)  # idempotent
        async with engine.store.tx() as tx:
            assert await tx.key_rotated_since("a" * 64, rotated_at)
            assert not await tx.key_rotated_since("a" * 64, rotated_at + timedelta(seconds=1))
            assert not await tx.key_rotated_since("b" * 64, rotated_at - timedelta(days=1))
            await tx.forget_rotated_keys(rotated_at)  # only keys replaced before this
            assert await tx.key_rotated_since("a" * 64, rotated_at)
            await tx.forget_rotated_keys(rotated_at + timedelta(seconds=1))
            assert not await tx.key_rotated_since("a" * 64, rotated_at - timedelta(days=1))

    async def test_cue_usage_and_queue_figures_count_what_they_name(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user, other = await new_user(engine), await new_user(engine)
        start = clock.now()
        await one_time_cue(engine, user)
        paused = await one_time_cue(engine, user)
        await engine.pause_cue(user, paused.id)
        await one_time_cue(engine, user, PUSH)
        await one_time_cue(engine, other)
        assert await fire(engine, clock) == 3  # the paused cue does not fire
        claimed = await engine.claim(user, "w1")
        await engine.report_outcome(user, claimed["execution_id"], {"success": False}, "w1")
        async with engine.store.tx() as tx:
            live = await tx.count_cues(user.user_id, [CueStatus.ACTIVE, CueStatus.PAUSED])
            counts = await tx.usage_counts(user.user_id, start)
            queue = await tx.queue_counts([PUSH], ["worker"], clock.now())
        assert live == 2  # the reported one-time cue failed; the push one waits, the paused one
        assert (counts["active_cues"], counts["paused_cues"]) == (1, 1)
        assert (counts["executions"], counts["reported"]) == (2, 1)
        assert (counts["succeeded"], counts["failed"], counts["failed_unreported"]) == (0, 1, 0)
        assert (queue["pending_outbox"], queue["pending_worker_claims"]) == (1, 1)
        assert (queue["stale_executions"], queue["pending_retries"]) == (0, 0)

    async def test_an_echo_message_is_kept_until_it_expires(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        now = clock.now()
        message = {
            "token": "tok-1",
            "payload": {"hello": ["world", 1]},
            "headers": {"content-type": "application/json"},
            "received_at": now,
            "expires_at": now + timedelta(minutes=5),
        }
        async with engine.store.tx() as tx:
            await tx.put_echo(message)
            await tx.put_echo({**message, "payload": {"hello": "again"}})  # replaces
        async with engine.store.tx() as tx:
            kept = await tx.get_echo("tok-1", now + timedelta(minutes=5))
            gone = await tx.get_echo("tok-1", now + timedelta(minutes=5, seconds=1))
            await tx.forget_echoes(now + timedelta(minutes=6))
            forgotten = await tx.get_echo("tok-1", now)
        assert kept is not None and kept.payload == {"hello": "again"}
        assert kept.headers == {"content-type": "application/json"}
        assert gone is None and forgotten is None

    async def test_unserved_deliveries_are_the_pending_ones_of_tasks_nobody_serves(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        served = await one_time_cue(engine, user, PUSH, payload={"task": "served"})
        await one_time_cue(engine, user, PUSH, payload={"task": "orphan"})
        assert await fire(engine, clock) == 2
        later = clock.now() + timedelta(seconds=1)
        async with engine.store.tx() as tx:
            unserved = await tx.unserved_deliveries(PUSH, ["served"], later, 10)
            none_yet = await tx.unserved_deliveries(PUSH, ["served"], clock.now(), 10)
        assert [run.task for run in unserved] == ["orphan"]
        assert served.task not in {run.task for run in unserved}
        assert none_yet == []
