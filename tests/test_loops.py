"""The background loops keep going: the scheduler looks at the database again within
``scheduler_recheck_seconds`` even when it knows of no due cue (a lost change notice delays a
fire, never stops it), and a loop that stalls is named by ``/health`` and ``/status`` and
restarted (:mod:`cueflow.loops`). On both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cueflow import leases
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import eventually, make_settings

ONE_SECOND = timedelta(seconds=1)


@asynccontextmanager
async def started(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    """``engine`` with its background loops running, and an HTTP client on its app."""
    await engine.start()
    app = create_app(engine, manage_engine=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
            yield c
    finally:
        await engine.close()


async def test_a_scheduler_that_knows_of_no_due_cue_looks_again_within_the_recheck_interval(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher = Engine(make_settings(database_url, scheduler_recheck_seconds=2), clock=clock)
    other = Engine(make_settings(database_url), clock=clock)
    await other.open()
    # the other node's change notice is lost (a dropped LISTEN connection, say)
    monkeypatch.setattr(other.store.connector, "notify", _no_notice)  # type: ignore[attr-defined]
    async with started(watcher) as client:
        await eventually(lambda: _looked(watcher))  # asleep, knowing of no due cue
        me = await other.account("ops@example.com")
        cue, _ = await other.create_cue(
            me,
            {
                "name": "behind-its-back",
                "transport": "worker",
                "schedule": {"type": "once", "at": (clock.now() + ONE_SECOND).isoformat()},
                "payload": {"task": "report"},
            },
        )
        clock.advance(2.5)
        moved = 2.5

        async def fired() -> bool:
            nonlocal moved
            rows, _ = await watcher.cue_executions(me, cue.id)
            if not rows and moved < 5:
                # the first cycle may have read the clock after the advance (a slow machine):
                # its recheck is then 2 s after that, still well before 5 s
                clock.advance(0.25)
                moved += 0.25
            return bool(rows)

        assert await eventually(fired)
        assert (await client.get("/health")).json()["services"]["scheduler"] == "ok"
    await other.close()


async def _no_notice(conn: Any) -> None:
    """Sends nothing."""


async def _looked(engine: Engine) -> bool:
    pulse = engine.loops.pulse("scheduler")
    return pulse.busy_since is None and engine.scheduler_running()


async def test_a_stalled_loop_is_named_by_health_and_status_and_restarted(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 s: long enough that a healthy cycle on a loaded machine is not taken for a stall
    engine = Engine(make_settings(database_url, loop_stall_seconds=3.0), clock=clock)
    stuck = asyncio.Event()
    real_sweep = leases.sweep

    async def hanging_sweep(engine: Engine) -> int:
        if not stuck.is_set():
            return await real_sweep(engine)
        await asyncio.Event().wait()  # a call that never ends
        return 0

    monkeypatch.setattr(leases, "sweep", hanging_sweep)
    stuck.set()
    async with started(engine) as client:

        async def named() -> Any:
            body = (await client.get("/health")).json()
            return body if body["services"].get("sweeper") == "stalled" else None

        body = await eventually(named, timeout=30)
        assert body["status"] == "degraded"
        status = await client.get("/status")
        assert status.status_code == 200
        assert status.json()["status"] == "degraded"
        assert status.json()["reason"].startswith("loop stalled: ")
        assert "sweeper" in status.json()["reason"]
        assert _sample(engine, "cueflow_loop_restarts_total", loop="sweeper") >= 1

        stuck.clear()  # the next restart of the loop works again

        async def recovered() -> bool:
            body = (await client.get("/health")).json()
            return body["status"] == "healthy" and body["services"]["sweeper"] == "ok"

        assert await eventually(recovered, timeout=30)
        assert (await client.get("/status")).json() == {"status": "healthy"}
        assert _sample(engine, "cueflow_loop_lag_seconds", loop="scheduler") is not None


def _sample(engine: Engine, name: str, **labels: str) -> Any:
    return engine.metrics.registry.get_sample_value(name, labels)
