"""Flows: what a multi-step run costs, measured through the worker protocol with lite clients.

Parts (``--flows``, each a configuration of its own):

* ``handoff``: a two-step flow ``a → b``, ``--handoffs`` runs one after the other. A long-polling
  worker (``GET /v1/executions/claimable?task=b&wait=2``) is waiting when ``a``'s outcome is
  posted; the figure is the time from the outcome's answer (2xx) to the moment that worker is
  handed ``b``'s execution (it can be slightly negative: the server may answer the long-poll
  before the outcome's own answer reaches the client).
* ``chain``: a three-step flow ``a → b → c``, ``--runs`` runs started at once (4 clients), K lite
  workers (``--workers``) claiming in batches of ``--batch`` with ``wait`` (``--flow-protocol
  batch``) or one at a time with claim-next (``next``) and reporting outcomes; runs/s from the
  first start to the last run's final outcome, and every run must end ``succeeded``.
* ``fanout``: ``list → each (for_each list) → total`` with ``--items`` items; time from the start
  of the run to its end. Every item must be handed out exactly once, every execution of the run
  must be distinct by ``(step, item, attempt)`` and the run must succeed with the sum of the
  items as ``total``'s output. The server caps ``for_each`` at ``cueflow.handoff.MAX_ITEMS``;
  a longer list fails the run and the part says so.
* ``cluster`` (PostgreSQL only): three ``cueflow serve`` nodes on one database, many runs of a
  flow with a ``for_each`` and a fan-in, workers spread over the nodes, one node killed with
  SIGKILL in the middle; see ``tests/flows_cluster.py`` (the same scenario is the test
  ``tests/test_reliability_flows_cluster.py``).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.lite import LiteClient
from benchmarks.stats import percentiles
from benchmarks.target import PG_ADMIN_URL, Target, _pg_admin

PARTS = ("handoff", "chain", "fanout", "cluster")
TIMEOUT_SECONDS = 600.0
"""Longest a part may take before it gives up (and fails)."""


def _step(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "needs": list(needs),
        "transport": "worker",
        "payload": {"task": step_id},
        **extra,
    }


async def _checked(client: LiteClient, method: str, path: str, body: Any = None) -> Any:
    status, answer = await client.json(method, path, body)
    if status >= 300:
        raise RuntimeError(f"{method} {path} answered {status}: {answer}")
    return answer


async def create_flow(client: LiteClient, name: str, steps: list[dict[str, Any]]) -> str:
    """``POST /v1/flows``; the flow's id."""
    return str((await _checked(client, "POST", "/v1/flows", {"name": name, "steps": steps}))["id"])


async def start_run(client: LiteClient, flow_id: str, data: Any) -> str:
    """``POST /v1/flows/{id}/runs``; the run's id."""
    run = await _checked(client, "POST", f"/v1/flows/{flow_id}/runs", {"input": data})
    return str(run["id"])


async def claim(
    client: LiteClient, worker: str, task: str | None = None, limit: int = 1, wait: float = 0
) -> list[dict[str, Any]]:
    """Batch claim (cueflow extension): up to ``limit`` executions (of ``task``)."""
    body: dict[str, Any] = {"worker_id": worker, "limit": limit, "wait": wait}
    if task is not None:
        body["task"] = task
    return list((await _checked(client, "POST", "/v1/executions/claims", body))["claimed"])


def output_for(item: dict[str, Any], items: int) -> Any:
    """What the benchmark workers report as a step's output: ``list`` the items, ``each`` the
    item doubled, ``total`` the sum of ``each``'s outputs, any other step its own id."""
    flow = item["payload"]["flow"]
    step = flow["step"]
    if step == "list":
        return list(range(items))
    if step == "each":
        return {"doubled": 2 * flow["item"]}
    if step == "total":
        return sum(o["doubled"] for o in flow["parents"]["each"])
    return step


