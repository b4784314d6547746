"""CPU per worker request through the ASGI app in process, with and without the worker fast
path (``cueflow.api.fastpath``): process CPU time over many cycles, not wall time (the numbers
hold on a loaded machine). Optionally a cProfile dump.

Over a file SQLite database (or ``STORE=postgresql``) with ``3 * N`` due worker executions,
each route kind is timed alone over ``N`` requests (or ``N / 10`` batches of ten), so the clock
is read only around each phase: claimable (``limit=1``), claim-next, heartbeat, outcome (on the
executions claimed), claim by id, batch claim and batch outcomes. Prints the CPU per request
(per execution for the batches) of each, and of a claim-next + outcome cycle::

    N=400 FAST=1 python scripts/worker_cpu.py
    N=400 FAST=0 PROF=/tmp/slow.prof python scripts/worker_cpu.py
    N=100 FAST=1 CALLS=1 python scripts/worker_cpu.py  # Python function calls instead
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx

import cueflow
from cueflow.api.app import create_app
from cueflow.clock import FakeClock
from cueflow.store import ExecutionFilter

N = int(os.environ.get("N", "400"))
STORE = os.environ.get("STORE", "sqlite")
FAST = os.environ.get("FAST", "1") == "1"
PROF = os.environ.get("PROF")
CALLS = os.environ.get("CALLS") == "1"
"""Count the server's Python function calls per request instead of CPU time (deterministic)."""


async def pg_url() -> str:
    """A fresh PostgreSQL database."""
    import asyncpg

    name = f"prof_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


COUNTER: list[int] = []
"""With ``CALLS``: the Python function calls each request made inside the ASGI app."""


def counting(app: Any) -> Any:
    """``app``, its function calls counted into :data:`COUNTER` (the client's left out)."""

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        profile = cProfile.Profile()
        profile.enable()
        try:
            await app(scope, receive, send)
        finally:
            profile.disable()
            COUNTER.append(pstats.Stats(profile).total_calls)  # type: ignore[attr-defined]

    return counted


async def phase(
    client: httpx.AsyncClient, headers: dict[str, str], requests: list[tuple[str, str, Any]]
) -> tuple[float, list[httpx.Response]]:
    """Send ``(method, path, json)`` requests in turn; the process CPU they took."""
    answers = []
    COUNTER.clear()
    started = time.process_time()
    for method, path, body in requests:
        answers.append(await client.request(method, path, headers=headers, json=body))
    cpu = time.process_time() - started
    if CALLS:  # Python function calls in the server (a measure the machine's load leaves alone)
        cpu = float(sum(COUNTER))
    for response in answers:
        assert response.status_code == 200, response.text
    return cpu, answers


async def main() -> None:
    """Set up, run the cycles, print."""
    url = f"sqlite:///{tempfile.mkdtemp()}/p.db" if STORE == "sqlite" else await pg_url()
    clock = FakeClock()
    engine = cueflow.open_engine(url, clock=clock)
    app = create_app(engine, manage_engine=False, fast_path=FAST)
    await engine.open()
    transport = httpx.ASGITransport(app=counting(app) if CALLS else app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        key = (await engine.register("p@example.com"))["api_key"]
        headers = {"Authorization": f"Bearer {key}"}
        at = (clock.now() + timedelta(seconds=60)).isoformat()
        user = await engine.principal(key)
        for i in range(3 * N):
            spec = {
                "name": f"c{i}",
                "transport": "worker",
                "schedule": {"type": "once", "at": at},
                "payload": {"task": "t", "i": i},
            }
            await engine.create_cue(user, spec)
        clock.advance(60)
        await engine.fire_due()
        # warm up: first-request set-up (the keyless-route table, prepared statements)
        await phase(client, headers, [("GET", "/v1/executions/claimable?limit=1", None)])
        profile = cProfile.Profile() if PROF else None
        if profile:
            profile.enable()
        cpu: dict[str, float] = {}
        cpu["claimable"], _ = await phase(
            client, headers, [("GET", "/v1/executions/claimable?limit=1", None)] * N
        )
        claim_next = ("POST", "/v1/executions/claim", {"worker_id": "w"})
        cpu["claim-next"], answers = await phase(client, headers, [claim_next] * N)
        ids = [a.json()["execution_id"] for a in answers]
        cpu["heartbeat"], _ = await phase(
            client, headers, [("POST", f"/v1/executions/{i}/heartbeat", None) for i in ids]
        )
        cpu["outcome"], _ = await phase(
            client,
            headers,
            [("POST", f"/v1/executions/{i}/outcome", {"success": True}) for i in ids],
        )
        page = await engine.list_executions(user, ExecutionFilter(statuses=["pending"]), limit=N)
        cpu["claim"], _ = await phase(
            client,
            headers,
            [("POST", f"/v1/executions/{r.id}/claim", {"worker_id": "w"}) for r in page.rows],
        )
        batches = N // 10
        claims = ("POST", "/v1/executions/claims", {"worker_id": "w", "limit": 10})
        claims_cpu, answers = await phase(client, headers, [claims] * batches)
        cpu["claims (per execution)"] = claims_cpu / 10
        reports = [
            [{"execution_id": c["execution_id"], "success": True} for c in a.json()["claimed"]]
            for a in answers
        ]
        outcomes_cpu, _ = await phase(
            client,
            headers,
            [("POST", "/v1/executions/outcomes", {"outcomes": r}) for r in reports],
        )
        cpu["outcomes (per execution)"] = outcomes_cpu / 10
        if profile:
            profile.disable()
            profile.dump_stats(PROF)
        per = {
            kind: total / (N if "per" not in kind else batches) * 1000
            for kind, total in cpu.items()
        }
        per["claim-next + outcome"] = per["claim-next"] + per["outcome"]
        unit = "function calls" if CALLS else "ms CPU"
        print(f"{STORE} fast={FAST} N={N} ({unit} per request)")
        for kind, ms in per.items():
            print(f"  {kind:26} {ms / 1000 if CALLS else ms:9.3f}")
    await engine.close()


if __name__ == "__main__":
    asyncio.run(main())
