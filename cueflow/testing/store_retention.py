"""Store conformance, part seven: history retention (:class:`cueflow.store.RetentionStore`):
bounded deletes of ended executions that keep each cue's newest finished runs and never touch
unfinished ones, counts that match what is deleted, and the retention lock."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.states import RUN_TERMINAL, TERMINAL, Status
from cueflow.store import PruneCut
from cueflow.testing.harness import new_user, one_time_cue
from cueflow.testing.store_fixtures import StoreFixtures

OLD = timedelta(days=60)


async def _seed(
    engine: Engine, user: Principal, cue_id: str, status: Status, count: int, second: int
) -> None:
    now = engine.clock.now()
    async with engine.store.tx() as tx:
        for n in range(count):
            at = now - OLD + timedelta(minutes=n, seconds=second)
            values = {
                "id": str(uuid.uuid4()),
                "cue_id": cue_id,
                "user_id": user.user_id,
                "transport": "worker",
                "scheduled_for": at,
                "status": status.value,
                "created_at": at,
                "updated_at": at,
            }
            assert await tx.insert_execution(values)


class StoreRetentionTests(StoreFixtures):
    """What the retention loop asks of a store."""

    async def test_old_ended_executions_go_in_bounded_batches_and_open_ones_stay(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        await _seed(engine, user, cue.id, Status.SUCCESS, 7, second=0)
        await _seed(engine, user, cue.id, Status.PENDING, 2, second=30)
        cut = PruneCut(
            before=clock.now() - timedelta(days=30),
            statuses=tuple(sorted(s.value for s in TERMINAL)),
            finished=(Status.FAILED.value, Status.SUCCESS.value),
            keep_latest=2,
            run_statuses=tuple(sorted(s.value for s in RUN_TERMINAL)),
        )
        later = clock.now()
        async with engine.store.tx() as tx:
            assert await tx.try_lock_retention()
            counted = await tx.retention_counts(cut, cut.before, cut.before, later)
        assert counted["executions"] == 5  # the newest two finished runs stay
        deleted = []
        for _ in range(4):
            async with engine.store.tx() as tx:
                deleted.append(await tx.prune_executions(cut, 2))
        assert deleted == [2, 2, 1, 0]
        page = await engine.cue_executions(user, cue.id, limit=20)
        assert sorted(row.status for row in page[0]) == [Status.PENDING] * 2 + [Status.SUCCESS] * 2
        async with engine.store.tx() as tx:
            assert (await tx.retention_counts(cut, cut.before, cut.before, later))[
                "executions"
            ] == 0
            assert await tx.prune_flow_runs(cut, 10) == (0, 0, 0)
            assert await tx.prune_alerts(cut.before, 10) == 0