async def handoff(target: Target, runs: int = 200) -> dict[str, Any]:
    """Part ``handoff``: the time from a parent's accepted outcome to the child seen by a
    long-polling worker, over ``runs`` runs one after the other."""
    token = target.new_account()
    reporter = LiteClient(target.base_url, token)
    observer = LiteClient(target.base_url, token)
    flow_id = await create_flow(reporter, "handoff", [_step("a"), _step("b", "a")])
    lags: list[float] = []
    from_sent: list[float] = []
    missed = 0
    meter = target.meter()
    for n in range(runs):
        run_id = await start_run(reporter, flow_id, {"n": n})
        (parent,) = await claim(reporter, "reporter", "a", wait=2)
        looking = asyncio.create_task(
            observer.json("GET", "/v1/executions/claimable?task=b&limit=10&wait=2")
        )
        await asyncio.sleep(0.02)  # the long-poll is waiting on the server
        sent = time.perf_counter()
        await _checked(
            reporter,
            "POST",
            f"/v1/executions/{parent['execution_id']}/outcome",
            {"success": True, "output": {"n": n}},
        )
        acked = time.perf_counter()
        status, page = await looking
        seen = time.perf_counter()
        shown = (page or {}).get("executions", []) if status == 200 else []
        mine = [e for e in shown if e["payload"]["flow"]["run_id"] == run_id]
        if not mine:
            missed += 1  # not handed over within the 2 s wait
        else:
            lags.append(seen - acked)
            from_sent.append(seen - sent)
        (child,) = await claim(reporter, "reporter", "b", wait=5)
        if child["payload"]["flow"]["run_id"] != run_id:
            raise RuntimeError("the child claimed is not the run's")
        await _checked(
            reporter, "POST", f"/v1/executions/{child['execution_id']}/outcome", {"success": True}
        )
    figures = meter.stop()
    _, listed = await reporter.json("GET", f"/v1/flow-runs?flow_id={flow_id}&status=succeeded")
    await reporter.close()
    await observer.close()
    return {
        "scenario": "flows",
        "part": "handoff",
        "runs": runs,
        "succeeded": listed["total"],
        "not_seen_within_wait": missed,
        "handoff_ms": percentiles(lags, scale=1000),
        "handoff_from_request_ms": percentiles(from_sent, scale=1000),
        **figures,
    }


async def _chain_worker(
    base_url: str, token: str, name: str, protocol: str, batch: int, stop: asyncio.Event
) -> dict[str, Any]:
    """One worker of the chain part: claims (claim-next, or batches with ``wait``), reports
    success, until ``stop``; returns what it claimed and when its last outcome was answered."""
    client = LiteClient(base_url, token)
    claimed: list[str] = []
    last = 0.0
    try:
        while not stop.is_set():
            if protocol == "next":
                status, body = await client.json(
                    "POST", "/v1/executions/claim", {"worker_id": name}
                )
                if status != 200:
                    await asyncio.sleep(0.002)
                    continue
                eid = body["execution_id"]
                claimed.append(eid)
                report = {"success": True, "worker_id": name}
                await _checked(client, "POST", f"/v1/executions/{eid}/outcome", report)
            else:
                items = await claim(client, name, limit=batch, wait=0.5)
                if not items:
                    continue
                reports = [
                    {"execution_id": i["execution_id"], "success": True,
                     "output": output_for(i, 0), "worker_id": name}
                    for i in items
                ]  # fmt: skip
                claimed += [i["execution_id"] for i in items]
                await _checked(client, "POST", "/v1/executions/outcomes", {"outcomes": reports})
            last = time.time()
    finally:
        await client.close()
    return {"claimed": claimed, "last": last}


async def _succeeded(client: LiteClient, flow_id: str) -> int:
    page = await _checked(
        client, "GET", f"/v1/flow-runs?flow_id={flow_id}&status=succeeded&limit=1"
    )
    return int(page["total"])


async def chain(
    target: Target, runs: int = 500, workers: int = 4, protocol: str = "batch", batch: int = 10
) -> dict[str, Any]:
    """Part ``chain``: runs/s of ``a → b → c`` with ``runs`` runs started at once."""
    token = target.new_account()
    client = LiteClient(target.base_url, token)
    flow_id = await create_flow(client, "chain", [_step("a"), _step("b", "a"), _step("c", "b")])
    stop = asyncio.Event()
    meter = target.meter()
    began = time.time()
    loops = [
        asyncio.create_task(_chain_worker(target.base_url, token, f"w{k}", protocol, batch, stop))
        for k in range(workers)
    ]
    queue = list(range(runs))

    async def starter() -> None:
        starting = LiteClient(target.base_url, token)
        while queue:
            n = queue.pop()
            await start_run(starting, flow_id, {"n": n})
        await starting.close()

    await asyncio.gather(*(starter() for _ in range(4)))
    started = time.time() - began
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while (succeeded := await _succeeded(client, flow_id)) < runs:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    stop.set()
    results = await asyncio.gather(*loops)
    figures = meter.stop()
    last = max(r["last"] for r in results)
    claimed = [e for r in results for e in r["claimed"]]
    await client.close()
    elapsed = max(last - began, 1e-6)
    return {
        "scenario": "flows",
        "part": "chain",
        "protocol": protocol,
        "runs": runs,
        "workers": workers,
        "batch": batch if protocol == "batch" else None,
        "succeeded": succeeded,
        "duplicate_claims": len(claimed) - len(set(claimed)),
        "executions": len(set(claimed)),
        "start_seconds": round(started, 3),
        "seconds": round(elapsed, 3),
        "runs_per_s": round(runs / elapsed, 1),
        "steps_per_s": round(len(set(claimed)) / elapsed, 1),
        **figures,
    }


