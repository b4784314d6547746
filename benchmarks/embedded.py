"""Worker throughput against an engine embedded in the benchmark process: the same scenario
as :mod:`benchmarks.worker_throughput`, through the Python API instead of HTTP (what an app
that embeds cueflow and works its own queue pays)."""

from __future__ import annotations

import asyncio
import os
import resource
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.stats import percentiles
from benchmarks.target import PG_ADMIN_URL, _pg_admin, client_cpu_seconds
from cueflow.engine import Engine, open_engine
from cueflow.errors import Conflict


async def _loop(
    engine: Engine, user: Any, protocol: str, worker: str, due: float, batch: int
) -> dict[str, Any]:
    claimed: list[str] = []
    seen: dict[str, float] = {}
    last = 0.0
    idle_since: float | None = None
    while True:
        got: list[str] = []
        if protocol == "batch":
            result = await engine.claim_batch(user, worker, limit=batch)
            got = [run.id for run in result.claimed]
            if got:
                await engine.report_outcomes(
                    user, [(eid, {"success": True, "result": "ok"}) for eid in got], worker
                )
        else:
            try:
                answer = await engine.claim(user, worker)
            except Conflict:  # nothing to claim
                answer = None
            if answer is not None:
                got = [answer["execution_id"]]
                await engine.report_outcome(user, got[0], {"success": True, "result": "ok"})
        now = time.time()
        for eid in got:
            seen.setdefault(eid, now)
        claimed += got
        if got:
            last = now
            idle_since = None
        elif now > due:
            idle_since = idle_since or now
            if now - idle_since > 1.0:
                break
            await asyncio.sleep(0.002)
        else:
            await asyncio.sleep(0.002)
    return {"claimed": claimed, "seen": seen, "last": last}


async def run(
    store: str = "sqlite",
    executions: int = 3000,
    workers: int = 4,
    protocol: str = "next",
    batch: int = 10,
) -> dict[str, Any]:
    """One run; its figures."""
    tmp = tempfile.TemporaryDirectory(prefix="cueflow-bench-")
    pg_db = None
    if store == "sqlite":
        url = f"sqlite:///{tmp.name}/bench.db"
    else:
        pg_db = f"cueflow_bench_{uuid.uuid4().hex[:10]}"
        await _pg_admin(f'CREATE DATABASE "{pg_db}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + pg_db
    engine = open_engine(url)
    try:
        await engine.start()
        user = await engine.account("bench@example.com")

        def spec(n: int, at: datetime) -> dict[str, Any]:
            return {
                "name": f"job-{n}",
                "schedule": {"type": "once", "at": at.isoformat()},
                "transport": "worker",
                "payload": {"n": n},
            }

        # The creation rate of a probe decides how far ahead the common due moment must be.
        started = time.monotonic()
        tomorrow = datetime.now(UTC) + timedelta(days=1)
        for n in range(40):
            await engine.create_cue(user, {**spec(n, tomorrow), "name": f"probe-{n}"})
        rate = 40 / max(time.monotonic() - started, 1e-3)
        due_at = datetime.now(UTC) + timedelta(seconds=1 + 1.5 * executions / rate)
        for n in range(executions):
            await engine.create_cue(user, spec(n, due_at))
        due = due_at.timestamp()
        cpu0 = client_cpu_seconds()
        loops = [_loop(engine, user, protocol, f"w{k}", due, batch) for k in range(workers)]
        results = await asyncio.gather(*loops)
        cpu = client_cpu_seconds() - cpu0
    finally:
        await engine.close()
        if pg_db:
            await _pg_admin(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        tmp.cleanup()
    claimed = [eid for r in results for eid in r["claimed"]]
    elapsed = max(max(r["last"] for r in results) - due, 1e-6)
    first_seen = {}
    for r in results:
        for eid, t in r["seen"].items():
            first_seen[eid] = min(first_seen.get(eid, t), t)
    return {
        "scenario": "embedded-worker",
        "store": store,
        "protocol": protocol,
        "executions": executions,
        "workers": workers,
        "claimed": len(set(claimed)),
        "duplicate_claims": len(claimed) - len(set(claimed)),
        "seconds": round(elapsed, 3),
        "exec_per_s": round(len(set(claimed)) / elapsed, 1),
        "lag_ms": percentiles([t - due for t in first_seen.values()], scale=1000),
        "process_cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pid": os.getpid(),
    }
