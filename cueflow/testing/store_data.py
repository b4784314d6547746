"""Store conformance, part one: accounts, cues, tenant scoping and units of work."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict, CueflowError, NotFound
from cueflow.testing.harness import fire, new_user, one_time_cue
from cueflow.testing.store_fixtures import OpenEngine, StoreFixtures

PAYLOAD: dict[str, Any] = {
    "task": "report",
    "city": "Zürich ☃",
    "nested": {"list": [1, 2.5, None, True, "x"], "empty": {}},
    "big": 2**53,
}


class StoreDataTests(StoreFixtures):
    """Accounts, cues and isolation between users."""

    async def test_opening_an_opened_store_again_is_harmless(self, engine: Engine) -> None:
        await engine.open()
        user = await new_user(engine)
        assert (await engine.list_cues(user))[1] == 0

    async def test_data_survives_closing_and_reopening_the_store(
        self, engine: Engine, another_engine: OpenEngine
    ) -> None:
        user = await new_user(engine, "keep@example.com")
        cue = await one_time_cue(engine, user, name="kept")
        await engine.close()
        async with another_engine() as reopened:
            found = await reopened.get_cue(user, cue.id)
            assert found.name == "kept"

    async def test_a_registered_key_authenticates_and_a_second_registration_is_refused(
        self, engine: Engine
    ) -> None:
        key = (await engine.register("someone@example.com"))["api_key"]
        user = await engine.principal(key)
        assert user.email == "someone@example.com"
        with pytest.raises(Conflict) as refused:
            await engine.register("someone@example.com")
        assert refused.value.code == "duplicate_email"

    async def test_a_scoped_key_authenticates_with_its_scope_until_revoked(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        owner = await new_user(engine)
        created = await engine.create_api_key(owner, "worker", "host")
        user = await engine.principal(created["api_key"])
        assert (user.user_id, user.scope, user.key_id) == (owner.user_id, "worker", created["id"])
        [listed] = (await engine.list_api_keys(owner)).keys
        assert (listed.id, listed.scope, listed.name) == (created["id"], "worker", "host")
        assert listed.last_used_at == clock.now()  # written by the lookup above
        await engine.revoke_api_key(owner, created["id"])
        with pytest.raises(CueflowError) as refused:
            await engine.principal(created["api_key"])
        assert refused.value.code == "key_revoked"
        assert (await engine.list_api_keys(owner)).keys == []
        with pytest.raises(NotFound):
            await engine.revoke_api_key(owner, created["id"])

    async def test_a_cue_reads_back_with_every_value_it_was_created_with(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        clock.advance(0.25)  # sub-second precision must survive the round trip
        cue = await one_time_cue(
            engine,
            user,
            name="full",
            description="all the fields",
            payload=PAYLOAD,
            retry={"max_attempts": 5, "backoff_minutes": [1, 5, 15]},
            on_failure={"email": False, "webhook": None, "pause": True},
        )
        found = await engine.get_cue(user, cue.id)
        assert found.name == "full"
        assert found.description == "all the fields"
        assert found.payload == PAYLOAD
        assert found.retry_max_attempts == 5
        assert found.retry_backoff_minutes == [1, 5, 15]
        assert found.on_failure == {"email": False, "webhook": None, "pause": True}
        assert found.status == "active"
        assert found.created_at == clock.now()
        assert found.created_at.utcoffset() == timedelta(0)
        assert found.next_run == clock.now() + timedelta(seconds=60)
        assert found.next_run is not None and found.next_run.tzinfo is not None
        assert found.schedule_at is not None
        assert found.schedule_at.astimezone(UTC) == found.next_run

    async def test_a_cue_name_is_unique_per_user_only(self, engine: Engine) -> None:
        alice, bob = await new_user(engine), await new_user(engine)
        await one_time_cue(engine, alice, name="daily")
        with pytest.raises(CueflowError) as refused:
            await one_time_cue(engine, alice, name="daily")
        assert (refused.value.code, refused.value.status) == ("duplicate_cue_name", 409)
        await one_time_cue(engine, bob, name="daily")

    async def test_cues_list_newest_first_in_pages_with_total_and_status_filter(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        ids = []
        for n in range(5):
            ids.append((await one_time_cue(engine, user, name=f"cue-{n}")).id)
            clock.advance(1)
        rows, total = await engine.list_cues(user, limit=2, offset=1)
        assert total == 5
        assert [r.id for r in rows] == [ids[3], ids[2]]
        await engine.pause_cue(user, ids[0])
        paused, count = await engine.list_cues(user, status="paused")
        assert count == 1 and [r.id for r in paused] == [ids[0]]
        assert (await engine.list_cues(user, status="active"))[1] == 4

    async def test_updating_a_cue_changes_only_what_was_sent(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, name="before", payload={"task": "a", "n": 1})
        clock.advance(5)
        changed = await engine.update_cue(user, cue.id, {"payload": {"task": "b"}})
        assert changed.payload == {"task": "b"}
        assert changed.name == "before"
        assert changed.updated_at == clock.now()
        assert changed.created_at == cue.created_at
        paused = await engine.pause_cue(user, cue.id)
        assert (paused.status, paused.next_run) == ("paused", None)
        resumed = await engine.resume_cue(user, cue.id)
        assert resumed.status == "active"
        assert resumed.next_run == cue.next_run

    async def test_deleting_a_cue_deletes_its_executions(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user)
        assert await fire(engine, clock) == 1
        execution = (await engine.list_executions(user)).rows[0]
        await engine.delete_cue(user, cue.id)
        with pytest.raises(NotFound):
            await engine.get_cue(user, cue.id)
        with pytest.raises(NotFound):
            await engine.get_execution(user, execution.id)
        assert (await engine.list_executions(user)).total == 0
        with pytest.raises(NotFound):
            await engine.delete_cue(user, cue.id)

    async def test_users_never_reach_each_others_cues_or_executions(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        owner, stranger = await new_user(engine), await new_user(engine)
        cue = await one_time_cue(engine, owner)
        assert await fire(engine, clock) == 1
        execution = (await engine.list_executions(owner)).rows[0]
        for attempt in (
            engine.get_cue(stranger, cue.id),
            engine.update_cue(stranger, cue.id, {"name": "stolen"}),
            engine.delete_cue(stranger, cue.id),
            engine.get_execution(stranger, execution.id),
        ):
            with pytest.raises(NotFound):
                await attempt
        assert (await engine.list_cues(stranger))[1] == 0
        assert (await engine.list_executions(stranger)).total == 0
        assert await engine.cue_executions(stranger, cue.id) == ([], 0)
        assert await engine.claimable(stranger) == []
        with pytest.raises(Conflict):
            await engine.claim(stranger, "thief", execution.id)
        assert (await engine.get_cue(owner, cue.id)).name == cue.name

    async def test_a_unit_of_work_that_raises_is_rolled_back(self, engine: Engine) -> None:
        user = await new_user(engine)
        cue = await one_time_cue(engine, user, name="original")
        with pytest.raises(RuntimeError):
            async with engine.store.tx() as tx:
                await tx.update_cue(user.user_id, cue.id, {"name": "renamed"})
                raise RuntimeError("abort the unit of work")
        assert (await engine.get_cue(user, cue.id)).name == "original"

    async def test_a_user_row_changes_only_when_its_expectation_holds(self, engine: Engine) -> None:
        user = await new_user(engine)
        async with engine.store.tx() as tx:
            refused = await tx.update_user(
                user.user_id, {"alert_webhook_secret": "x"}, expect={"plan": "enterprise"}
            )
            first = await tx.update_user(
                user.user_id, {"alert_webhook_secret": "one"}, expect={"alert_webhook_secret": None}
            )
            second = await tx.update_user(
                user.user_id, {"alert_webhook_secret": "two"}, expect={"alert_webhook_secret": None}
            )
        assert refused is None
        assert first is not None and first.alert_webhook_secret == "one"
        assert second is None

    async def test_the_earliest_next_run_is_that_of_the_soonest_active_cue(
        self, engine: Engine
    ) -> None:
        user = await new_user(engine)
        later = await one_time_cue(engine, user, delay=120)
        sooner = await one_time_cue(engine, user, delay=30)
        async with engine.store.tx() as tx:
            assert await tx.earliest_next_run() == sooner.next_run
        await engine.pause_cue(user, sooner.id)
        async with engine.store.tx() as tx:
            assert await tx.earliest_next_run() == later.next_run

    async def test_cues_declared_in_code_are_found_by_name_and_listed_apart(
        self, engine: Engine
    ) -> None:
        user = await new_user(engine)
        by_hand = await one_time_cue(engine, user, name="by-hand")

        @engine.every("1h", owner=user, name="hourly")
        def hourly(payload: dict[str, Any]) -> None: ...

        [declared] = await engine.sync_schedules()
        assert declared.declaration is not None and by_hand.declaration is None
        async with engine.store.tx() as tx:
            assert await tx.cue_named(user.user_id, "hourly") == declared
            assert await tx.cue_named(user.user_id, "by-hand") == by_hand
            assert await tx.cue_named(user.user_id, "nothing") is None
            assert [cue.id for cue in await tx.declared_cues()] == [declared.id]
        assert await engine.sync_schedules() == [declared]  # unchanged: no write

    async def test_two_nodes_on_one_store_see_each_others_writes(
        self, engine: Engine, another_engine: OpenEngine
    ) -> None:
        user = await new_user(engine)
        async with another_engine() as other:
            cue = await one_time_cue(other, user, name="from-the-other-node")
            assert (await engine.get_cue(user, cue.id)).name == "from-the-other-node"
