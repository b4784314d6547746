"""Shared set-up of the engine-level claim and lease tests: users, one-time worker cues, due
executions and engines on the fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict
from cueflow.records import Cue, Execution
from tests.conftest import make_settings

LEASE = 900
HEARTBEAT_TIMEOUT = 180
UNCLAIMED_TIMEOUT = 900


async def new_user(engine: Engine, email: str = "a@example.com") -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def one_time_cue(
    engine: Engine, user: Principal, name: str, delay: float = 60, **extra: Any
) -> Cue:
    at = engine.clock.now() + timedelta(seconds=delay)
    spec = {
        "name": name,
        "transport": "worker",
        "schedule": {"type": "once", "at": at.isoformat()},
        "payload": {"task": "job"},
        **extra,
    }
    cue, _ = await engine.create_cue(user, spec)
    return cue


async def due_execution(
    engine: Engine, clock: FakeClock, user: Principal, name: str = "job", **extra: Any
) -> str:
    """Create a one-time worker cue due in 60 s, move there, fire it; the execution id."""
    cue = await one_time_cue(engine, user, name, **extra)
    clock.advance(60)
    assert await engine.fire_due() == 1
    rows, total = await engine.cue_executions(user, cue.id)
    assert total == 1
    return rows[0].id


async def many_due_executions(
    engine: Engine, clock: FakeClock, user: Principal, count: int
) -> set[str]:
    """``count`` one-time worker cues due at the same instant, fired; their execution ids."""
    for i in range(count):
        await one_time_cue(engine, user, f"job-{i:03d}")
    clock.advance(60)
    assert await engine.fire_due() == count
    page = await engine.list_executions(user, limit=count + 10)
    assert page.total == count
    return {row.id for row in page.rows}


async def status_of(engine: Engine, user: Principal, execution_id: str) -> Execution:
    return await engine.get_execution(user, execution_id)


def conflict_code(error: BaseException) -> str | None:
    return error.code if isinstance(error, Conflict) else None


@asynccontextmanager
async def opened(url: str, clock: FakeClock, **overrides: Any) -> AsyncIterator[Engine]:
    eng = Engine(make_settings(url, **overrides), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()


def is_postgres(url: str) -> bool:
    return url.startswith("postgres")


async def statements_run(
    engine: Engine, work: Callable[[], Awaitable[Any]]
) -> list[tuple[str, Any]]:
    """Every statement (and its parameters) ``work`` runs on ``engine``'s database."""
    connector_engine = engine.store.connector.engine  # type: ignore[attr-defined]
    sync = getattr(connector_engine, "sync_engine", connector_engine)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, params))

    event.listen(sync, "before_cursor_execute", record)
    try:
        await work()
    finally:
        event.remove(sync, "before_cursor_execute", record)
    return seen
