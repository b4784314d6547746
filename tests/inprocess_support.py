"""Shared set-up of the ``inprocess`` transport tests: an engine the test drives, a due cue, a
fire on the fake clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.records import Cue, Execution
from tests.conftest import make_settings

WAITING = "Waiting for a process with in-process handler '{}'"


@asynccontextmanager
async def opened(database_url: str, clock: FakeClock, **settings: Any) -> AsyncIterator[Engine]:
    """An opened engine with no background tasks (tests drive it)."""
    engine = Engine(make_settings(database_url, **settings), clock=clock)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()


async def due_cue(
    engine: Engine, user: Principal, clock: FakeClock, task: str, **fields: Any
) -> Cue:
    """Create a one-time ``inprocess`` cue for ``task`` due in a minute."""
    payload = {"task": task, **fields.pop("payload", {})}
    body = {
        "name": f"cue-{uuid.uuid4().hex[:8]}",
        "transport": "inprocess",
        "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
        "payload": payload,
        **fields,
    }
    cue, _ = await engine.create_cue(user, body)
    return cue


async def fire(engine: Engine, clock: FakeClock, seconds: float = 60) -> int:
    """Move the clock, fire what is due and deliver it; returns the attempts made."""
    clock.advance(seconds)
    await engine.fire_due()
    return await engine.deliver_due()


async def only_execution(engine: Engine, user: Principal, cue_id: str) -> Execution:
    [execution], _ = await engine.cue_executions(user, cue_id)
    return execution
