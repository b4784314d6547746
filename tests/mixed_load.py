"""Sustained mixed load on a reliability node (:func:`mixed_load`) and what it measured."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.cluster_clients import Ledger, Worker, at, create_cues, register
from tests.cluster_support import Node

EXPECTED_REFUSALS = frozenset({"claim_failed"})
"""4xx answers that are part of normal operation under load: racing workers losing a claim."""


@dataclass
class LoadFigures:
    """What a mixed-load run measured."""

    seconds: float
    requests: int
    statuses: dict[int, int]
    server_errors: int
    unexpected_refusals: dict[str, int]
    claim_races_lost: int
    cues_created: int
    outcomes_acknowledged: int
    webhook_requests: int
    rss_mib: list[float]
    """Resident memory of the server, sampled every ``sample_every`` seconds (the first after
    the warm-up)."""

    def summary(self) -> dict[str, Any]:
        """The figures as a flat dict, for printing."""
        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1),
            "statuses": dict(sorted(self.statuses.items())),
            "server_errors_5xx": self.server_errors,
            "unexpected_4xx": self.unexpected_refusals,
            "claim_races_lost_409": self.claim_races_lost,
            "cues_created": self.cues_created,
            "outcomes_acknowledged": self.outcomes_acknowledged,
            "webhook_requests": self.webhook_requests,
            "rss_start_mib": round(self.rss_mib[0], 1),
            "rss_end_mib": round(self.rss_mib[-1], 1),
            "rss_max_mib": round(max(self.rss_mib), 1),
        }


async def mixed_load(
    node: Node,
    hook_url: str,
    seconds: float,
    *,
    workers: int = 4,
    warmup: float = 3.0,
    sample_every: float = 1.0,
    received: Any = None,
) -> LoadFigures:
    """Drive ``node`` for ``seconds`` with what users do at once: a creator adding one-time
    worker and webhook cues due a second later (and a few interval cues), readers listing and
    fetching cues and executions, worker heartbeats, and ``workers`` workers claiming and
    reporting. ``received`` (a list) is measured as the webhook requests received."""
    key = await register(node.base)
    ledger = Ledger()
    stop = asyncio.Event()
    headers = {"Authorization": f"Bearer {key}"}
    hook = {"callback": {"url": hook_url}, "payload": {"kind": "load"}}
    work = {"transport": "worker", "payload": {"task": "load"}}
    interval = {"type": "interval", "interval_seconds": 2}
    await create_cues(
        [node.base],
        key,
        [{"name": f"steady-{n}", "schedule": interval, **work} for n in range(5)]
        + [{"name": f"steady-hook-{n}", "schedule": interval, **hook} for n in range(2)],
        ledger,
    )

    async def creator(client: httpx.AsyncClient) -> None:
        n = 0
        while not stop.is_set():
            # due in 3 s: a loaded machine may take over a second to answer a creation
            body = {"name": f"load-{n}", "schedule": {"type": "once", "at": at(3)}}
            body.update(hook if n % 5 == 0 else work)
            response = await client.post("/v1/cues", json=body)
            ledger.count(response)
            if response.status_code == 201:
                ledger.created.append(response.json()["id"])
            n += 1
            await asyncio.sleep(0.05)

    async def reader(client: httpx.AsyncClient) -> None:
        rng = random.Random(0)
        while not stop.is_set():
            for path in ("/v1/executions?limit=20", "/v1/cues?limit=20", "/health", "/v1/usage"):
                ledger.count(await client.get(path))
            if ledger.created:
                cue_id = rng.choice(ledger.created)
                ledger.count(await client.get(f"/v1/cues/{cue_id}"))
            if ledger.outcomes:
                execution_id = rng.choice(list(ledger.outcomes))
                ledger.count(await client.get(f"/v1/executions/{execution_id}"))
            for k in range(workers):
                beat = await client.post("/v1/worker/heartbeat", json={"worker_id": f"load-{k}"})
                ledger.count(beat)
            await asyncio.sleep(0.1)

    crew = [Worker(f"load-{k}", [node.base], key, ledger) for k in range(workers)]
    samples: list[float] = []
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=node.base, headers=headers, timeout=30) as client:
        tasks = [asyncio.create_task(creator(client)), asyncio.create_task(reader(client))]
        tasks += [asyncio.create_task(w.run(stop)) for w in crew]
        await asyncio.sleep(warmup)
        while time.monotonic() - began < seconds:
            samples.append(node.rss_mib())
            await asyncio.sleep(min(sample_every, max(0.0, seconds - (time.monotonic() - began))))
        samples.append(node.rss_mib())
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return LoadFigures(
        seconds=time.monotonic() - began,
        requests=sum(ledger.statuses.values()),
        statuses=dict(ledger.statuses),
        server_errors=ledger.server_errors,
        unexpected_refusals={
            code: n for code, n in ledger.refused.items() if code not in EXPECTED_REFUSALS
        },
        claim_races_lost=ledger.refused["claim_failed"],
        cues_created=len(ledger.created),
        outcomes_acknowledged=len(ledger.outcomes),
        webhook_requests=len(received) if received is not None else 0,
        rss_mib=samples,
    )
