"""Real ``cueflow serve`` processes for the reliability scenarios: nodes that can be killed with
SIGKILL and restarted on the same port and database, workers that keep a ledger of every answer
they got, and direct reads of the database to check what was stored.

Used by ``tests/test_reliability_*.py`` and ``scripts/soak.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cueflow.sql.store import SqlStore
from cueflow.sql.tables import cues, executions
from tests.server import free_port

TERMINAL = frozenset({"success", "failed", "missed"})


@dataclass
class Node:
    """One ``cueflow serve`` process on a fixed port: it can be killed (SIGKILL) and restarted
    on the same port and database, so clients reconnect to the same address."""

    database_url: str
    workdir: Path
    env: dict[str, str]
    name: str = "node"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        """The node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the node's output goes (appended across restarts)."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        """The running process id."""
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def spawn(self) -> None:
        """Start the process (see :meth:`ready` to wait for it)."""
        command = [
            sys.executable, "-m", "cueflow", "serve", "--port", str(self.port),
            "--database-url", self.database_url, "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def ready(self, timeout: float = 60) -> None:
        """Wait until ``/health`` answers (the store is migrated and the loops run)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                try:
                    if (await client.get(f"{self.base}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready in {timeout} s: {self.log_tail()}")
                await asyncio.sleep(0.1)

    async def start(self) -> None:
        """Spawn and wait until ready."""
        self.spawn()
        await self.ready()

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, in-flight requests and deliveries are cut off."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), or kill after 10 s."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def rss_mib(self) -> float:
        """Resident memory of the process, from ``/proc/<pid>/status``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def errors_logged(self) -> list[str]:
        """Tracebacks and error lines in the node's log."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in text if "Traceback" in line or " 500 " in line]


def node_env(
    *,
    lease_seconds: int = 4,
    webhook_timeout: float = 3,
    misfire_grace_seconds: int | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment for test nodes: short leases, fast sweeps and delivery polls, and webhooks
    allowed to reach the local receiver."""
    env = {
        "WORKER_CLAIM_TIMEOUT_SECONDS": str(lease_seconds),
        "WEBHOOK_TIMEOUT_SECONDS": str(webhook_timeout),
        "CUEFLOW_DELIVERY_LEASE_MARGIN_SECONDS": "1",
        "CUEFLOW_DELIVERY_POLL_SECONDS": "0.5",
        "CUEFLOW_SWEEP_INTERVAL_SECONDS": "0.5",
        "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "1",
        **extra,
    }
    if misfire_grace_seconds is not None:
        env["CUEFLOW_MISFIRE_GRACE_SECONDS"] = str(misfire_grace_seconds)
    return env


@asynccontextmanager
async def cluster(
    database_url: str, workdir: Path, nodes: int = 1, **env: str
) -> AsyncIterator[list[Node]]:
    """``nodes`` cueflow processes on one database, started together; stopped on exit."""
    started = [Node(database_url, workdir, env, name=f"node{k}") for k in range(nodes)]
    try:
        for node in started:
            node.spawn()
        for node in started:
            await node.ready()
        yield started
    finally:
        for node in started:
            node.stop()


# the database, read directly ----------------------------------------------------------------


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


# clients ------------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What the clients were told: every claim granted, every outcome acknowledged, every
    status code, every connection error."""

    claims: list[tuple[str, str, float]] = field(default_factory=list)
    """(worker, execution id, monotonic time) of each claim answered 200."""
    outcomes: dict[str, list[str]] = field(default_factory=dict)
    """Execution id → workers whose outcome report was answered 2xx."""
    refused: Counter[str] = field(default_factory=Counter)
    """Error codes of 4xx answers."""
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    created: list[str] = field(default_factory=list)
    """Ids of cues whose creation was answered 201."""

    def count(self, response: httpx.Response) -> None:
        """Record a response's status (and error code when it is a 4xx)."""
        self.statuses[response.status_code] += 1
        if 400 <= response.status_code < 500:
            try:
                self.refused[response.json()["error"]["code"]] += 1
            except (ValueError, KeyError, TypeError):
                self.refused[f"http_{response.status_code}"] += 1

    @property
    def server_errors(self) -> int:
        """Responses with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def claims_of(self, execution_id: str) -> list[tuple[str, float]]:
        """(worker, time) of each claim of one execution, in order."""
        return [(w, t) for w, e, t in self.claims if e == execution_id]


async def register(base: str) -> str:
    """A new account's API key."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"rel-{random.getrandbits(48):x}@example.com"
        response = await client.post("/v1/auth/register", json={"email": email})
        assert response.status_code == 201, response.text
        return str(response.json()["api_key"])


def at(seconds_from_now: float) -> str:
    """An ISO timestamp ``seconds_from_now`` in the future."""
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat()


async def create_cues(
    bases: Sequence[str], key: str, bodies: Sequence[dict[str, Any]], ledger: Ledger
) -> list[dict[str, Any]]:
    """Create cues (spread over ``bases``, 8 at a time); returns the created cues."""
    created: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {key}"}
    queue = list(enumerate(bodies))

    async def creator(client: httpx.AsyncClient) -> None:
        while queue:
            n, body = queue.pop()
            response = await client.post(
                f"{bases[n % len(bases)]}/v1/cues", json=body, headers=headers
            )
            ledger.count(response)
            assert response.status_code == 201, response.text
            created.append(response.json())
            ledger.created.append(response.json()["id"])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(creator(client) for _ in range(8)))
    return created


