"""Store conformance, flows: every method of :class:`cueflow.store.flows.FlowStore` called
directly on a unit of work, then a run driven end to end through the engine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import cueflow.ids as ids
from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.states import CueStatus, Event, RunStatus, Status, StepStatus, move
from cueflow.store import Duplicate
from cueflow.testing.harness import new_user
from cueflow.testing.store_fixtures import StoreFixtures

OPEN_RUNS = sorted(s.value for s in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING))
OPEN_STEPS = sorted(s.value for s in (StepStatus.RUNNING, StepStatus.WAITING))
MANY = 450
"""Rows for the multi-row inserts: more than one statement's worth."""


def _task(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "needs": list(needs), "transport": "worker", "payload": {}, **extra}


class StoreFlowTests(StoreFixtures):
    """Flows, runs, steps and step executions."""

    async def _flow(self, engine: Engine, user: Principal, name: str = "f") -> Any:
        spec = {"name": name, "steps": [_task("a"), _task("b", "a")]}
        return await engine.create_flow(user, spec)

    def _run(self, flow: Any, user: Principal, now: Any, key: str | None = None) -> dict[str, Any]:
        return {
            "id": ids.new_flow_run_id(),
            "flow_id": flow.id,
            "user_id": user.user_id,
            "status": RunStatus.RUNNING.value,
            "input": {"n": 1},
            "idempotency_key": key,
            "steps": flow.steps,
            "step_cues": flow.step_cues,
            "created_at": now,
            "updated_at": now,
        }

    def _step(self, run_id: str, step_id: str, item: int, now: Any) -> dict[str, Any]:
        return {
            "id": ids.new_execution_id(),
            "run_id": run_id,
            "step_id": step_id,
            "item": item,
            "status": StepStatus.RUNNING.value,
            "attempts": 1,
            "execution_ids": [],
            "item_input": {"i": item},
            "started_at": now,
        }

    def _execution(
        self, run: dict[str, Any], step_id: str, item: int, attempt: int = 1
    ) -> dict[str, Any]:
        now = run["created_at"]
        return {
            "id": ids.new_execution_id(),
            "cue_id": run["step_cues"][step_id],
            "user_id": run["user_id"],
            "transport": "worker",
            "scheduled_for": now,
            "status": Status.PENDING.value,
            "triggered_by": "flow",
            "attempts": 0,
            "payload_override": {"flow": {"item_index": item}},
            "created_at": now,
            "updated_at": now,
            "flow_run_id": run["id"],
            "step_id": step_id,
            "item": item,
            "step_attempt": attempt,
        }

    async def test_flows_are_stored_read_paged_changed_and_keep_their_names_unique(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        other = await new_user(engine)
        now = clock.now()
        values: dict[str, Any] = {
            "id": ids.new_flow_id(),
            "user_id": user.user_id,
            "name": "first",
            "description": "d",
            "input_schema": {"type": "object"},
            "steps": [_task("a")],
            "step_cues": {},
            "created_at": now,
            "updated_at": now,
        }
        async with engine.store.tx() as tx:
            await tx.insert_flow(values)
            clock.advance(1)
            later = {**values, "id": ids.new_flow_id(), "name": "second"}
            await tx.insert_flow({**later, "created_at": clock.now()})
        with pytest.raises(Duplicate):  # a duplicate ends its unit of work
            async with engine.store.tx() as tx:
                await tx.insert_flow({**values, "id": ids.new_flow_id()})
        async with engine.store.tx() as tx:
            found = await tx.get_flow(user.user_id, values["id"])
            assert found is not None and found.name == "first"
            assert found.steps == [_task("a")] and found.input_schema == {"type": "object"}
            assert found.created_at == now
            locked = await tx.get_flow(user.user_id, values["id"], lock=True)
            assert locked is not None and locked.id == values["id"]
            assert await tx.get_flow(other.user_id, values["id"]) is None
            page, total = await tx.list_flows(user.user_id, 1, 0)
            assert total == 2 and [f.name for f in page] == ["second"]
            assert (await tx.list_flows(other.user_id, 10, 0))[1] == 0
            changed = await tx.update_flow(user.user_id, values["id"], {"name": "renamed"})
            assert changed is not None and changed.name == "renamed"
            assert await tx.update_flow(other.user_id, values["id"], {"name": "x"}) is None
        with pytest.raises(Duplicate):
            async with engine.store.tx() as tx:
                await tx.update_flow(user.user_id, values["id"], {"name": "second"})

    async def test_runs_are_stored_once_per_key_read_locked_paged_and_moved(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        other = await new_user(engine)
        flow = await self._flow(engine, user)
        now = clock.now()
        first = self._run(flow, user, now, key="k1")
        async with engine.store.tx() as tx:
            assert await tx.insert_run(first)
            assert not await tx.insert_run({**self._run(flow, user, now, key="k1")})
            clock.advance(1)
            second = self._run(flow, user, clock.now())
            assert await tx.insert_run({**second, "status": RunStatus.SUCCEEDED.value})
        async with engine.store.tx() as tx:
            keyed = await tx.run_by_idempotency_key(flow.id, "k1")
            assert keyed is not None and keyed.id == first["id"]
            assert await tx.run_by_idempotency_key(flow.id, "k2") is None
            run = await tx.get_run(user.user_id, first["id"])
            assert run is not None and run.input == {"n": 1} and run.step_cues == flow.step_cues
            assert await tx.get_run(other.user_id, first["id"]) is None
            assert await tx.run_status(first["id"]) == RunStatus.RUNNING
            assert await tx.run_status("run_missing") is None
            locked = await tx.lock_run(first["id"])
            assert locked is not None and locked.id == first["id"]
            page, total = await tx.list_runs(user.user_id, flow.id, None, 1, 0)
            assert total == 2 and [r.id for r in page] == [second["id"]]
            running = await tx.list_runs(user.user_id, None, RunStatus.RUNNING.value, 10, 0)
            assert [r.id for r in running[0]] == [first["id"]]
            assert await tx.count_open_runs(flow.id, OPEN_RUNS) == 1
            ended = {"status": RunStatus.FAILED.value, "finished_at": clock.now()}
            moved = await tx.update_run(first["id"], ended, OPEN_RUNS)
            assert moved is not None and moved.status == RunStatus.FAILED
            assert await tx.update_run(first["id"], ended, OPEN_RUNS) is None
            assert await tx.count_open_runs(flow.id, OPEN_RUNS) == 0
            assert await tx.runs_step_cues(flow.id) == set(flow.step_cues.values())

    async def test_steps_are_stored_once_per_key_in_batches_read_by_step_and_item(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        flow = await self._flow(engine, user)
        now = clock.now()
        run = self._run(flow, user, now)
        async with engine.store.tx() as tx:
            assert await tx.insert_run(run)
            head = self._step(run["id"], "b", -1, now)
            assert await tx.insert_step(head)
            assert not await tx.insert_step({**head, "id": ids.new_execution_id()})
            items = [self._step(run["id"], "b", i, now) for i in range(MANY)]
            inserted = await tx.insert_steps(items[:10])
            assert inserted == [row["id"] for row in items[:10]]
            rest = await tx.insert_steps(
                [{**row, "id": ids.new_execution_id()} for row in items[:10]] + items[10:]
            )
            assert rest == [row["id"] for row in items[10:]]
            assert await tx.insert_steps([]) == []
            wait = {**self._step(run["id"], "a", -1, now), "item_input": None}
            wait.update(status=StepStatus.WAITING.value, event="go", wait_until=now)
            assert await tx.insert_step(wait)
        async with engine.store.tx() as tx:
            every = await tx.run_steps(run["id"])
            assert [(s.step_id, s.item) for s in every] == [("a", -1)] + [
                ("b", i) for i in range(-1, MANY)
            ]
            of_b = await tx.run_steps(run["id"], "b")
            assert len(of_b) == MANY + 1 and of_b[5].item_input == {"i": 4}
            heads = await tx.run_steps(run["id"], item=-1)
            assert [s.step_id for s in heads] == ["a", "b"]
            one = await tx.run_steps(run["id"], "b", 7)
            assert [s.id for s in one] == [items[7]["id"]]
            assert await tx.step_has_items_in(run["id"], "b", OPEN_STEPS)
            assert not await tx.step_has_items_in(run["id"], "a", OPEN_STEPS)
            assert await tx.runs_with_due_waits(now, StepStatus.WAITING.value, 10) == [run["id"]]
            assert (
                await tx.runs_with_due_waits(now - timedelta(seconds=1), wait["status"], 10) == []
            )
            done = {"status": StepStatus.SUCCEEDED.value, "output": [1, {"x": None}]}
            for row in items:
                updated = await tx.update_step(row["id"], done, OPEN_STEPS)
                assert updated is not None and updated.output == [1, {"x": None}]
            assert await tx.update_step(items[0]["id"], done, OPEN_STEPS) is None
            assert not await tx.step_has_items_in(run["id"], "b", OPEN_STEPS)
            assert await tx.step_has_items_in(run["id"], "b", [StepStatus.SUCCEEDED.value])
            cancelled = {"status": StepStatus.CANCELLED.value, "finished_at": now}
            assert await tx.update_run_steps(run["id"], cancelled, OPEN_STEPS) == 2
            assert await tx.update_run_steps(run["id"], cancelled, OPEN_STEPS) == 0
            statuses = {s.status for s in await tx.run_steps(run["id"])}
            assert statuses == {StepStatus.SUCCEEDED, StepStatus.CANCELLED}

    async def test_step_executions_are_stored_once_per_key_in_batches_and_cancelled(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        flow = await self._flow(engine, user)
        run = self._run(flow, user, clock.now())
        async with engine.store.tx() as tx:
            assert await tx.insert_run(run)
            single = self._execution(run, "a", -1)
            assert await tx.insert_step_execution(single)
            assert not await tx.insert_step_execution(self._execution(run, "a", -1))
            many = [self._execution(run, "b", i) for i in range(MANY)]
            again = [self._execution(run, "b", i) for i in range(5)]
            created = await tx.insert_step_executions(again[:5] + many[5:])
            assert len(created) == MANY
            assert await tx.insert_step_executions(many[:5]) == []
        async with engine.store.tx() as tx:
            stored = await tx.get_execution(user.user_id, many[7]["id"])
            assert stored is not None
            assert (stored.flow_run_id, stored.step_id, stored.item) == (run["id"], "b", 7)
            assert stored.payload_override == {"flow": {"item_index": 7}}
            cancel = move(Event.CANCELLED)
            values = {"error_message": "Flow run cancelled", "updated_at": clock.now()}
            cancelled = await tx.cancel_step_executions(run["id"], cancel, values)
            assert len(cancelled) == MANY + 1
            assert await tx.cancel_step_executions(run["id"], cancel, values) == []

    async def test_deleting_a_flow_takes_its_runs_steps_hidden_cues_and_executions(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        flow = await self._flow(engine, user)
        keep = await self._flow(engine, user, "kept")
        run = self._run(flow, user, clock.now())
        async with engine.store.tx() as tx:
            assert await tx.insert_run(run)
            assert await tx.insert_step(self._step(run["id"], "a", -1, clock.now()))
            execution = self._execution(run, "a", -1)
            assert await tx.insert_step_execution(execution)
            gone = await tx.delete_step_cues(flow.id, [flow.step_cues["a"]])
            assert gone == [flow.step_cues["b"]]
        async with engine.store.tx() as tx:
            assert await tx.get_cue(user.user_id, flow.step_cues["b"]) is None
            assert await tx.get_cue(user.user_id, flow.step_cues["a"]) is not None
            assert await tx.delete_flow(user.user_id, flow.id)
            assert not await tx.delete_flow(user.user_id, flow.id)
        async with engine.store.tx() as tx:
            assert await tx.get_flow(user.user_id, flow.id) is None
            assert await tx.get_run(user.user_id, run["id"]) is None
            assert await tx.run_steps(run["id"]) == []
            assert await tx.get_cue(user.user_id, flow.step_cues["a"]) is None
            assert await tx.get_execution(user.user_id, execution["id"]) is None
            assert await tx.get_flow(user.user_id, keep.id) is not None
            for cue_id in keep.step_cues.values():
                assert await tx.get_cue(user.user_id, cue_id) is not None

    async def test_a_flows_trigger_cue_is_found_changed_and_deleted(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        spec = {
            "name": "timed",
            "steps": [_task("a")],
            "schedule": {"type": "interval", "interval_seconds": 3600},
        }
        flow = await engine.create_flow(user, spec)
        plain = await self._flow(engine, user, "plain")
        async with engine.store.tx() as tx:
            [trigger] = await tx.flow_triggers(user.user_id, [flow.id, plain.id], "flow")
            assert trigger.flow_id == flow.id
            assert trigger.id not in flow.step_cues.values()
            assert await tx.flow_triggers(user.user_id, [plain.id], "flow") == []
            assert await tx.flow_triggers("someone-else", [flow.id], "flow") == []
            changed = await tx.update_flow_trigger(trigger.id, {"status": CueStatus.PAUSED.value})
            assert changed is not None and changed.status == CueStatus.PAUSED
            # only a flow's hidden cue is changed that way
            assert await tx.update_flow_trigger(ids.new_cue_id(), {"run_count": 1}) is None
        async with engine.store.tx() as tx:
            await tx.delete_flow_trigger(trigger.id)
        async with engine.store.tx() as tx:
            assert await tx.flow_triggers(user.user_id, [flow.id], "flow") == []
            assert await tx.get_cue(user.user_id, trigger.id) is None
            for cue_id in flow.step_cues.values():
                assert await tx.get_cue(user.user_id, cue_id) is not None

    async def test_a_run_with_a_fan_out_goes_from_start_to_success_through_the_engine(
        self, engine: Engine
    ) -> None:
        user = await new_user(engine)
        steps = [_task("list"), _task("each", "list", for_each="list"), _task("sum", "each")]
        flow = await engine.create_flow(user, {"name": "fan", "steps": steps})
        run, _, created = await engine.start_flow_run(user, flow.id, {"input": 1})
        assert created
        outputs: dict[str, Any] = {"list": list(range(250)), "sum": "done"}
        for _ in range(10):
            batch = await engine.claim_batch(user, "w1", limit=100)
            if not batch.claimed:
                break
            for row in batch.claimed:
                flow_part = row.payload_override["flow"]
                output = outputs.get(flow_part["step"], flow_part.get("item"))
                await engine.report_outcome(user, row.id, {"success": True, "output": output})
        ended, rows = await engine.get_flow_run(user, run.id)
        assert ended.status == RunStatus.SUCCEEDED
        fanned = next(r for r in rows if r.step_id == "each" and r.item == -1)
        assert fanned.output == list(range(250))
        assert len([r for r in rows if r.step_id == "each"]) == 251
