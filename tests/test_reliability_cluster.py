"""Cluster on PostgreSQL: three ``cueflow serve`` processes on one database, on different
loopback ports, with no leader and nothing else to run.

300 worker cues and 30 webhook cues fall due at the same instant while interval cues fire every
second. Six HTTP workers work it, two connected to each node. In the middle of the burst node 0
is killed with SIGKILL, and the two workers connected to it die with it, holding claims. The
database and the workers' ledger then show:

* every fire key ``(cue_id, scheduled_for)`` has exactly one execution across the cluster: each
  one-time cue fired once, each interval cue once per tick with no tick lost, also across the
  kill;
* no execution was handed to two live workers, whatever node they were connected to;
* the dead workers' claims went back to the queue when their leases ran out (not before) and
  were finished by the survivors; node 0's webhook deliveries in flight were redelivered by the
  other nodes (at least once);
* every outcome acknowledged was stored once, with its worker's result; no answer was a 5xx, and
  the surviving nodes logged no traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster_clients import Ledger, Worker, at, create_cues, pause_cues, register, wait_until
from tests.cluster_database import TERMINAL, duplicate_fire_keys, grid_gaps, stored_executions
from tests.cluster_support import cluster, node_env
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.webhook_support import Receiver

pytestmark = pytest.mark.postgres

NODES = 3
LEASE = 4
BURST_WORKER = 300
BURST_WEBHOOK = 30
TICKING_WORKER = 5
TICKING_WEBHOOK = 3
LEAD = 15
QUICK_RETRY = {"max_attempts": 10, "backoff_minutes": [0]}


@pytest.fixture
async def pg_url() -> Any:
    """A fresh PostgreSQL database (this scenario is PostgreSQL's: one SQLite file has one
    process)."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


def cue_bodies(receiver: Receiver) -> list[dict[str, Any]]:
    """The burst and the every-second cues."""
    worker = {"transport": "worker", "payload": {"task": "cluster"}}
    hook = {"callback": {"url": receiver.url()}, "retry": QUICK_RETRY, "payload": {"x": 1}}
    burst = {"type": "once", "at": at(LEAD)}
    every_second = {"type": "interval", "interval_seconds": 1}
    return [
        *({"name": f"burst-{n:03d}", "schedule": burst, **worker} for n in range(BURST_WORKER)),
        *({"name": f"hook-{n:03d}", "schedule": burst, **hook} for n in range(BURST_WEBHOOK)),
        *({"name": f"tick-{n}", "schedule": every_second, **worker} for n in range(TICKING_WORKER)),
        *({"name": f"tick-hook-{n}", "schedule": every_second, **hook}
          for n in range(TICKING_WEBHOOK)),
    ]  # fmt: skip


