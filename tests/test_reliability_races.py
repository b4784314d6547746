"""Racing workers at scale: 16 concurrent workers over 10,000 executions, on each store.

The executions come the way production makes them: 100 interval cues (every second, misfire
policy ``fire_all``) whose 100 runs each fell due while the clock moved on, fired in bulk by the
scheduler. On PostgreSQL the workers are split across two engines on one database (two nodes).
Twelve workers claim by id from the claimable list, four claim the next one.

Phase one: every worker claims (half claim-next, half claim-by-id from the claimable list) and
reports; one claim in eight stalls (its worker never reports), and every 50th report is sent
twice. Phase two: the clock passes the lease, the sweeper returns the stalled claims to the queue,
new workers claim and report them, and only then do the stalled workers report, late. The
ledger of every answer proves: no execution was claimed twice while a lease held, no execution
has two accepted outcomes, every late report got 409 ``lease_lost``, and the new holder's result
is the one stored.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from sqlalchemy import func, select

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import Conflict
from cueflow.sql.tables import executions
from tests.conftest import make_settings

CUES = 100
RUNS_PER_CUE = 100
EXECUTIONS = CUES * RUNS_PER_CUE
WORKERS = 16
LEASE = 900
STALL_EVERY = 8
REPORT_TWICE_EVERY = 50


@dataclass
class Ledger:
    """Every answer the workers got."""

    claims: list[tuple[str, str]] = field(default_factory=list)
    """(worker, execution id) of every claim that succeeded."""
    outcomes: list[tuple[str, str]] = field(default_factory=list)
    """(worker, execution id) of every outcome report that was accepted."""
    stalled: list[tuple[str, str]] = field(default_factory=list)
    """(worker, execution id) of claims whose worker never reported in time."""
    refused: Counter[str] = field(default_factory=Counter)
    """Conflict codes of refused outcome reports."""
    lost_races: int = 0


async def engines_for(database_url: str, clock: FakeClock, stack: AsyncExitStack) -> list[Engine]:
    """One engine on SQLite (one process owns the file), two nodes on PostgreSQL."""
    nodes = 1
    if database_url.startswith("postgres"):
        nodes = 2
        await without_commit_flush(database_url)
    opened = []
    for _ in range(nodes):
        engine = Engine(make_settings(database_url, misfire_grace_seconds=0), clock=clock)
        await engine.open()
        stack.push_async_callback(engine.close)
        opened.append(engine)
    return opened


async def without_commit_flush(database_url: str) -> None:
    """Let this test database skip the WAL flush at commit: the races are about isolation, not
    durability, and the flush would make the run wait on the disk of a shared CI machine."""
    import asyncpg

    name = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await conn.close()


async def ten_thousand_due_executions(engine: Engine, clock: FakeClock) -> Principal:
    """100 interval cues, each with 100 runs due now; fired; returns their owner."""
    user = await engine.principal((await engine.register("racer@example.com"))["api_key"])
    for i in range(CUES):
        await engine.create_cue(
            user,
            {
                "name": f"every-second-{i:03d}",
                "transport": "worker",
                "schedule": {"type": "interval", "interval_seconds": 1},
                "misfire_policy": "fire_all",
                "payload": {"task": "race"},
            },
        )
    clock.advance(RUNS_PER_CUE)  # the first run was due 1 s after creation: 100 runs due now
    assert await engine.fire_due() == EXECUTIONS
    return user


async def worker(
    engine: Engine,
    user: Principal,
    name: str,
    ledger: Ledger,
    rng: random.Random,
    stall: int,
    by_id: bool,
) -> None:
    """Claim until nothing is left; report each claim, except one in ``stall`` that is only
    held (every claim when ``stall`` is 1; none when 0)."""
    listed: list[str] = []  # a by-id worker claims the items of one list in random order
    while True:
        if by_id:
            if not listed:
                listed = [run.id for run in await engine.claimable(user)]
                rng.shuffle(listed)
                if not listed:
                    return
            target: str | None = listed.pop()
        else:
            target = None
        try:
            claimed = (await engine.claim(user, name, target))["execution_id"]
        except Conflict as exc:
            assert exc.code == "claim_failed"
            if target is None:
                return
            ledger.lost_races += 1
            listed = []  # others are on this list too: look again
            continue
        ledger.claims.append((name, claimed))
        if stall and rng.randrange(stall) == 0:
            ledger.stalled.append((name, claimed))
            continue
        await report(engine, user, name, claimed, ledger)
        if rng.randrange(REPORT_TWICE_EVERY) == 0:
            await report(engine, user, name, claimed, ledger)


async def report(
    engine: Engine, user: Principal, name: str, execution_id: str, ledger: Ledger
) -> None:
    """Report success with the worker's name as the result; record the answer."""
    try:
        await engine.report_outcome(
            user, execution_id, {"success": True, "result": name}, worker_id=name
        )
    except Conflict as exc:
        ledger.refused[exc.code] += 1
        return
    ledger.outcomes.append((name, execution_id))


