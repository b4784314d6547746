"""Shared by the run-limit proofs (``tests/test_reliability_concurrency_limit.py``,
``tests/test_reliability_rate_limit.py``): real ``cueflow serve`` nodes on one database, racing
claimers over HTTP that keep a ledger of what they held and when, a sampler that reads the
database while they run, and the checks on what was recorded.

Nodes, account registration and bounded waits are those of :mod:`tests.cluster_support` and
:mod:`tests.cluster_clients`.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cueflow.sql.tables import executions
from cueflow.states import Status
from tests import delivering_sampler
from tests.cluster_database import database
from tests.cluster_support import Node, cluster, node_env
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available

PROTOCOLS = ("next", "batch", "by_id")
"""How a claimer takes work: claim-next, a batch claim, or a claim by id from the claimable
list."""


@asynccontextmanager
async def nodes_on(store: str, workdir: Path, **env: str) -> AsyncIterator[tuple[str, list[Node]]]:
    """Two nodes on a fresh PostgreSQL database, or one node on a fresh SQLite file (one SQLite
    file has one process); yields the database URL and the nodes."""
    settings = node_env(lease_seconds=60, webhook_timeout=10, **env)
    if store == "sqlite":
        url = f"sqlite:///{workdir / 'cueflow.db'}"
        async with cluster(url, workdir, 1, **settings) as nodes:
            yield url, nodes
        return
    if not pg_available():
        import pytest

        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    try:
        async with cluster(url, workdir, 2, **settings) as nodes:
            yield url, nodes
    finally:
        await drop_pg_database(url)


async def create_and_fire(
    base: str, key: str, body: dict[str, Any], runs: int
) -> tuple[str, list[str]]:
    """Create a worker cue (due tomorrow, so only the fires below make its executions) and fire
    it ``runs`` times; its id and the executions' ids."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        response = await client.post(
            "/v1/cues",
            json={
                "schedule": {"type": "recurring", "cron": "0 3 * * *"},
                "transport": "worker",
                "payload": {"task": "limited"},
                **body,
            },
        )
        assert response.status_code == 201, response.text
        cue_id = str(response.json()["id"])
        fired = []
        for _ in range(runs):
            run = await client.post(f"/v1/cues/{cue_id}/fire", json={})
            assert run.status_code == 200, run.text
            fired.append(str(run.json()["id"]))
    return cue_id, fired


@dataclass
class Ledger:
    """What the claimers saw."""

    held: list[tuple[str, float, float]] = field(default_factory=list)
    """(execution id, monotonic time the claim was answered, time the outcome was sent) of
    each claim granted: each interval lies inside the one the server held the claim for."""
    holding: set[str] = field(default_factory=set)
    most_holding: dict[str, int] = field(default_factory=dict)
    """Per limit key, the most claims held at once as the claimers saw it."""
    started: list[float] = field(default_factory=list)
    """Monotonic time each claim was answered."""
    refused: Counter[str] = field(default_factory=Counter)
    """``status code`` of each answer that was not 200, with its error code."""
    outcomes: int = 0


