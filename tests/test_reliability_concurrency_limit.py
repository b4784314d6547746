"""A shared concurrency limit holds under racing claimers, across nodes: real ``cueflow serve``
processes (two on one PostgreSQL database; one on SQLite), eight claimers (claim-next, batch
claims and claims by id from the claimable list, spread over the nodes) racing over four worker
cues that share the key ``provider`` with a limit of 2, while the nodes' dispatchers deliver two
webhook cues under the same key, beside a worker cue with no limit.

* A sampler reads the database every few milliseconds while they run: never more than 2
  executions of the key (claimed by a worker or being delivered) are ``delivering`` at once;
  the webhook receiver never has more than 2 requests in flight.
* The claimers' own record agrees: never more than 2 claims of the key held at once (each
  interval from the claim's answer to the outcome's sending lies inside the server's).
* Work the limit holds back is not lost and does not block other work: every execution of the
  key and of the free cue ends ``success`` within a bounded time; no answer is a 5xx, and the
  refusals are 409s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.cluster_clients import register, wait_until
from tests.limits_support import (
    PROTOCOLS,
    Claimer,
    Ledger,
    Sampler,
    create_and_fire,
    most_overlapping,
    nodes_on,
    statuses,
)
from tests.webhook_support import Receiver

LIMIT = 2
KEY = "provider"
CUES = 4
RUNS_PER_CUE = 12
FREE_RUNS = 8
HOOKS = 2
RUNS_PER_HOOK = 6
CLAIMERS = 8
DRAIN_SECONDS = 90


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
async def test_a_shared_concurrency_limit_holds_under_racing_claimers(
    store: str, tmp_path: Path
) -> None:
    ledger = Ledger()
    stop = asyncio.Event()
    async with Receiver(delay=0.03) as receiver, nodes_on(store, tmp_path) as (url, nodes):
        bases = [node.base for node in nodes]
        key = await register(bases[0])
        limited: list[str] = []
        for n in range(CUES):
            body = {"name": f"limited-{n}", "concurrency": {"limit": LIMIT, "key": KEY}}
            _, fired = await create_and_fire(bases[n % len(bases)], key, body, RUNS_PER_CUE)
            limited.extend(fired)
        _, free = await create_and_fire(bases[-1], key, {"name": "free"}, FREE_RUNS)
        key_of = {eid: KEY for eid in limited}
        hooks: list[str] = []
        for n in range(HOOKS):
            body = {
                "name": f"hook-{n}",
                "transport": "webhook",
                "callback": {"url": receiver.url()},
                "concurrency": {"limit": LIMIT, "key": KEY},
                # a slow attempt on this loaded machine is retried at once, not in a minute
                "retry": {"max_attempts": 10, "backoff_minutes": [0]},
            }
            _, fired = await create_and_fire(bases[n % len(bases)], key, body, RUNS_PER_HOOK)
            hooks.extend(fired)
        sampler = Sampler(url, f"key:{KEY}", LIMIT)
        claimers = [
            Claimer(
                f"claimer-{k}",
                bases[k % len(bases)],
                key,
                PROTOCOLS[k % len(PROTOCOLS)],
                ledger,
                key_of,
            )
            for k in range(CLAIMERS)
        ]
        began = time.monotonic()
        tasks = [asyncio.create_task(c.run(stop)) for c in claimers]
        sampler.start()

        async def all_done() -> bool:
            every = limited + free + hooks
            return (await statuses(url, every))["success"] == len(every)

        try:
            await wait_until(all_done, DRAIN_SECONDS, "every execution succeeded", pause=0.2)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            await sampler.stop()
        drained = time.monotonic() - began
        logged = [line for node in nodes for line in node.errors_logged()]

    keyed = [(start, end) for eid, start, end in ledger.held if eid in key_of]
    assert sampler.samples > 100, "the sampler barely ran: nothing was measured"
    assert sampler.over == [], f"more than {LIMIT} delivering at once: {sampler.over[:10]}"
    assert sampler.most == LIMIT, "the limit was never reached: the test did not race"
    assert receiver.most_in_flight <= LIMIT
    assert {r.headers["x-cueapi-execution-id"] for r in receiver.requests} == set(hooks)
    assert ledger.most_holding[KEY] <= LIMIT
    assert most_overlapping(keyed) <= LIMIT
    assert len(keyed) == len(limited)
    assert not any(code.startswith("5") for code in ledger.refused), ledger.refused
    assert all(code.split()[0] in ("409", "batch") for code in ledger.refused), ledger.refused
    assert logged == []
    print(
        f"\nconcurrency[{store}, {len(bases)} node(s)]: {len(limited)} executions under key "
        f"{KEY!r} (limit {LIMIT}) over {CUES} worker cues, {len(hooks)} over {HOOKS} webhook cues, "
        f"{len(free)} free; {CLAIMERS} claimers "
        f"({', '.join(PROTOCOLS)}); {sampler.samples} database samples in "
        f"{sampler.seconds:.1f} s, most delivering at once "
        f"{sampler.most}; most held at once by the claimers {ledger.most_holding[KEY]}; "
        f"refusals {dict(ledger.refused)}; all succeeded in {drained:.1f} s"
    )