async def run_executions(client: LiteClient, run_id: str) -> list[dict[str, Any]]:
    """Every execution of a run (``GET /v1/executions?flow_run_id=``, page by page)."""
    rows: list[dict[str, Any]] = []
    while True:
        page = await _checked(
            client, "GET", f"/v1/executions?flow_run_id={run_id}&limit=100&offset={len(rows)}"
        )
        rows += page["executions"]
        if len(rows) >= page["total"] or not page["executions"]:
            return rows


async def fanout(
    target: Target, items: int = 1000, workers: int = 4, batch: int = 50
) -> dict[str, Any]:
    """Part ``fanout``: one run of ``list → each (for_each) → total`` with ``items`` items."""
    token = target.new_account()
    client = LiteClient(target.base_url, token)
    steps = [_step("list"), _step("each", "list", for_each="list"), _step("total", "each")]
    flow_id = await create_flow(client, "fanout", steps)
    handed: Counter[tuple[str, int | None]] = Counter()
    stop = asyncio.Event()

    async def worker(name: str) -> None:
        own = LiteClient(target.base_url, token)
        while not stop.is_set():
            got = await claim(own, name, limit=batch, wait=0.5)
            if not got:
                continue
            reports = []
            for i in got:
                flow = i["payload"]["flow"]
                handed[(flow["step"], flow.get("item_index"))] += 1
                reports.append(
                    {"execution_id": i["execution_id"], "success": True,
                     "output": output_for(i, items), "worker_id": name}
                )  # fmt: skip
            await _checked(own, "POST", "/v1/executions/outcomes", {"outcomes": reports})
        await own.close()

    meter = target.meter()
    began = time.perf_counter()
    loops = [asyncio.create_task(worker(f"w{k}")) for k in range(workers)]
    run_id = await start_run(client, flow_id, {"items": items})
    run: dict[str, Any] = {}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run = await _checked(client, "GET", f"/v1/flow-runs/{run_id}")
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - began
    stop.set()
    await asyncio.gather(*loops)
    figures = meter.stop()
    rows = await run_executions(client, run_id)
    await client.close()
    per_step = Counter(r["step_id"] for r in rows)
    each = run["steps"].get("each", {})
    item_rows = each.get("items") or []
    problems = []
    if run.get("status") != "succeeded":
        problems.append(f"run {run.get('status')}: {each.get('error')}")
    if any(n != 1 for n in handed.values()):
        problems.append("an execution was handed out twice")
    if sorted(i for s, i in handed if s == "each") != list(range(items)):
        problems.append("not every item was handed out")
    if run.get("status") == "succeeded" and run["steps"]["total"]["output"] != items * (items - 1):
        problems.append("the fan-in did not see every item's output")
    if run.get("status") == "succeeded" and per_step != {"list": 1, "each": items, "total": 1}:
        problems.append(f"executions per step: {dict(per_step)}")
    return {
        "scenario": "flows",
        "part": "fanout",
        "items": items,
        "workers": workers,
        "batch": batch,
        "run_status": run.get("status"),
        "items_succeeded": sum(1 for i in item_rows if i.get("status") == "succeeded"),
        "executions": len(rows),
        "handed_twice": sum(1 for n in handed.values() if n > 1),
        "executions_per_step": dict(per_step),
        "problems": problems,
        "seconds": round(elapsed, 3),
        "items_per_s": round(items / elapsed, 1),
        **figures,
    }


async def cluster(runs: int = 40, items: int = 10) -> dict[str, Any]:
    """Part ``cluster``: three nodes on a fresh PostgreSQL database (``CUEFLOW_BENCH_PG``), one
    killed mid-flow (``tests/flows_cluster.py``); the figures and what was checked."""
    from tests.flows_cluster import kill_one_of_three

    name = f"cueflow_bench_{uuid.uuid4().hex[:10]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="cueflow-bench-") as workdir:
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
            found = await kill_one_of_three(url, Path(workdir), runs=runs, items=items)
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    found["problems"] = [
        what
        for what, bad in (
            ("runs not succeeded", found["not_succeeded"]),
            ("step executions created twice", found["duplicate_step_executions"]),
            ("units without exactly one success", found["units_not_succeeded_once"]),
            ("acknowledged outputs lost", found["lost"]),
            ("handed out twice", found["handed_out_twice"]),
            ("fan-in wrong", found["fan_in_wrong"]),
            ("5xx answers", found["server_errors"]),
        )
        if bad
    ]
    return found