async def test_three_nodes_fire_once_hand_out_once_and_survive_a_kill_9(
    pg_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    ledger = Ledger()
    stop = asyncio.Event()
    env = node_env(lease_seconds=LEASE)
    async with Receiver(delay=1.0) as receiver, cluster(pg_url, tmp_path, NODES, **env) as nodes:
        bases = [node.base for node in nodes]
        assert len(set(bases)) == NODES
        key = await register(bases[0])
        creation_began = time.monotonic()
        created = await create_cues(bases, key, cue_bodies(receiver), ledger)
        creation = time.monotonic() - creation_began
        assert creation < LEAD - 2, f"cue creation took {creation:.1f} s: too slow to test"
        burst_due = datetime.fromisoformat(
            next(c for c in created if c["name"] == "burst-000")["schedule"]["at"]
        )
        workers = [Worker(f"worker-{k}", [bases[k % NODES]], key, ledger, work_seconds=0.05)
                   for k in range(2 * NODES)]  # fmt: skip
        running = {w.name: asyncio.create_task(w.run(stop)) for w in workers}
        doomed = [w for w in workers if w.bases == [bases[0]]]

        async def burst_due_now() -> bool:
            return datetime.now(UTC) >= burst_due

        await wait_until(burst_due_now, LEAD + 30, "the burst", pause=0.05)
        before_burst = len(ledger.outcomes)

        async def mid_burst() -> bool:
            working = sum(len(w.working) for w in doomed)
            return len(ledger.outcomes) >= before_burst + 60 and working >= 1

        await wait_until(mid_burst, 60, "the middle of the burst with claims held", pause=0.02)
        # The workers on node 0's machine die with it, in the same loop turn as the check: a
        # claim they were working on has had no report sent. A report already sent may or may
        # not have reached node 0 before it died.
        for w in doomed:
            running.pop(w.name).cancel()
        abandoned = {eid: w.name for w in doomed for eid in w.working}
        reports_cut_off = {eid: w.name for w in doomed for eid in w.reporting}
        in_flight_hooks = receiver.in_flight
        nodes[0].kill()
        killed_at = time.monotonic()
        done_at_kill = len(ledger.outcomes) - before_burst

        async def drained(kinds: tuple[str, ...] = ("once", "interval")) -> bool:
            rows = await stored_executions(pg_url)
            return all(r["status"] in TERMINAL for r in rows if r["schedule_type"] in kinds)

        await wait_until(lambda: drained(("once",)), 90, "every burst execution terminal")
        ticking = [c["id"] for c in created if c["schedule"]["type"] == "interval"]
        await pause_cues(bases[1], key, ticking)
        await wait_until(drained, 60, "every execution terminal")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running.values()), 30)
        rows = await stored_executions(pg_url)
        received = [r.headers["x-cueapi-execution-id"] for r in receiver.requests]
        survivors_logged = [line for node in nodes[1:] for line in node.errors_logged()]

    dead = {w.name for w in doomed}
    by_id = {r["id"]: r for r in rows}
    # fired exactly once across the cluster
    assert duplicate_fire_keys(rows) == []
    per_cue = Counter(r["cue_id"] for r in rows)
    one_time = [c for c in created if c["schedule"]["type"] == "once"]
    assert all(per_cue[c["id"]] == 1 for c in one_time)
    ticking_cues = [c for c in created if c["schedule"]["type"] == "interval"]
    assert all(grid_gaps(rows, c["id"]) == [] for c in ticking_cues), "a tick was lost"
    assert {r["status"] for r in rows} == {"success"}
    # handed out once: no execution claimed by two live workers
    live_claims = Counter(eid for w, eid, _ in ledger.claims if w not in dead)
    assert max(live_claims.values()) == 1, "two live workers got the same execution"
    # the dead workers' claims returned to the queue when their leases ran out
    assert abandoned
    for execution_id, dead_worker in abandoned.items():
        claims = ledger.claims_of(execution_id)
        (t_dead,) = [t for w, t in claims if w == dead_worker]
        (successor, t_next) = claims[-1]
        assert successor not in dead
        assert t_next - t_dead >= LEASE - 1, "a claim was taken over before its lease ended"
        assert by_id[execution_id]["attempts"] >= 2
        assert by_id[execution_id]["outcome_result"] == successor
    for execution_id, dead_worker in reports_cut_off.items():
        (successor, _) = ledger.claims_of(execution_id)[-1]
        assert by_id[execution_id]["outcome_result"] in (dead_worker, successor)
    # acknowledged outcomes stored once, with their worker's result
    for execution_id, told in ledger.outcomes.items():
        assert len(told) == 1
        assert by_id[execution_id]["outcome_result"] == told[0]
    assert ledger.server_errors == 0, ledger.statuses
    assert set(ledger.refused) <= {"claim_failed"}, ledger.refused
    assert survivors_logged == []
    # webhooks at least once, across the kill
    hooks = [r for r in rows if r["transport"] == "webhook"]
    assert {r["id"] for r in hooks} <= set(received)
    redelivered = len(received) - len(set(received))
    claimed_total = len(ledger.claims)
    print(
        f"\ncluster[{NODES} nodes]: {len(rows)} executions ({BURST_WORKER + BURST_WEBHOOK} in "
        f"the burst), 0 duplicate fire keys, 0 lost ticks, {claimed_total} claims, 0 double "
        f"claims by live workers, {len(ledger.outcomes)} outcomes acknowledged and stored, "
        f"0 5xx in {sum(ledger.statuses.values())} requests; node 0 killed {done_at_kill} "
        f"outcomes into the burst with {len(abandoned)} claims being worked on by its workers (all "
        f"re-claimed after the {LEASE} s lease), {len(reports_cut_off)} reports cut off, and "
        f"{in_flight_hooks} webhooks in flight; "
        f"{len(received)} webhook requests for {len(set(received))} executions ({redelivered} "
        f"redelivered); drained {time.monotonic() - killed_at:.1f} s after the kill; cues "
        f"created in {creation:.1f} s; {time.monotonic() - started:.1f} s"
    )
