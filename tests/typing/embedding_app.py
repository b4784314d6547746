"""A user's program against cueflow's public embedding API, as the README ("Embedding",
"In-process handlers") and docs/ show it: type-checked with ``mypy --strict`` by
tests/test_typing.py, and run there too (it must also work).

It opens an in-memory engine, registers a sync and an async handler (the async one takes a
:class:`cueflow.HandlerContext`), creates a cue, fires it, waits for the handler and reads the
executions back; it also builds the FastAPI app the README mounts cueflow into. It declares a
flow in code (docs/flows.md, "Flows in Python"), runs it and awaits its typed result.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, assert_type

from fastapi import FastAPI

import cueflow
from cueflow import (
    Cue,
    Engine,
    Execution,
    FiredExecution,
    Flow,
    FlowRun,
    HandlerContext,
    Principal,
    Retry,
    Settings,
    StepContext,
    StepFailure,
    StepRun,
    open_engine,
)
from cueflow.api import create_app, mount
from cueflow.api.render import cue_json, execution_json
from cueflow.errors import CueflowError, NotFound
from cueflow.schemas import CueCreate

engine = open_engine("sqlite://", handler_concurrency=2)
assert_type(engine, Engine)
reports: asyncio.Queue[HandlerContext] = asyncio.Queue()


@engine.handler("greet")
def greet(payload: dict[str, Any]) -> str:
    """A sync handler: the payload only."""
    return f"Hello, {payload['name']}!"


@engine.handler("report")
async def report(payload: dict[str, Any], context: HandlerContext) -> dict[str, Any]:
    """An async handler taking the context: idempotent on ``context.execution_id``."""
    await reports.put(context)
    return {"execution_id": context.execution_id, "attempt": context.attempt, **payload}


# The decorator hands back the function itself, its signature intact.
assert_type(greet({"name": "world"}), str)

orders = engine.flow(
    "orders", owner="me@example.com", input_schema={"type": "object", "required": ["order"]}
)
assert_type(orders, Flow)


@orders.step(output_schema={"type": "object", "required": ["receipt"]}, retry=Retry(2, []))
async def charge(ctx: StepContext) -> dict[str, Any]:
    """An in-process step: its return value is the step's output."""
    failure: StepFailure | None = ctx.previous_failure
    return {"receipt": f"r-{ctx.input['order']}", "retried": failure is not None}


@orders.step(needs=[charge])
def confirm(ctx: StepContext) -> str:
    """A sync in-process step reading its parent's output."""
    return str(ctx.parents["charge"]["receipt"])


# Steps for workers and waits, run only when a step failed (here: skipped).
refund: str = orders.worker_step(
    "refund", payload={"task": "refund"}, needs=[confirm], when="failure"
)
orders.wait_step("appeal", event="appealed", timeout_seconds=3600, needs=[refund], when="failure")
signature_kept: Callable[[StepContext], str] = confirm  # the decorator returns the function


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The host application owns the engine's life (README, "Serve the REST API")."""
    async with engine:
        yield


app = FastAPI(lifespan=lifespan)
mount(app, engine)
standalone: FastAPI = create_app(Engine(Settings(database_url="sqlite://")), manage_engine=False)


async def create_cues(me: Principal) -> str:
    """Create the README's interval cue and a one-off report cue; return the report cue's id."""
    greeting, warning = await engine.create_cue(
        me,
        {
            "name": "greeting",
            "transport": "inprocess",
            "payload": {"task": "greet", "name": "world"},
            "schedule": {"type": "interval", "interval_seconds": 3600},
        },
    )
    assert warning is None
    assert cue_json(greeting)["name"] == "greeting"
    spec = CueCreate.model_validate(
        {
            "name": "report",
            "transport": "inprocess",
            "payload": {"task": "report", "period": "daily"},
            "schedule": {"type": "recurring", "cron": "0 9 * * *", "timezone": "Europe/Paris"},
        }
    )
    cue, _ = await engine.create_cue(me, spec)
    assert_type(cue, Cue)
    cue_id: str = cue.id
    await engine.pause_cue(me, cue_id)
    await engine.resume_cue(me, cue_id)
    await engine.update_cue(me, cue_id, {"payload": {"task": "report", "period": "weekly"}})
    cues, total = await engine.list_cues(me, status="active")
    assert total == len(cues) == 2
    return cue_id


async def run_once() -> dict[str, Any]:
    """Fire the report cue by hand and wait for its outcome; return the execution's wire shape."""
    async with engine:
        me = await engine.account("me@example.com")
        assert_type(me, Principal)
        cue_id = await create_cues(me)
        fired = await engine.fire_cue(me, cue_id)
        assert_type(fired, FiredExecution)
        assert isinstance(fired, Execution) and not fired.repeated
        context = await asyncio.wait_for(reports.get(), timeout=30)
        assert context.execution_id == fired.id and context.task == "report"
        for _ in range(300):  # the outcome is recorded just after the handler returns
            execution = execution_json(await engine.get_execution(me, fired.id))
            if execution["status"] == "success":
                break
            await asyncio.sleep(0.1)
        page = await engine.list_executions(me)
        assert page.total == len(page.rows) >= 1
        await engine.delete_cue(me, cue_id)
        try:
            await engine.get_cue(me, cue_id)
        except NotFound as exc:
            assert exc.status == 404
        except CueflowError as exc:  # any other refusal carries its status and code too
            raise AssertionError(f"{exc.status} {exc.code}") from exc
        await run_orders(me)
        return execution


async def run_orders(me: Principal) -> None:
    """Run the flow declared in code and await its result."""
    run = await engine.run_flow("orders", {"order": 7}, idempotency_key="order-7")
    assert_type(run, FlowRun)
    done = await run.result(timeout=30)
    assert done.done and done.status == "succeeded", done
    step: StepRun = done.steps["confirm"]
    assert step.output == "r-7" and done.outputs["charge"]["receipt"] == "r-7"
    assert [s.status for s in done.steps.values()][-2:] == ["skipped", "skipped"]
    again = await engine.wait_for_flow_run(me, run.id, timeout=5)
    assert again.finished_at == done.finished_at


if __name__ == "__main__":
    print(f"cueflow {cueflow.__version__}", asyncio.run(run_once())["status"])
