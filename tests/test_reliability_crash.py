"""Crash: ``kill -9`` a single ``cueflow serve`` in the middle of a burst of fires and
deliveries, leave it down for a while, restart it on the same database (SQLite and PostgreSQL).

While it runs, four HTTP workers poll, claim, work and report (retrying on connection errors, as
real workers do), and a local receiver takes webhooks. The cues: a burst of 150 worker and 30
webhook one-time cues due at once, interval cues firing every second under each misfire policy,
and one-time cues falling due while the server is down. After the restart everything drains,
and the database is read directly to check:

* every cue due while the server was down followed its misfire policy (``fire_once`` folds the
  missed ticks into one run, ``skip`` records one ``missed`` execution, ``fire_all`` replays every
  tick; a one-time cue fires once, late, or with ``skip`` is missed and fails);
* every execution ends terminal, no fire key ``(cue_id, scheduled_for)`` has two executions;
* every cue creation answered 201 and every outcome answered 2xx is stored (the outcome with
  the result of the worker that was told so);
* every webhook execution succeeded and the receiver got each at least once (duplicates, from
  deliveries cut off by the kill, are counted and printed);
* no answer was a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.cluster_clients import Ledger, Worker, at, create_cues, pause_cues, register, wait_until
from tests.cluster_database import (
    TERMINAL,
    duplicate_fire_keys,
    grid_gaps,
    stored_cues,
    stored_executions,
)
from tests.cluster_support import cluster, node_env
from tests.webhook_support import Receiver

LEASE = 3
GRACE = 2
DOWNTIME = 7
BURST_WORKER = 150
BURST_WEBHOOK = 30
LEAD = 11
"""Seconds from the start of cue creation to the burst."""
POLICIES = ("fire_once", "skip", "fire_all")
QUICK_RETRY = {"max_attempts": 10, "backoff_minutes": [0]}


def cue_bodies(receiver: Receiver) -> list[dict[str, Any]]:
    """The burst, the every-second cues and the cues due while the server is down."""
    worker = {"transport": "worker", "payload": {"task": "crash"}}
    hook = {"callback": {"url": receiver.url()}, "retry": QUICK_RETRY, "payload": {"x": 1}}
    burst, down = at(LEAD), at(LEAD + 4)
    bodies: list[dict[str, Any]] = [
        {"name": f"burst-{n:03d}", "schedule": {"type": "once", "at": burst}, **worker}
        for n in range(BURST_WORKER)
    ]
    bodies += [
        {"name": f"burst-hook-{n:03d}", "schedule": {"type": "once", "at": burst}, **hook}
        for n in range(BURST_WEBHOOK)
    ]
    every_second = {"type": "interval", "interval_seconds": 1}
    bodies += [
        {"name": f"tick-{p}", "schedule": every_second, "misfire_policy": p, **worker}
        for p in POLICIES
    ]
    bodies.append(
        {"name": "tick-hook", "schedule": every_second, "misfire_policy": "fire_all", **hook}
    )
    bodies += [
        {"name": f"down-{p}", "schedule": {"type": "once", "at": down}, "misfire_policy": p,
         **worker}
        for p in POLICIES
    ]  # fmt: skip
    bodies.append({"name": "down-hook", "schedule": {"type": "once", "at": down}, **hook})
    return bodies


async def test_kill_9_mid_burst_and_restart_loses_nothing_and_fires_nothing_twice(
    database_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    env = node_env(lease_seconds=LEASE, misfire_grace_seconds=GRACE)
    ledger = Ledger()
    stop = asyncio.Event()
    async with Receiver(delay=1.5) as receiver, cluster(database_url, tmp_path, **env) as nodes:
        node = nodes[0]
        key = await register(node.base)
        creation_began = time.monotonic()
        created = await create_cues([node.base], key, cue_bodies(receiver), ledger)
        creation = time.monotonic() - creation_began
        assert creation < LEAD - 2, f"cue creation took {creation:.1f} s: too slow to test"
        by_name = {cue["name"]: cue for cue in created}
        burst_due = datetime.fromisoformat(by_name["burst-000"]["schedule"]["at"])
        workers = [Worker(f"worker-{k}", [node.base], key, ledger, work_seconds=0.1)
                   for k in range(4)]  # fmt: skip
        running = [asyncio.create_task(w.run(stop)) for w in workers]

        async def burst_due_now() -> bool:
            return datetime.now(UTC) >= burst_due

        async def mid_burst() -> bool:
            late = datetime.now(UTC) > burst_due + timedelta(seconds=3)
            holding = sum(len(w.holding) for w in workers)
            return (len(ledger.outcomes) >= before_burst + 15 and holding >= 2) or late

        await wait_until(burst_due_now, LEAD + 30, "the burst", pause=0.05)
        before_burst = len(ledger.outcomes)
        await wait_until(mid_burst, 30, "the middle of the burst", pause=0.05)
        in_flight_hooks = receiver.in_flight
        held = sum(len(w.holding) for w in workers)
        killed_at = datetime.now(UTC)
        late_kill = f"{len(ledger.outcomes) - before_burst} outcomes into the burst"
        node.kill()
        await asyncio.sleep(DOWNTIME)  # down: workers see refused connections and retry
        restarted_at = datetime.now(UTC)
        await node.start()

        async def drained(ids: set[str] | None = None) -> bool:
            rows = await stored_executions(database_url)
            return all(r["status"] in TERMINAL for r in rows if ids is None or r["cue_id"] in ids)

        one_time = {c["id"] for c in created if c["schedule"]["type"] == "once"}
        await wait_until(lambda: drained(one_time), 90, "every one-time execution terminal")
        ticking = [c["id"] for c in created if c["schedule"]["type"] == "interval"]
        await pause_cues(node.base, key, ticking)
        await wait_until(drained, 60, "every execution terminal")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 30)
        rows = await stored_executions(database_url)
        stored = {cue["id"] for cue in await stored_cues(database_url)}
        received = [r.headers["x-cueapi-execution-id"] for r in receiver.requests]

    # nothing fires twice; everything ends
    assert duplicate_fire_keys(rows) == []
    assert {r["status"] for r in rows} <= TERMINAL
    # nothing acknowledged is lost
    assert set(ledger.created) <= stored
    by_id = {r["id"]: r for r in rows}
    for execution_id, told in ledger.outcomes.items():
        assert len(told) == 1, f"two outcomes acknowledged for {execution_id}: {told}"
        assert by_id[execution_id]["outcome_recorded_at"] is not None
        assert by_id[execution_id]["outcome_result"] == told[0]
    assert ledger.server_errors == 0, ledger.statuses
    assert set(ledger.refused) <= {"claim_failed", "lease_lost", "outcome_already_recorded"}
    # every worker execution of the burst ran once and succeeded
    burst = [r for r in rows if r["cue_name"].startswith("burst-")]
    assert len(burst) == BURST_WORKER + BURST_WEBHOOK
    assert {r["status"] for r in burst} == {"success"}
    # webhooks: at least once
    hooks = [r for r in rows if r["transport"] == "webhook"]
    assert {r["status"] for r in hooks} == {"success"}
    assert {r["id"] for r in hooks} <= set(received)
    redelivered = len(received) - len(set(received))

    # misfire policies over the downtime
    # ticks due after the kill (with a margin for the instant it took) and before the last tick
    # the restarted server could have reached
    down_window = (killed_at + timedelta(seconds=0.5), restarted_at - timedelta(seconds=1))

    def of(name: str) -> list[dict[str, Any]]:
        return sorted((r for r in rows if r["cue_name"] == name), key=lambda r: r["scheduled_for"])

    def in_window(name: str) -> list[dict[str, Any]]:
        return [r for r in of(name) if down_window[0] < r["scheduled_for"] < down_window[1]]

    assert (down_window[1] - down_window[0]).total_seconds() >= DOWNTIME - 2.5
    assert in_window("tick-fire_once") == [], "fire_once replayed ticks missed while down"
    folded = [r for r in of("tick-fire_once") if r["scheduled_for"] >= down_window[1]]
    assert folded and folded[0]["created_at"] >= restarted_at
    assert in_window("tick-skip") == []
    skipped = [r for r in of("tick-skip") if r["status"] == "missed" and
               r["created_at"] >= restarted_at]  # fmt: skip
    assert skipped, "skip recorded no missed execution for the downtime"
    assert int(skipped[0]["error_message"].split()[1]) >= DOWNTIME - 3
    for name in ("tick-fire_all", "tick-hook"):
        assert grid_gaps(rows, by_name[name]["id"]) == [], f"{name} lost ticks"
        replayed = in_window(name)
        assert len(replayed) >= DOWNTIME - 3
        assert all(r["created_at"] >= restarted_at for r in replayed)
    for name, status in (("down-fire_once", "success"), ("down-fire_all", "success"),
                         ("down-skip", "missed"), ("down-hook", "success")):  # fmt: skip
        (run,) = of(name)
        assert run["status"] == status and run["created_at"] >= restarted_at
    cue_status = {c["name"]: c["status"] for c in await stored_cues(database_url)}
    assert cue_status["down-skip"] == "failed"
    assert cue_status["down-fire_once"] == cue_status["down-fire_all"] == "completed"

    print(
        f"\ncrash[{database_url.split(':')[0]}]: {len(rows)} executions, "
        f"{sum(ledger.statuses.values())} requests, 0 5xx, {ledger.connection_errors} refused "
        f"connections while down; at the kill {held} claims held, {in_flight_hooks} webhooks in "
        f"flight ({late_kill}); 0 duplicate fire keys, 0 acknowledged outcomes lost "
        f"({len(ledger.outcomes)} acknowledged, {ledger.refused['lease_lost']} late reports "
        f"refused lease_lost, {ledger.refused['outcome_already_recorded']} already recorded); "
        f"{len(received)} webhook requests for {len(set(received))} executions "
        f"({redelivered} redelivered); cues created in {creation:.1f} s; "
        f"{time.monotonic() - started:.1f} s"
    )
