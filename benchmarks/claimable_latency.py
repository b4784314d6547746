"""Schedule → claimable: M one-time worker cues due over a few seconds and one worker that
long-polls ``GET /v1/executions/claimable?wait=`` (or polls every 10 ms with ``--tight-poll``
against a server without the extension), claiming and finishing what it sees. The figure is
the lag from each execution's ``scheduled_for`` to the moment the worker first saw it."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

from benchmarks.lite import LiteClient
from benchmarks.seed import create_checked, first_due_after_creating, once_cues
from benchmarks.stats import percentiles
from benchmarks.target import Target


async def run(
    target: Target, cues: int = 200, spread: float = 3.0, long_poll: bool = True
) -> dict[str, Any]:
    """One run; its figures."""
    token = target.new_account()
    first = await first_due_after_creating(target.base_url, token, cues, transport="worker")
    bodies = once_cues(
        cues, lambda n: first + timedelta(seconds=spread * n / cues), "job", transport="worker"
    )
    await create_checked(target.base_url, token, bodies)
    scheduled: dict[str, float] = {}
    seen: dict[str, float] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    path = "/v1/executions/claimable?limit=100" + ("&wait=2" if long_poll else "")
    await asyncio.sleep(max(0.0, first.timestamp() - time.time() - 0.5))
    meter = target.meter()
    deadline = time.time() + spread + 60

    async def observe() -> None:
        client = LiteClient(target.base_url, token)
        while len(seen) < cues and time.time() < deadline:
            _, page = await client.json("GET", path)
            now = time.time()
            for item in page["executions"]:
                eid = item["execution_id"]
                if eid not in seen:
                    seen[eid] = now
                    at = item["scheduled_for"].replace("Z", "+00:00")
                    scheduled[eid] = datetime.fromisoformat(at).timestamp()
                    queue.put_nowait(eid)
            if not page["executions"] and not long_poll:
                await asyncio.sleep(0.01)
        await client.close()

    async def finish() -> None:
        # Workers that take what was seen, so the claimable list stays short.
        client = LiteClient(target.base_url, token)
        while True:
            eid = await queue.get()
            status, _ = await client.json(
                "POST", f"/v1/executions/{eid}/claim", {"worker_id": "lag-probe"}
            )
            if status == 200:
                await client.json("POST", f"/v1/executions/{eid}/outcome", {"success": True})
            queue.task_done()

    workers = [asyncio.create_task(finish()) for _ in range(4)]
    await observe()
    await asyncio.wait_for(queue.join(), 60)
    for task in workers:
        task.cancel()
    figures = meter.stop()
    return {
        "scenario": "claimable",
        "cues": cues,
        "spread_seconds": spread,
        "long_poll": long_poll,
        "seen": len(seen),
        "lag_ms": percentiles([seen[e] - scheduled[e] for e in seen], scale=1000),
        **figures,
    }
