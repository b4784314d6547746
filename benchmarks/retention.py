"""History retention under load: how fast old executions are pruned, and what pruning costs
the workers.

A fresh server gets ``--seeded`` old executions (default 1,000,000; ended 48 to 60 days ago,
spread over 10 cues, 80 % ``success``, 10 % ``failed``, 10 % ``missed``) inserted in SQL in a
few statements. Then:

1. the ``worker`` scenario (``--executions`` worker cues, ``--workers`` loops, protocol
   ``--retention-protocol``) runs alone, beside the seeded rows;
2. it runs again while another process prunes everything older than 30 days, as the
   ``retention`` loop of a node does (batches of ``--prune-batch`` rows, a pause as long as each
   batch between batches); the prune starts when the worker loops start and runs to its end;
3. the rows are seeded again and pruned with nothing else running.

Figures: worker executions/s alone and while pruning; prune seconds and rows/s under load and
alone; how long the seeding took.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import create_engine, text

from benchmarks import worker_throughput
from benchmarks.seed import create_checked, once_cues
from benchmarks.target import ServerTarget
from cueflow.states import Status

CUES = 10
OLDEST = timedelta(days=60)
AGE = timedelta(days=30)
CHUNK = 100_000


def _async_url(url: str) -> str:
    return "postgresql+asyncpg" + url[url.index("://") :]


async def seed_old(
    database_url: str, cue_ids: list[str], count: int, tag: str, half: bool = False
) -> float:
    """Insert ``count`` ended executions of ``cue_ids`` (ids ``<tag>-<n>``), fired and last
    changed between 60 and 48 days ago, on whole seconds (``half``: half past, so a second
    seeding never meets the first one's fire keys); the seconds it took."""
    started = time.monotonic()
    base = (datetime.now(UTC) - OLDEST).replace(microsecond=500_000 if half else 0)
    # cue ids come from the server: [a-z0-9_]
    cue = "CASE n % {} {} END".format(
        len(cue_ids), " ".join(f"WHEN {k} THEN '{c}'" for k, c in enumerate(cue_ids))
    )
    columns = (
        "id, cue_id, user_id, transport, scheduled_for, status, attempts, created_at, updated_at,"
        " priority, outcome_success, outcome_recorded_at"
    )
    status = (
        f"CASE WHEN n % 10 = 0 THEN '{Status.FAILED.value}' "
        f"WHEN n % 10 = 1 THEN '{Status.MISSED.value}' ELSE '{Status.SUCCESS.value}' END"
    )
    if database_url.startswith("sqlite"):
        fraction = ".500000" if half else ".000000"
        at = f"strftime('%Y-%m-%d %H:%M:%S', :base, '+' || n || ' seconds') || '{fraction}'"
        series = (
            "WITH RECURSIVE s(n) AS (SELECT :first UNION ALL SELECT n + 1 FROM s WHERE n < :last)"
        )
        source = "s"
        base_param: Any = base.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
    else:
        at = "CAST(:base AS timestamptz) + n * interval '1 second'"
        series = ""
        source = "generate_series(CAST(:first AS int), CAST(:last AS int)) AS s(n)"
        base_param = base
    sql = text(
        f"{series} INSERT INTO executions ({columns}) "
        f"SELECT '{tag}-' || n, {cue}, (SELECT user_id FROM cues WHERE id = '{cue_ids[0]}'),"
        f" 'worker', {at}, {status}, 1, {at}, {at}, 0,"
        f" CASE WHEN n % 10 = 1 THEN NULL ELSE n % 10 <> 0 END,"
        f" CASE WHEN n % 10 = 1 THEN NULL ELSE {at} END FROM {source}"
    )
    chunks = [
        {"first": first, "last": min(count, first + CHUNK) - 1, "base": base_param}
        for first in range(0, count, CHUNK)
    ]
    if database_url.startswith("sqlite"):
        engine = create_engine(database_url, connect_args={"timeout": 60})
        for chunk in chunks:
            with engine.begin() as conn:
                conn.execute(sql, chunk)
        engine.dispose()
    else:
        from sqlalchemy.ext.asyncio import create_async_engine

        aengine = create_async_engine(_async_url(database_url))
        for chunk in chunks:
            async with aengine.begin() as aconn:
                await aconn.execute(sql, chunk)
        async with aengine.begin() as aconn:
            await aconn.execute(text("ANALYZE executions"))
        await aengine.dispose()
    return time.monotonic() - started


def _prune_main(database_url: str, batch: int, out: Any) -> None:
    """A pruning node: what the ``retention`` loop does, once, in a process of its own."""
    from cueflow.config import Settings
    from cueflow.engine import Engine
    from cueflow.retention import prune

    async def main() -> dict[str, Any]:
        engine = Engine(Settings(database_url=database_url, retention_batch=batch))
        await engine.open()
        try:
            report = await prune(engine.services, AGE, pause=True)
        finally:
            await engine.close()
        return {
            "deleted": report.counts["executions"],
            "seconds": round(report.seconds, 3),
            "batches": report.batches,
            "complete": report.complete,
        }

    out.put(asyncio.run(main()))


class _Pruner:
    """The pruning process, started on demand; :meth:`result` waits for its report."""

    def __init__(self, database_url: str, batch: int) -> None:
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue()
        self._process = ctx.Process(target=_prune_main, args=(database_url, batch, self._queue))
        self.started_at: float | None = None

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._process.start()

    async def result(self) -> dict[str, Any]:
        report: dict[str, Any] = await asyncio.to_thread(self._queue.get, True, 3600)
        self._process.join()
        report["rows_per_s"] = round(report["deleted"] / max(report["seconds"], 1e-6), 1)
        return report


async def run(
    target: ServerTarget,
    seeded: int = 1_000_000,
    executions: int = 3000,
    workers: int = 4,
    protocol: str = "batch",
    batch: int = 10,
    prune_batch: int = 1000,
) -> dict[str, Any]:
    """One run of the scenario; its figures."""
    token = target.new_account()
    next_year = datetime.now(UTC) + timedelta(days=365)
    cue_ids = await create_checked(
        target.base_url, token, once_cues(CUES, lambda n: next_year, "old", transport="worker")
    )
    seed_seconds = await seed_old(target.database_url, cue_ids, seeded, "old")
    alone = await worker_throughput.run(
        target, executions=executions, workers=workers, protocol=protocol, batch=batch
    )
    pruner = _Pruner(target.database_url, prune_batch)
    pruning = await worker_throughput.run(
        target,
        executions=executions,
        workers=workers,
        protocol=protocol,
        batch=batch,
        on_start=pruner.start,
    )
    worker_ended = time.monotonic()
    under_load = await pruner.result()
    assert pruner.started_at is not None
    under_load["overlapped_worker_s"] = round(worker_ended - pruner.started_at, 3)
    await seed_old(target.database_url, cue_ids, seeded, "again", half=True)
    idle = _Pruner(target.database_url, prune_batch)
    idle.start()
    quiet = await idle.result()
    return {
        "scenario": "retention",
        "store": target.store,
        "seeded": seeded,
        "seed_seconds": round(seed_seconds, 3),
        "prune_batch": prune_batch,
        "protocol": protocol,
        "worker_alone": {k: alone[k] for k in ("exec_per_s", "seconds", "lag_ms")},
        "worker_while_pruning": {k: pruning[k] for k in ("exec_per_s", "seconds", "lag_ms")},
        "prune_under_load": under_load,
        "prune_alone": quiet,
    }
