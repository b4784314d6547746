"""Store conformance, part six: fire idempotency keys (:class:`cueflow.store.IdempotencyStore`):
one holder per key and cue, expired keys forgotten, and concurrent units of work holding one key
ending with a single holder."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.testing.harness import SCENARIO_TIMEOUT, new_user, one_time_cue
from cueflow.testing.store_fixtures import StoreFixtures

DAY = timedelta(hours=24)


class StoreFireKeyTests(StoreFixtures):
    """The fire idempotency keys a manual fire's ``idempotency_key`` is held by."""

    async def test_a_fire_key_has_one_holder_until_it_expires(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        other = await one_time_cue(engine, user)
        now = clock.now()
        async with engine.store.tx() as tx:
            first = await tx.hold_fire_key(user.user_id, cue.id, "k", "exec-a", now, now - DAY)
            again = await tx.hold_fire_key(user.user_id, cue.id, "k", "exec-b", now, now - DAY)
            elsewhere = await tx.hold_fire_key(
                user.user_id, other.id, "k", "exec-c", now, now - DAY
            )
        assert (first, again, elsewhere) == ("exec-a", "exec-a", "exec-c")
        async with engine.store.tx() as tx:
            held = await tx.fire_key_holder(user.user_id, cue.id, "k", now - DAY)
            unknown = await tx.fire_key_holder(user.user_id, cue.id, "other", now - DAY)
            too_old = await tx.fire_key_holder(user.user_id, cue.id, "k", now + timedelta(1))
        assert (held, unknown, too_old) == ("exec-a", None, None)

        later = now + DAY + timedelta(seconds=1)
        async with engine.store.tx() as tx:  # the expired key is forgotten, then held anew
            renewed = await tx.hold_fire_key(
                user.user_id, cue.id, "k", "exec-d", later, later - DAY
            )
            old = await tx.fire_key_holder(user.user_id, cue.id, "k", now - DAY)
        assert (renewed, old) == ("exec-d", "exec-d")

    async def test_an_expired_key_of_the_cue_is_pruned_when_another_is_held(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        now = clock.now()
        later = now + DAY + timedelta(seconds=1)
        async with engine.store.tx() as tx:
            await tx.hold_fire_key(user.user_id, cue.id, "old", "exec-a", now, now - DAY)
        async with engine.store.tx() as tx:
            await tx.hold_fire_key(user.user_id, cue.id, "new", "exec-b", later, later - DAY)
            pruned = await tx.fire_key_holder(user.user_id, cue.id, "old", now - DAY)
        assert pruned is None

    async def test_concurrent_holders_of_one_key_end_with_one(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            assert await _race(engine, user.user_id, cue.id, "kept", commit_first=True) == "exec-1"
            assert await _race(engine, user.user_id, cue.id, "undone", commit_first=False) == (
                "exec-2"
            )


async def _race(
    engine: Engine, user_id: str, cue_id: str, key: str, *, commit_first: bool
) -> str | None:
    """Hold ``key`` in one unit of work and, while it is open, in a second; the first then
    commits (or rolls back). Returns what the second answered."""
    now = engine.clock.now()
    held, finish = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with engine.store.tx() as tx:
            await tx.hold_fire_key(user_id, cue_id, key, "exec-1", now, now - DAY)
            held.set()
            await finish.wait()
            if not commit_first:
                raise LookupError("roll back")

    async def second() -> str | None:
        async with engine.store.tx() as tx:
            return await tx.hold_fire_key(user_id, cue_id, key, "exec-2", now, now - DAY)

    holding = asyncio.create_task(first())
    await held.wait()
    racing = asyncio.create_task(second())
    await asyncio.sleep(0.2)  # let the second unit of work reach the key (or the lock)
    finish.set()
    with contextlib.suppress(LookupError):
        await holding
    return await racing
