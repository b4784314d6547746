"""Set-up of the history retention tests: a recurring worker cue, executions seeded in a given
status and age straight into the store, and which of them still exist."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from typing import Any

from cueflow.authentication import Principal
from cueflow.engine import Engine
from cueflow.errors import NotFound

_TICKS = itertools.count()


async def recurring(engine: Engine, user: Principal, name: str = "every-minute") -> str:
    cue, _ = await engine.create_cue(
        user,
        {
            "name": name,
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "* * * * *"},
            "payload": {"task": "job"},
        },
    )
    return cue.id


async def seed(
    engine: Engine, user: Principal, cue_id: str, status: str, age: timedelta, count: int = 1
) -> list[str]:
    """``count`` executions of the cue in ``status``, fired and last changed ``age`` ago (one
    minute apart, older first)."""
    now = engine.clock.now()
    made = []
    async with engine.store.tx() as tx:
        for n in range(count):
            at = now - age - timedelta(minutes=count - n, milliseconds=-next(_TICKS))
            execution_id = str(uuid.uuid4())
            values: dict[str, Any] = {
                "id": execution_id,
                "cue_id": cue_id,
                "user_id": user.user_id,
                "transport": "worker",
                "scheduled_for": at,
                "status": status,
                "created_at": at,
                "updated_at": at,
            }
            assert await tx.insert_execution(values)
            made.append(execution_id)
    return made


async def exists(engine: Engine, user: Principal, execution_id: str) -> bool:
    try:
        await engine.get_execution(user, execution_id)
    except NotFound:
        return False
    return True


async def kept(engine: Engine, user: Principal, ids: list[str]) -> list[str]:
    return [i for i in ids if await exists(engine, user, i)]
