"""Helpers for the agent tests (``tests/test_agents_*.py``): due worker executions on an engine
whose clock is the ``clock`` fixture, and quick reads of their state."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine


async def new_user(engine: Engine) -> Principal:
    """A fresh account."""
    return await engine.account(f"agent-{uuid.uuid4().hex[:8]}@example.com")


async def due_executions(
    engine: Engine, clock: FakeClock, user: Principal, payloads: list[dict[str, Any]], **extra: Any
) -> list[str]:
    """One one-time worker cue per payload, all due now and fired; their execution ids, in the
    order of ``payloads``."""
    at = clock.now() + timedelta(seconds=60)
    cue_ids = []
    for i, payload in enumerate(payloads):
        spec = {
            "name": f"job-{uuid.uuid4().hex[:6]}-{i}",
            "transport": "worker",
            "schedule": {"type": "once", "at": at.isoformat()},
            "payload": payload,
            **extra,
        }
        cue, _ = await engine.create_cue(user, spec)
        cue_ids.append(cue.id)
    clock.advance(60)
    assert await engine.fire_due() == len(payloads)
    ids = []
    for cue_id in cue_ids:
        executions, _ = await engine.cue_executions(user, cue_id)
        ids.append(executions[0].id)
    return ids


async def state(engine: Engine, user: Principal, execution_id: str) -> dict[str, Any]:
    """The stored execution, as a dict of its fields."""
    return dataclasses.asdict(await engine.get_execution(user, execution_id))
