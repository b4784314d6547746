"""The database the reliability nodes share, read directly: the stored executions and cues,
and checks on them (fire keys held twice, interval ticks missing)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from cueflow.sql.store import SqlStore
from cueflow.sql.tables import cues, executions

TERMINAL = frozenset({"success", "failed", "missed"})


@asynccontextmanager
async def database(url: str) -> AsyncIterator[SqlStore]:
    """A store on ``url`` for reading what the servers wrote (no migration: they did that)."""
    if url.startswith("sqlite"):
        from cueflow_sqlite import SqliteConnector

        store = SqlStore(SqliteConnector(url))
    else:
        from cueflow_postgres import PostgresConnector

        store = SqlStore(PostgresConnector(url, pool_size=2))
    try:
        yield store
    finally:
        await store.close()


async def stored_executions(url: str) -> list[dict[str, Any]]:
    """Every execution row, with its cue's name and schedule type."""
    stmt = select(
        executions, cues.c.name.label("cue_name"), cues.c.schedule_type, cues.c.misfire_policy
    ).join(cues, cues.c.id == executions.c.cue_id)
    async with database(url) as store, store.tx() as tx:
        return [dict(row) for row in (await tx.conn.execute(stmt)).mappings().all()]


async def stored_cues(url: str) -> list[dict[str, Any]]:
    """Every cue row."""
    async with database(url) as store, store.tx() as tx:
        return [dict(row) for row in (await tx.conn.execute(select(cues))).mappings().all()]


def duplicate_fire_keys(rows: Sequence[dict[str, Any]]) -> list[tuple[str, datetime]]:
    """Fire keys ``(cue_id, scheduled_for)`` held by more than one execution."""
    counts = Counter((row["cue_id"], row["scheduled_for"]) for row in rows)
    return [key for key, n in counts.items() if n > 1]


def grid_gaps(rows: Sequence[dict[str, Any]], cue_id: str, step: float = 1.0) -> list[datetime]:
    """Ticks of an interval cue missing between its first and last execution."""
    ticks = sorted(row["scheduled_for"] for row in rows if row["cue_id"] == cue_id)
    gaps = []
    for before, after in itertools.pairwise(ticks):
        t = before + timedelta(seconds=step)
        while t < after:
            gaps.append(t)
            t += timedelta(seconds=step)
    return gaps