@dataclass
class Worker:
    """CueAPI's worker loop over HTTP (poll claimable, claim one by id, work, report), keeping
    a ledger. On a connection error it retries (after ``retry_pause``) on the next of its
    ``bases``; an outcome is re-sent until the server answers."""

    name: str
    bases: list[str]
    key: str
    ledger: Ledger
    work_seconds: float = 0.02
    retry_pause: float = 0.2
    holding: set[str] = field(default_factory=set)
    """Claims granted and not yet reported."""
    reporting: set[str] = field(default_factory=set)
    """Claims whose outcome report has been sent and not yet answered."""
    _turn: int = 0

    @property
    def base(self) -> str:
        return self.bases[self._turn % len(self.bases)]

    @property
    def working(self) -> set[str]:
        """Claims granted whose outcome has not been sent yet."""
        return self.holding - self.reporting

    async def _send(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            response = await client.request(method, f"{self.base}{path}", **kwargs)
        except httpx.TransportError:
            self.ledger.connection_errors += 1
            self._turn += 1
            await asyncio.sleep(self.retry_pause)
            return None
        self.ledger.count(response)
        return response

    async def run(self, stop: asyncio.Event, rng: random.Random | None = None) -> None:
        """Work until ``stop`` is set and nothing is claimable."""
        rng = rng or random.Random(self.name)
        headers = {"Authorization": f"Bearer {self.key}", "X-Worker-Id": self.name}
        async with httpx.AsyncClient(headers=headers, timeout=15) as client:
            while True:
                listed = await self._send(client, "GET", "/v1/executions/claimable")
                if listed is None:
                    continue
                items = listed.json().get("executions", []) if listed.status_code == 200 else []
                if not items:
                    if stop.is_set():
                        return
                    await asyncio.sleep(0.05)
                    continue
                target = rng.choice(items)["execution_id"]
                await self.claim_and_work(client, target)

    async def claim_and_work(self, client: httpx.AsyncClient, execution_id: str) -> None:
        """Claim ``execution_id``; if granted, work and report success."""
        claim = await self._send(
            client,
            "POST",
            f"/v1/executions/{execution_id}/claim",
            json={"worker_id": self.name},
        )
        if claim is None or claim.status_code != 200:
            return
        self.ledger.claims.append((self.name, execution_id, time.monotonic()))
        self.holding.add(execution_id)
        await asyncio.sleep(self.work_seconds)
        body = {"success": True, "result": self.name, "worker_id": self.name}
        self.reporting.add(execution_id)
        while True:
            report = await self._send(
                client, "POST", f"/v1/executions/{execution_id}/outcome", json=body
            )
            if report is not None:
                break
        self.holding.discard(execution_id)
        self.reporting.discard(execution_id)
        if report.status_code < 300:
            self.ledger.outcomes.setdefault(execution_id, []).append(self.name)


async def wait_until(check: Any, timeout: float, what: str, pause: float = 0.25) -> Any:
    """Await ``check()`` until truthy; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(pause)


async def pause_cues(base: str, key: str, cue_ids: Sequence[str]) -> None:
    """Pause cues (``PATCH {"status": "paused"}``)."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        for cue_id in cue_ids:
            response = await client.patch(f"/v1/cues/{cue_id}", json={"status": "paused"})
            assert response.status_code == 200, response.text


# sustained mixed load -------------------------------------------------------------------------


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
            body = {"name": f"load-{n}", "schedule": {"type": "once", "at": at(1)}}
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
