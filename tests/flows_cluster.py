"""Flows on a three-node PostgreSQL cluster with one node killed (``kill -9``) mid-flow: the
scenario of ``tests/test_reliability_flows_cluster.py`` and of ``python -m benchmarks
--scenarios flows --flows cluster``.

Each run of the flow ``split → each (for_each split) → join (needs each and side) → final``,
with ``side`` beside ``each``, moves on through its executions on whichever node a worker
reports to. Workers claim in batches and report outcomes one by one, each output naming its
execution, and keep a ledger of what they were told. Two workers per node; node 0's two die
with it, holding claims. :func:`kill_one_of_three` returns what the database, the runs and the
ledger show (see its docstring); the test asserts it, the benchmark reports it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from cueflow.sql.tables import executions
from tests.cluster_clients import register, wait_until
from tests.cluster_database import database
from tests.cluster_support import Node, cluster, node_env

NODES = 3
LEASE = 4
RETRY = {"max_attempts": 5, "backoff_minutes": [0]}
"""A step whose claim died with its worker gets its next attempt when the lease runs out."""
STEPS = ("split", "each", "side", "join", "final")


def flow_steps() -> list[dict[str, Any]]:
    """The flow: a fan-out, a branch beside it, a fan-in, and a last step."""

    def step(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
        return {"id": step_id, "needs": list(needs), "transport": "worker",
                "payload": {"task": "flow"}, "retry": RETRY, **extra}  # fmt: skip

    return [
        step("split"),
        step("each", "split", for_each="split"),
        step("side", "split"),
        step("join", "each", "side"),
        step("final", "join"),
    ]


def output_of(item: dict[str, Any], worker: str) -> Any:
    """A worker's output for a claimed step execution: it names the execution and the worker,
    so every acknowledged output can be found again in its run."""
    flow = item["payload"]["flow"]
    mark = {"execution": item["execution_id"], "by": worker}
    if flow["step"] == "split":
        return [{"n": k} for k in range(flow["input"]["items"])]
    if flow["step"] == "each":
        return {**mark, "doubled": 2 * flow["item"]["n"]}
    if flow["step"] == "join":
        return {**mark, "sum": sum(o["doubled"] for o in flow["parents"]["each"])}
    return mark


@dataclass
class FlowLedger:
    """What the flow workers were told."""

    claims: list[tuple[str, str]] = field(default_factory=list)
    """(worker, execution id) of each execution handed out by a batch claim."""
    acknowledged: list[tuple[str, str, int | None, str, Any]] = field(default_factory=list)
    """(run, step, item index, execution id, output) of each outcome answered 2xx."""
    statuses: Counter[int] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    lease_lost_after: list[float] = field(default_factory=list)
    """Seconds from the claim to an outcome refused with ``lease_lost`` (a live worker that
    overran its lease: correct, and the step's next attempt does the work)."""


@dataclass
class FlowWorker:
    """A worker on one node: batch claims with ``wait``, then one outcome per execution."""

    name: str
    base: str
    key: str
    ledger: FlowLedger
    holding: set[str] = field(default_factory=set)
    """Executions claimed whose outcome has not been answered."""

    async def _send(self, client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
        response = await client.post(f"{self.base}{path}", json=body)
        self.ledger.statuses[response.status_code] += 1
        if 400 <= response.status_code < 500:
            self.ledger.refused[response.json().get("error", {}).get("code", "?")] += 1
        return response

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set."""
        rng = random.Random(self.name)
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(headers=headers, timeout=15) as client:
            while not stop.is_set():
                claim = {"worker_id": self.name, "limit": 3, "wait": 1}
                response = await self._send(client, "/v1/executions/claims", claim)
                if response.status_code != 200:
                    await asyncio.sleep(0.2)
                    continue
                claimed = response.json()["claimed"]
                at = time.monotonic()
                for item in claimed:
                    self.ledger.claims.append((self.name, item["execution_id"]))
                    self.holding.add(item["execution_id"])
                for item in claimed:
                    await asyncio.sleep(rng.uniform(0.0, 0.02))
                    await self._report(client, item, at)

    async def _report(self, client: httpx.AsyncClient, item: dict[str, Any], at: float) -> None:
        flow = item["payload"]["flow"]
        output = output_of(item, self.name)
        body = {"success": True, "output": output, "worker_id": self.name}
        response = await self._send(client, f"/v1/executions/{item['execution_id']}/outcome", body)
        self.holding.discard(item["execution_id"])
        if response.status_code == 409 and response.json()["error"]["code"] == "lease_lost":
            self.ledger.lease_lost_after.append(round(time.monotonic() - at, 2))
        if response.status_code < 300:
            unit = (flow["run_id"], flow["step"], flow.get("item_index"))
            self.ledger.acknowledged.append((*unit, item["execution_id"], output))


async def _start_runs(bases: list[str], key: str, flow_id: str, runs: int, items: int) -> list[str]:
    started: list[str] = []
    queue = list(range(runs))
    headers = {"Authorization": f"Bearer {key}"}

    async def starter(client: httpx.AsyncClient) -> None:
        while queue:
            n = queue.pop()
            body = {"input": {"items": items, "n": n}, "idempotency_key": f"run-{n}"}
            response = await client.post(f"{bases[n % len(bases)]}/v1/flows/{flow_id}/runs",
                                         json=body, headers=headers)  # fmt: skip
            assert response.status_code == 201, response.text
            started.append(response.json()["id"])

    async with httpx.AsyncClient(timeout=30) as client:
        await asyncio.gather(*(starter(client) for _ in range(6)))
    return started


async def _runs(base: str, key: str, run_ids: list[str]) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        found = {}
        for run_id in run_ids:
            response = await client.get(f"/v1/flow-runs/{run_id}")
            assert response.status_code == 200, response.text
            found[run_id] = response.json()
        return found


def _lost(acknowledged: list[tuple[str, str, int | None, str, Any]],
          runs: dict[str, dict[str, Any]]) -> list[tuple[str, str, int | None, str]]:  # fmt: skip
    """Acknowledged outputs the run does not show (as its step's output, or its item's)."""
    lost = []
    for run_id, step, index, execution_id, output in acknowledged:
        shown = runs[run_id]["steps"][step]["output"]
        if index is not None:
            shown = shown[index] if isinstance(shown, list) and len(shown) > index else None
        if shown != output:
            lost.append((run_id, step, index, execution_id))
    return lost


async def kill_one_of_three(
    database_url: str, workdir: Path, runs: int = 40, items: int = 10
) -> dict[str, Any]:
    """Start ``runs`` runs (``items`` items each) on three nodes of ``database_url``, kill node 0
    with SIGKILL once about a third of the work is acknowledged and its workers hold claims, and
    let the other nodes finish. Returns the figures and what was found:

    ``not_succeeded`` (runs not ``succeeded`` at the end), ``duplicate_step_executions``
    ((run, step, item, attempt) held by two executions), ``units_not_succeeded_once`` ((run, step,
    item) without exactly one execution in ``success``), ``acknowledged_outputs_lost`` (an
    outcome answered 2xx whose output the run does not show), ``handed_out_twice`` (executions
    given to two workers that both lived), ``abandoned`` (claims node 0's workers held when they
    died) and ``abandoned_retried`` (those whose step or item then succeeded on a later attempt),
    ``fan_in_wrong`` (runs whose ``join`` did not see every item), ``server_errors``,
    ``survivor_tracebacks``.
    """
    began = time.monotonic()
    ledger = FlowLedger()
    stop = asyncio.Event()
    expected = runs * (items + 4)
    async with cluster(database_url, workdir, NODES, **node_env(lease_seconds=LEASE)) as nodes:
        bases = [node.base for node in nodes]
        key = await register(bases[1])
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(
                f"{bases[1]}/v1/flows",
                json={"name": "cluster", "steps": flow_steps()},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert response.status_code == 201, response.text
            flow_id = response.json()["id"]
        workers = [FlowWorker(f"worker-{k}", bases[k % NODES], key, ledger)
                   for k in range(2 * NODES)]  # fmt: skip
        running = {w.name: asyncio.create_task(w.run(stop)) for w in workers}
        run_ids = await _start_runs(bases, key, flow_id, runs, items)
        doomed = [w for w in workers if w.base == bases[0]]

        async def a_third_done_and_claims_held() -> bool:
            done = len(ledger.acknowledged) >= expected // 3
            return done and sum(len(w.holding) for w in doomed) >= 1

        await wait_until(a_third_done_and_claims_held, 90, "a third of the work", pause=0.01)
        for w in doomed:  # node 0's machine dies: its workers with it, holding claims
            running.pop(w.name).cancel()
        abandoned = {eid for w in doomed for eid in w.holding}
        _kill(nodes[0])
        killed_at = time.monotonic()
        done_at_kill = len(ledger.acknowledged)

        async def all_ended() -> bool:
            found = await _runs(bases[1], key, run_ids)
            return all(r["status"] in ("succeeded", "failed", "cancelled") for r in found.values())

        await wait_until(all_ended, 120, "every run ended", pause=0.5)
        drained = time.monotonic() - killed_at
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running.values()), 30)
        found = await _runs(bases[2], key, run_ids)
        survivor_tracebacks = [line for node in nodes[1:] for line in node.errors_logged()]
    rows = await _step_executions(database_url)
    dead = {w.name for w in doomed}
    live = Counter(eid for w, eid in ledger.claims if w not in dead)
    keys = Counter((r["flow_run_id"], r["step_id"], r["item"], r["step_attempt"]) for r in rows)
    successes = Counter(
        (r["flow_run_id"], r["step_id"], r["item"]) for r in rows if r["status"] == "success"
    )
    units = {(r["flow_run_id"], r["step_id"], r["item"]) for r in rows}
    by_id = {r["id"]: r for r in rows}
    retried = [
        eid
        for eid in abandoned
        if any(
            r["status"] == "success"
            and (r["flow_run_id"], r["step_id"], r["item"])
            == (by_id[eid]["flow_run_id"], by_id[eid]["step_id"], by_id[eid]["item"])
            and r["step_attempt"] > by_id[eid]["step_attempt"]
            for r in rows
        )
    ]
    total = items * (items - 1)
    return {
        "scenario": "flows",
        "part": "cluster",
        "nodes": NODES,
        "runs": runs,
        "items": items,
        "succeeded": sum(1 for r in found.values() if r["status"] == "succeeded"),
        "not_succeeded": sorted(r["id"] for r in found.values() if r["status"] != "succeeded"),
        "step_executions": len(rows),
        "expected_units": expected,
        "units": len(units),
        "duplicate_step_executions": sum(n - 1 for n in keys.values()),
        "units_not_succeeded_once": sorted(str(u) for u in units if successes[u] != 1),
        "acknowledged": len(ledger.acknowledged),
        "acknowledged_outputs_lost": len(_lost(ledger.acknowledged, found)),
        "lost": _lost(ledger.acknowledged, found),
        "handed_out_twice": sum(1 for n in live.values() if n > 1),
        "abandoned": len(abandoned),
        "abandoned_retried": len(retried),
        "fan_in_wrong": sorted(
            r["id"]
            for r in found.values()
            if r["status"] == "succeeded" and r["steps"]["join"]["output"]["sum"] != total
        ),
        "acknowledged_at_kill": done_at_kill,
        "server_errors": sum(n for s, n in ledger.statuses.items() if s >= 500),
        "refused": dict(ledger.refused),
        "lease_lost_after_seconds": ledger.lease_lost_after,
        "survivor_tracebacks": survivor_tracebacks,
        "drained_after_kill_seconds": round(drained, 1),
        "seconds": round(time.monotonic() - began, 1),
    }


def _kill(node: Node) -> None:
    node.kill()


async def _step_executions(url: str) -> list[dict[str, Any]]:
    """Every flow step execution stored."""
    stmt = select(executions).where(executions.c.flow_run_id.is_not(None))
    async with database(url) as store, store.tx() as tx:
        return [dict(row) for row in (await tx.conn.execute(stmt)).mappings().all()]
