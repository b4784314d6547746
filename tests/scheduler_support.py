"""Shared set-up of the engine-level scheduler tests: users, cues, their runs and engines on the
fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.records import Cue, Execution
from tests.conftest import make_settings

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")
EVERY_5_MIN = "*/5 * * * *"


def at(hour: int, minute: int, second: int = 0) -> datetime:
    """A time on the fake clock's first day (UTC)."""
    return START.replace(hour=hour, minute=minute, second=second)


async def new_user(engine: Engine, email: str = "a@example.com") -> Principal:
    return await engine.principal((await engine.register(email))["api_key"])


async def recurring_cue(
    engine: Engine,
    user: Principal,
    cron: str = EVERY_5_MIN,
    name: str = "every-5",
    **extra: Any,
) -> str:
    row, _ = await engine.create_cue(
        user,
        {
            "name": name,
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": cron, **extra.pop("schedule", {})},
            **extra,
        },
    )
    return row.id


async def one_time_cue(
    engine: Engine, user: Principal, when: datetime, name: str = "once", **extra: Any
) -> str:
    row, _ = await engine.create_cue(
        user,
        {
            "name": name,
            "transport": "worker",
            "schedule": {"type": "once", "at": when.isoformat()},
            **extra,
        },
    )
    return row.id


async def runs(engine: Engine, user: Principal, cue_id: str) -> list[Execution]:
    """The cue's executions, oldest ``scheduled_for`` first."""
    rows, total = await engine.cue_executions(user, cue_id, limit=500)
    assert len(rows) == total
    return sorted(rows, key=lambda r: r.scheduled_for)


async def cue(engine: Engine, user: Principal, cue_id: str) -> Cue:
    return await engine.get_cue(user, cue_id)


@asynccontextmanager
async def opened(url: str, clock: FakeClock, **overrides: Any) -> AsyncIterator[Engine]:
    eng = Engine(make_settings(url, **overrides), clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()
