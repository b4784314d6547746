"""The sampler process of the concurrency proof (:class:`tests.limits_support.Sampler`): counts,
every few milliseconds, the executions in ``delivering`` under one concurrency key, with plain
read-only queries through the database's own driver (a store transaction would take SQLite's
write lock and slow the node down). Imports nothing heavy, so the process starts quickly."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

COUNT = "SELECT count(*) FROM executions WHERE concurrency_key = {0} AND status = {1}"


def count_delivering(
    url: str, concurrency_key: str, status: str, limit: int, pause: float, ready: Any, stop: Any
) -> tuple[int, int, list[tuple[float, int]]]:
    """Sample until ``stop`` is set (``ready`` is set once the first sample is taken); returns
    (samples, most counted at once, (monotonic time, count) of each sample above ``limit``)."""
    samples = most = 0
    over: list[tuple[float, int]] = []

    def note(count: int) -> None:
        nonlocal samples, most
        samples += 1
        most = max(most, count)
        if count > limit:
            over.append((time.monotonic(), count))
        ready.set()

    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        query = COUNT.format("?", "?")
        try:
            while not stop.is_set():
                note(int(conn.execute(query, (concurrency_key, status)).fetchone()[0]))
                time.sleep(pause)
        finally:
            conn.close()
        return samples, most, over

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(url)
        query = COUNT.format("$1", "$2")
        try:
            while not stop.is_set():
                note(int(await conn.fetchval(query, concurrency_key, status)))
                await asyncio.sleep(pause)
        finally:
            await conn.close()

    asyncio.run(run())
    return samples, most, over


def main(args: tuple[Any, ...], results: Any) -> None:
    """The process's entry point: :func:`count_delivering`, its result put on ``results``."""
    results.put(count_delivering(*args))