async def run_workers(
    engines: list[Engine], user: Principal, prefix: str, ledger: Ledger, stall: int
) -> None:
    """16 workers at once, spread over the engines."""
    rng = random.Random(f"{prefix}-{len(ledger.claims)}")
    await asyncio.gather(
        *(
            worker(engines[k % len(engines)], user, f"{prefix}-{k}", ledger, rng, stall, k % 4 > 0)
            for k in range(WORKERS)
        )
    )


async def stored(engine: Engine) -> AsyncIterator[tuple[str, str, int, str | None]]:
    """(id, status, attempts, outcome result) of every stored execution."""
    stmt = select(
        executions.c.id, executions.c.status, executions.c.attempts, executions.c.outcome_result
    )
    async with engine.store.tx() as tx:
        rows = (await tx.conn.execute(stmt)).all()
    for row in rows:
        yield row[0], row[1], row[2], row[3]


async def test_16_workers_over_10000_executions_claim_and_report_each_exactly_once(
    database_url: str, clock: FakeClock
) -> None:
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        engines = await engines_for(database_url, clock, stack)
        user = await ten_thousand_due_executions(engines[0], clock)
        fire_keys = select(executions.c.cue_id, executions.c.scheduled_for).distinct().subquery()
        async with engines[0].store.tx() as tx:
            total = (await tx.conn.execute(select(func.count(executions.c.id)))).scalar_one()
            keys = (await tx.conn.execute(select(func.count()).select_from(fire_keys))).scalar_one()
        assert total == keys == EXECUTIONS

        first = Ledger()
        await run_workers(engines, user, "first", first, stall=STALL_EVERY)
        claimed_once = Counter(eid for _, eid in first.claims)
        assert len(claimed_once) == EXECUTIONS, "some execution was never claimed"
        assert max(claimed_once.values()) == 1, "an execution was claimed twice under one lease"
        assert first.stalled, "the scenario needs stalled claims"

        clock.advance(LEASE + 1)
        swept = 0
        while changed := await engines[-1].sweep():
            swept += changed
        assert swept == len(first.stalled)

        second = Ledger()
        await run_workers(engines, user, "second", second, stall=1)  # claim, hold, no report
        stalled_ids = {eid for _, eid in first.stalled}
        assert Counter(eid for _, eid in second.claims) == Counter(stalled_ids)

        late = Ledger()  # the first holders wake up while the new holders work
        for name, execution_id in first.stalled:
            await report(engines[0], user, name, execution_id, late)
        assert late.outcomes == []
        assert late.refused == Counter({"lease_lost": len(first.stalled)})
        for name, execution_id in second.stalled:
            await report(engines[-1], user, name, execution_id, second)
        for name, execution_id in first.stalled:  # and once more, after the results are in
            await report(engines[0], user, name, execution_id, late)
        assert late.outcomes == []
        assert late.refused["outcome_already_recorded"] == len(first.stalled)

        accepted = Counter(eid for _, eid in first.outcomes + second.outcomes)
        assert len(accepted) == EXECUTIONS
        assert max(accepted.values()) == 1, "an execution has two accepted outcomes"
        duplicates_sent = first.refused["outcome_already_recorded"]
        assert duplicates_sent > 0
        assert set(first.refused) == {"outcome_already_recorded"}

        holder = {eid: name for name, eid in first.outcomes + second.outcomes}
        rows = [row async for row in stored(engines[0])]
        assert len(rows) == EXECUTIONS
        for execution_id, status, attempts, result in rows:
            assert status == "success"
            assert result == holder[execution_id], "a late report overwrote the holder's result"
            assert attempts == (2 if execution_id in stalled_ids else 1)
    print(
        f"\nraces[{database_url.split(':')[0]}]: {EXECUTIONS} executions, {WORKERS} workers, "
        f"{len(first.claims) + len(second.claims)} claims ({first.lost_races + second.lost_races}"
        f" lost races), {len(stalled_ids)} stalled and re-claimed, {duplicates_sent} duplicate "
        f"reports refused, 0 double claims, 0 double outcomes, {time.monotonic() - started:.1f} s"
    )