@dataclass
class Claimer:
    """A worker over HTTP on ``base``: takes work by ``protocol``, holds each claim a random
    ``hold`` (seconds, min/max), reports success; until ``stop`` is set."""

    name: str
    base: str
    key: str
    protocol: str
    ledger: Ledger
    key_of: dict[str, str]
    """Execution id → the limit key the claimers count it under (``""``: none)."""
    hold: tuple[float, float] = (0.01, 0.05)
    batch: int = 3

    async def run(self, stop: asyncio.Event) -> None:
        """Claim, hold, report, until ``stop``."""
        rng = random.Random(self.name)
        headers = {"Authorization": f"Bearer {self.key}", "X-Worker-Id": self.name}
        async with httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30) as client:
            while not stop.is_set():
                won = await self._claim(client, rng)
                if not won:
                    await asyncio.sleep(0.01 + rng.random() * 0.02)
                    continue
                await asyncio.gather(*(self._work(client, rng, eid) for eid in won))

    async def _claim(self, client: httpx.AsyncClient, rng: random.Random) -> list[str]:
        worker = {"worker_id": self.name}
        if self.protocol == "next":
            response = await client.post("/v1/executions/claim", json=worker)
            return [response.json()["execution_id"]] if self._granted(response) else []
        if self.protocol == "batch":
            response = await client.post(
                "/v1/executions/claims", json={**worker, "limit": self.batch}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            for refusal in body["failed"]:
                self.ledger.refused[f"batch {refusal['error']['code']}"] += 1
            won = [str(item["execution_id"]) for item in body["claimed"]]
            self._note(won)
            return won
        listed = await client.get("/v1/executions/claimable", params={"limit": 10})
        assert listed.status_code == 200, listed.text
        items = listed.json()["executions"]
        if not items:
            return []
        target = rng.choice(items)["execution_id"]
        response = await client.post(f"/v1/executions/{target}/claim", json=worker)
        return [str(target)] if self._granted(response) else []

    def _granted(self, response: httpx.Response) -> bool:
        if response.status_code == 200:
            self._note([str(response.json()["execution_id"])])
            return True
        try:
            code = response.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            code = "?"
        self.ledger.refused[f"{response.status_code} {code}"] += 1
        return False

    def _note(self, won: Sequence[str]) -> None:
        now = time.monotonic()
        ledger = self.ledger
        for eid in won:
            ledger.started.append(now)
            ledger.holding.add(eid)
        for limit_key in {self.key_of.get(eid, "") for eid in won}:
            count = sum(1 for e in ledger.holding if self.key_of.get(e, "") == limit_key)
            ledger.most_holding[limit_key] = max(ledger.most_holding.get(limit_key, 0), count)

    async def _work(self, client: httpx.AsyncClient, rng: random.Random, eid: str) -> None:
        claimed = time.monotonic()
        await asyncio.sleep(rng.uniform(*self.hold))
        sent = time.monotonic()
        self.ledger.holding.discard(eid)
        body = {"success": True, "result": self.name, "worker_id": self.name}
        response = await client.post(f"/v1/executions/{eid}/outcome", json=body)
        assert response.status_code == 200, response.text
        self.ledger.held.append((eid, claimed, sent))
        self.ledger.outcomes += 1


def most_overlapping(intervals: Sequence[tuple[float, float]]) -> int:
    """The most intervals ``(start, end)`` open at one instant (an end before a start at the
    same instant)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = open_now = 0
    for _, step in events:
        open_now += step
        most = max(most, open_now)
    return most


def most_in_window(times: Sequence[datetime], seconds: float) -> tuple[int, datetime | None]:
    """The most ``times`` inside one half-open window ``[t, t + seconds)``, and where it
    starts."""
    ordered = sorted(times)
    width = timedelta(seconds=seconds)
    most, where, last = 0, None, 0
    for first, start in enumerate(ordered):
        last = max(last, first)
        while last < len(ordered) and ordered[last] < start + width:
            last += 1
        if last - first > most:
            most, where = last - first, start
    return most, where


@dataclass
class Sampler:
    """Counts, every ``pause`` seconds, the executions in ``delivering`` under a concurrency
    key, straight from the database the nodes write; in a process of its own, so the claimers
    do not slow it down."""

    url: str
    concurrency_key: str
    limit: int
    pause: float = 0.004
    samples: int = 0
    most: int = 0
    over: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time, count) of each sample above ``limit``."""
    seconds: float = 0.0
    _process: Any = None
    _stop: Any = None
    _results: Any = None
    _began: float = 0.0

    def start(self) -> None:
        """Begin sampling (returns once the first sample is taken)."""
        context = mp.get_context("spawn")
        self._stop = context.Event()
        ready = context.Event()
        self._results = context.Queue()
        delivering = Status.DELIVERING.value
        args = (self.url, self.concurrency_key, delivering, self.limit, self.pause, ready)
        self._process = context.Process(
            target=delivering_sampler.main, args=((*args, self._stop), self._results)
        )
        self._process.start()
        assert ready.wait(60), "the sampler did not start"
        self._began = time.monotonic()

    async def stop(self) -> None:
        """Stop sampling and collect what it saw (bounded)."""
        self._stop.set()
        self.samples, self.most, self.over = await asyncio.to_thread(self._results.get, True, 60)
        self.seconds = time.monotonic() - self._began
        await asyncio.to_thread(self._process.join, 30)


async def statuses(url: str, ids: Sequence[str]) -> Counter[str]:
    """How many of the executions ``ids`` are in each status."""
    wanted = set(ids)
    async with database(url) as store, store.tx() as tx:
        rows = (await tx.conn.execute(select(executions.c.id, executions.c.status))).all()
    return Counter(status for eid, status in rows if eid in wanted)


async def start_times(url: str, ids: Sequence[str]) -> list[datetime]:
    """When each of the executions ``ids`` was first claimed (``started_at``), for those that
    were."""
    wanted = set(ids)
    stmt = select(executions.c.id, executions.c.started_at, executions.c.attempts)
    async with database(url) as store, store.tx() as tx:
        rows = (await tx.conn.execute(stmt)).all()
    return [started for eid, started, _ in rows if eid in wanted and started is not None]
