"""Worker throughput: N one-time worker cues due at the same moment, K worker loops.

Protocols (each loop repeats until the queue stays empty):

* ``first``: ``GET /claimable`` → claim the first listed item (the next one after a 409) →
  outcome → poll again (loops collide on the same items);
* ``random``: the same, trying the listed items in random order;
* ``next``: ``POST /v1/executions/claim`` (claim-next) → outcome;
* ``batch``: ``POST /v1/executions/claims`` (up to ``--batch`` at once, cueflow extension) →
  one ``POST /v1/executions/outcomes`` for all of them.

``controls`` (cueflow's run controls, issue 17) put every cue under some of them, to measure
what their checks cost a claim: ``priority`` spreads the cues over 10 priority levels (the
``n``-th cue gets ``n % 10``), ``concurrency`` gives them one shared concurrency key with a limit
of what the loops can hold at once (loops times claims per request: it never throttles them),
``rate`` one shared rate-limit key allowing 1,000,000 starts a minute (never reached).

Figures: executions/s from the scheduled time to the last outcome, lag from ``scheduled_for``
to first seen (in a claimable list or a claim), 409s, duplicate claims (must be 0) and the
server's own count of finished executions.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import random
import time
from collections.abc import Callable
from typing import Any

from benchmarks.clients import make_client
from benchmarks.seed import create_checked, first_due_after_creating, once_cues
from benchmarks.stats import percentiles
from benchmarks.target import Target

PROTOCOLS = ("first", "random", "next", "batch")
CONTROLS = ("priority", "concurrency", "rate")
PRIORITY_LEVELS = 10
IDLE_STOP_SECONDS = 1.0


async def worker_loop(
    base_url: str, token: str, kind: str, protocol: str, worker_id: str, due: float, batch: int
) -> dict[str, Any]:
    """One worker loop; returns what it claimed, when it first saw work, its 409s and the time
    of its last outcome."""
    client = make_client(kind, base_url, token)
    claimed: list[str] = []
    seen: dict[str, float] = {}
    conflicts = 0
    last_outcome = 0.0
    idle_since: float | None = None
    outcome = {"success": True, "result": "ok", "worker_id": worker_id}
    try:
        while True:
            did = 0
            if protocol in ("first", "random"):
                _, page = await client.json("GET", "/v1/executions/claimable")
                items = page["executions"]
                now = time.time()
                for item in items:
                    seen.setdefault(item["execution_id"], now)
                if protocol == "random":
                    random.shuffle(items)
                # Claim one (the first untried, or a random one), report it, poll again.
                for item in items:
                    eid = item["execution_id"]
                    status, _ = await client.json(
                        "POST", f"/v1/executions/{eid}/claim", {"worker_id": worker_id}
                    )
                    if status != 200:
                        conflicts += 1
                        continue
                    claimed.append(eid)
                    await client.json("POST", f"/v1/executions/{eid}/outcome", outcome)
                    last_outcome = time.time()
                    did = 1
                    break
            elif protocol == "next":
                status, body = await client.json(
                    "POST", "/v1/executions/claim", {"worker_id": worker_id}
                )
                if status == 200:
                    eid = body["execution_id"]
                    seen.setdefault(eid, time.time())
                    claimed.append(eid)
                    await client.json("POST", f"/v1/executions/{eid}/outcome", outcome)
                    last_outcome = time.time()
                    did = 1
            else:
                status, body = await client.json(
                    "POST", "/v1/executions/claims", {"worker_id": worker_id, "limit": batch}
                )
                if status != 200:
                    raise RuntimeError(f"batch claim answered {status}: {body}")
                items = body["claimed"]
                if items:
                    now = time.time()
                    for item in items:
                        seen.setdefault(item["execution_id"], now)
                        claimed.append(item["execution_id"])
                    reports = [{"execution_id": i["execution_id"], **outcome} for i in items]
                    status, body = await client.json(
                        "POST", "/v1/executions/outcomes", {"outcomes": reports}
                    )
                    if status != 200:
                        raise RuntimeError(f"batch outcome answered {status}: {body}")
                    last_outcome = time.time()
                    did = len(items)
            now = time.time()
            if did:
                idle_since = None
            elif now > due:
                idle_since = idle_since or now
                if now - idle_since > IDLE_STOP_SECONDS:
                    break
                await asyncio.sleep(0.002)
            else:
                await asyncio.sleep(0.002)
    finally:
        await client.close()
    return {"claimed": claimed, "seen": seen, "conflicts": conflicts, "last": last_outcome}


def parse_controls(variants: str) -> list[tuple[str, ...]]:
    """``none,priority+concurrency`` → ``[(), ("priority", "concurrency")]``."""
    parsed: list[tuple[str, ...]] = []
    for variant in variants.split(","):
        names = () if variant in ("", "none") else tuple(variant.split("+"))
        unknown = [n for n in names if n not in CONTROLS]
        if unknown:
            raise SystemExit(f"unknown control {unknown[0]!r}; one of none, {', '.join(CONTROLS)}")
        parsed.append(names)
    return parsed


def with_controls(
    bodies: list[dict[str, Any]], controls: tuple[str, ...], holds: int
) -> list[dict[str, Any]]:
    """The cue bodies under ``controls`` (``holds``: the most claims the loops hold at once)."""
    for n, body in enumerate(bodies):
        if "priority" in controls:
            body["priority"] = n % PRIORITY_LEVELS
        if "concurrency" in controls:
            body["concurrency"] = {"limit": holds, "key": "bench"}
        if "rate" in controls:
            body["rate_limit"] = {"limit": 1_000_000, "period_seconds": 60, "key": "bench"}
    return bodies


def _process_main(args: tuple[Any, ...], out: Any) -> None:
    out.put(asyncio.run(worker_loop(*args)))


async def _run_loops(
    target: Target, token: str, kind: str, protocol: str, workers: int, due: float, batch: int
) -> list[dict[str, Any]]:
    arguments = [
        (target.base_url, token, kind, protocol, f"bench-w{k}", due, batch) for k in range(workers)
    ]
    if kind == "lite":
        # One process drives every loop: this client is cheap enough not to need more.
        return list(await asyncio.gather(*(worker_loop(*a) for a in arguments)))
    # httpx costs ~1.6 ms of CPU per request: one process per loop, as real workers would run.
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(a, queue)) for a in arguments]
    for proc in procs:
        proc.start()
    results = [await asyncio.to_thread(queue.get, True, 900) for _ in procs]
    for proc in procs:
        proc.join()
    return results


async def run(
    target: Target,
    executions: int = 3000,
    workers: int = 4,
    protocol: str = "random",
    client: str = "lite",
    batch: int = 10,
    controls: tuple[str, ...] = (),
    on_start: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """One run of the scenario; its figures. ``on_start`` is called as the worker loops start
    (the retention scenario starts pruning then)."""
    token = target.new_account()
    due_at = await first_due_after_creating(
        target.base_url, token, executions, probe=40, transport="worker"
    )
    holds = workers * (batch if protocol == "batch" else 1)
    bodies = with_controls(
        once_cues(executions, lambda n: due_at, "job", transport="worker"), controls, holds
    )
    await create_checked(target.base_url, token, bodies)
    due = due_at.timestamp()
    wait = due - time.time() - 0.3
    if wait > 0:
        await asyncio.sleep(wait)
    if on_start is not None:
        on_start()
    meter = target.meter()
    results = await _run_loops(target, token, client, protocol, workers, due, batch)
    figures = meter.stop()
    claimed = [eid for r in results for eid in r["claimed"]]
    first_seen: dict[str, float] = {}
    for r in results:
        for eid, t in r["seen"].items():
            first_seen[eid] = min(first_seen.get(eid, t), t)
    last = max(r["last"] for r in results)
    elapsed = max(last - due, 1e-6)
    lister = make_client("lite", target.base_url, token)
    _, page = await lister.json("GET", "/v1/executions?status=success&limit=1")
    await lister.close()
    lags = [t - due for t in first_seen.values()]
    return {
        "scenario": "worker",
        "protocol": protocol,
        "client": client,
        "executions": executions,
        "workers": workers,
        "batch": batch if protocol == "batch" else None,
        "controls": "+".join(controls) or "none",
        "finished_on_server": page["total"],
        "claimed": len(set(claimed)),
        "duplicate_claims": len(claimed) - len(set(claimed)),
        "conflicts_409": sum(r["conflicts"] for r in results),
        "seconds": round(elapsed, 3),
        "exec_per_s": round(len(set(claimed)) / elapsed, 1),
        "lag_ms": percentiles(lags, scale=1000),
        **figures,
    }
