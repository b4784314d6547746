"""Scale: what many cues cost a ``cueflow serve`` started by the benchmark.

* idle: with 10,000 and then 100,000 active recurring cues (none due for hours), the server's
  resident memory after a restart and its CPU use over a quiet window;
* burst: 10,000 one-time cues due in the same second (beside the 100,000 idle ones), the time
  from that second until every one of them has its execution.

Cues are created through the API once, then cloned in SQL (a copy of the API-made row with a
fresh id and name per clone): creating 100,000 cues through HTTP would measure creation, not
scale.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks.seed import create_checked, once_cues
from benchmarks.target import ServerTarget, tree_cpu_seconds, tree_rss_mb
from cueflow.sql.tables import cues

_ALPHABET = string.ascii_lowercase + string.digits


def _sync_url(url: str) -> str:
    if url.startswith("postgresql"):
        return "postgresql+asyncpg" + url[url.index("://") :]
    return url


async def clone_cue(database_url: str, template_id: str, count: int, first: int = 0) -> None:
    """Insert ``count`` copies of cue ``template_id``, each with a new id and a name ending
    in its number (from ``first``)."""
    columns = [c.name for c in cues.columns]
    chunk = 5000
    for start in range(0, count, chunk):
        rows = []
        for n in range(start, min(count, start + chunk)):
            rows.append(
                {
                    "new_id": "cue_" + "".join(secrets.choice(_ALPHABET) for _ in range(12)),
                    "suffix": f"-c{first + n}",
                }
            )
        select_list = ", ".join(
            ":new_id" if c == "id" else "name || :suffix" if c == "name" else c for c in columns
        )
        sql = text(
            f"INSERT INTO cues ({', '.join(columns)}) "
            f"SELECT {select_list} FROM cues WHERE id = :template"
        )
        params = [{**r, "template": template_id} for r in rows]
        if database_url.startswith("sqlite"):
            engine = create_engine(database_url)
            with engine.begin() as conn:
                conn.execute(sql, params)
            engine.dispose()
        else:
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(_sync_url(database_url))
            async with engine.begin() as conn:
                await conn.execute(sql, params)
            await engine.dispose()


async def _idle(target: ServerTarget, window: float) -> dict[str, Any]:
    target.restart()
    await asyncio.sleep(3.0)  # startup settles
    assert target.pid is not None
    cpu0 = tree_cpu_seconds(target.pid)
    await asyncio.sleep(window)
    used = tree_cpu_seconds(target.pid) - cpu0
    rss, peak = tree_rss_mb(target.pid)
    return {
        "idle_cpu_percent": round(100 * used / window, 2),
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
    }


async def _api_cue(target: ServerTarget, token: str, body: dict[str, Any]) -> str:
    [cue_id] = await create_checked(target.base_url, token, [body])
    return cue_id


async def run(
    target: ServerTarget,
    idle_counts: tuple[int, ...] = (10_000, 100_000),
    burst: int = 10_000,
    window: float = 10.0,
) -> dict[str, Any]:
    """One run; its figures."""
    token = target.new_account()
    template = await _api_cue(
        target,
        token,
        {
            "name": "daily",
            "schedule": {"type": "recurring", "cron": "0 3 * * *", "timezone": "UTC"},
            "transport": "worker",
            "payload": {"task": "report"},
        },
    )
    # Keep the recurring cues idle through the run: due at 03:00 UTC, not in the next hour.
    if datetime.now(UTC).hour in (2, 3):
        raise RuntimeError("run the scale scenario outside 02:00-04:00 UTC (cues due at 03:00)")
    idle: dict[str, Any] = {}
    have = 1
    for count in idle_counts:
        await clone_cue(target.database_url, template, count - have, first=have)
        have = count
        idle[str(count)] = await _idle(target, window)
    # The burst: one API-made one-time cue due in a few seconds, cloned to ``burst`` cues.
    due = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
    body = once_cues(1, lambda n: due, "burst", transport="worker")[0]
    burst_template = await _api_cue(target, token, body)
    started = time.monotonic()
    await clone_cue(target.database_url, burst_template, burst - 1)
    seeded_in = time.monotonic() - started
    if time.time() > due.timestamp() - 1:
        raise RuntimeError(f"seeding the burst took {seeded_in:.1f}s: too slow for this run")
    meter = target.meter()
    from benchmarks.lite import LiteClient

    client = LiteClient(target.base_url, token)
    fired_at = None
    deadline = due.timestamp() + 120
    while time.time() < deadline:
        _, page = await client.json("GET", "/v1/executions?limit=1")
        if page["total"] >= burst:
            fired_at = time.time()
            break
        await asyncio.sleep(0.02)
    await client.close()
    figures = meter.stop()
    return {
        "scenario": "scale",
        "idle": idle,
        "burst_cues": burst,
        "burst_all_fired_seconds": None
        if fired_at is None
        else round(fired_at - due.timestamp(), 3),
        **{f"burst_{k}": v for k, v in figures.items()},
    }
