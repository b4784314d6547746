"""A shared rate limit holds under racing claimers, across nodes: real ``cueflow serve``
processes (two on one PostgreSQL database; one on SQLite), three cues sharing the key ``api``
with a rate limit of 10 starts per second and far more executions due than that, beside a cue
with no limit; six claimers (claim-next, batch claims, claims by id) work for a few seconds of
real time.

* The starts the database recorded (each execution's ``started_at``, set by its first claim)
  never put more than 10 in any one-second window ``[t, t + 1 s)``.
* The claimers' own count per second is only reported, not checked: answers come back after
  varying delays, so their times can bunch more starts into one second than the server made.
* Work progresses: the key's executions start at about the limit (at least 10 in the run), and
  the free cue's executions are not held behind them.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cluster_clients import register, wait_until
from tests.limits_support import (
    PROTOCOLS,
    Claimer,
    Ledger,
    create_and_fire,
    most_in_window,
    nodes_on,
    start_times,
    statuses,
)

LIMIT = 10
PERIOD = 1
KEY = "api"
CUES = 3
RUNS_PER_CUE = 30
FREE_RUNS = 6
CLAIMERS = 6
RUN_SECONDS = 3.5


def in_second(starts: list[datetime], first: datetime | None) -> list[str]:
    """The starts (as times of day) in the window of :data:`PERIOD` from ``first``."""
    if first is None:
        return []
    end = first + timedelta(seconds=PERIOD)
    return [t.strftime("%H:%M:%S.%f") for t in sorted(starts) if first <= t < end]


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
async def test_a_shared_rate_limit_holds_under_racing_claimers(store: str, tmp_path: Path) -> None:
    ledger = Ledger()
    stop = asyncio.Event()
    async with nodes_on(store, tmp_path) as (url, nodes):
        bases = [node.base for node in nodes]
        key = await register(bases[0])
        limited: list[str] = []
        for n in range(CUES):
            body = {
                "name": f"rated-{n}",
                "rate_limit": {"limit": LIMIT, "period_seconds": PERIOD, "key": KEY},
            }
            _, fired = await create_and_fire(bases[n % len(bases)], key, body, RUNS_PER_CUE)
            limited.extend(fired)
        _, free = await create_and_fire(bases[-1], key, {"name": "free"}, FREE_RUNS)
        key_of = {eid: KEY for eid in limited}
        claimers = [
            Claimer(
                f"claimer-{k}",
                bases[k % len(bases)],
                key,
                PROTOCOLS[k % len(PROTOCOLS)],
                ledger,
                key_of,
                hold=(0.0, 0.01),
            )
            for k in range(CLAIMERS)
        ]
        began = time.monotonic()
        tasks = [asyncio.create_task(c.run(stop)) for c in claimers]

        async def free_done() -> bool:
            return (await statuses(url, free))["success"] == len(free)

        try:
            await wait_until(free_done, 30, "the free cue's executions succeeded", pause=0.1)
            free_seconds = time.monotonic() - began
            await asyncio.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - began)))
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
        ran = time.monotonic() - began
        starts = await start_times(url, limited)
        logged = [line for node in nodes for line in node.errors_logged()]

    most, where = most_in_window(starts, PERIOD)
    seen = [start for eid, start, _ in ledger.held if eid in key_of]
    client_most = max(
        (sum(1 for t in seen if s <= t < s + PERIOD) for s in seen),
        default=0,
    )
    assert most <= LIMIT, f"{most} starts in the second from {where}: {in_second(starts, where)}"
    assert len(starts) >= LIMIT, f"only {len(starts)} starts in {ran:.1f} s"
    # Far fewer than were due: the limit held work back rather than letting it all through.
    assert len(starts) <= LIMIT * (ran / PERIOD + 1)
    assert not any(code.startswith("5") for code in ledger.refused), ledger.refused
    assert all(code.split()[0] in ("409", "batch") for code in ledger.refused), ledger.refused
    assert logged == []
    print(
        f"\nrate limit[{store}, {len(bases)} node(s)]: {len(limited)} executions under key "
        f"{KEY!r} ({LIMIT} per {PERIOD} s) over {CUES} cues, {len(free)} free (all done in "
        f"{free_seconds:.2f} s); {CLAIMERS} claimers for {ran:.1f} s: {len(starts)} starts, "
        f"most in one second {most} (database), {client_most} (as the claimers saw the answers); "
        f"refusals {dict(ledger.refused)}"
    )
