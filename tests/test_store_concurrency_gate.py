"""PostgreSQL's concurrency gate (migration 0014): the store itself refuses a move into
``delivering`` past a concurrency limit, whoever makes it, across transactions; ending a run
takes no lock a claim holds. (SQLite runs one writer at a time and admits in the engine: the
limits tests run on both stores.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from cueflow import claims
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.schemas import OutcomeReport
from tests.agents_support import due_executions, new_user
from tests.conftest import drop_pg_database, fresh_pg_database, make_settings, pg_available

LIMIT = {"concurrency": {"limit": 1, "key": "gate"}}


@pytest.fixture
async def pg_engine(clock: FakeClock) -> AsyncIterator[Engine]:
    """An opened engine on a fresh PostgreSQL database."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = await fresh_pg_database()
    engine = Engine(make_settings(url), clock=clock)
    await engine.open()
    try:
        yield engine
    finally:
        await engine.close()
        await drop_pg_database(url)


def _values(engine: Engine, worker: str) -> dict[str, object]:
    return claims._claim_values(engine.services, worker, engine.clock.now())


async def test_a_move_past_the_limit_is_refused_by_the_store_without_admission(
    pg_engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(pg_engine)
    first, second = await due_executions(pg_engine, clock, user, [{"i": 1}, {"i": 2}], **LIMIT)
    async with pg_engine.store.tx() as tx:  # no admission: straight to the store
        got = await tx.claim_many([first, second], claims._WORKER_CLAIM, _values(pg_engine, "w"))
    assert [run.id for run in got] in ([first], [second])
    states = {e: (await pg_engine.get_execution(user, e)).status for e in (first, second)}
    assert sorted(states.values()) == ["delivering", "pending"]


async def test_a_claim_waits_for_the_gate_and_then_sees_the_committed_claim(
    pg_engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(pg_engine)
    first, second = await due_executions(pg_engine, clock, user, [{"i": 1}, {"i": 2}], **LIMIT)
    holding = asyncio.Event()
    release = asyncio.Event()

    async def first_claim() -> list[str]:
        async with pg_engine.store.tx() as tx:
            got = await tx.claim_many([first], claims._WORKER_CLAIM, _values(pg_engine, "a"))
            holding.set()
            await release.wait()  # the gate stays locked until this transaction commits
        return [run.id for run in got]

    async def second_claim() -> list[str]:
        await holding.wait()
        async with pg_engine.store.tx() as tx:
            got = await tx.claim_many([second], claims._WORKER_CLAIM, _values(pg_engine, "b"))
        return [run.id for run in got]

    one = asyncio.create_task(first_claim())
    two = asyncio.create_task(second_claim())
    await asyncio.wait_for(holding.wait(), 10)
    done, _ = await asyncio.wait({two}, timeout=0.5)
    assert not done, "the second claim went past the gate the first one holds"
    release.set()
    assert await asyncio.wait_for(one, 10) == [first]
    assert await asyncio.wait_for(two, 10) == []  # the first one's claim, committed, filled it
    await pg_engine.report_outcome(user, first, OutcomeReport(success=True), "a")
    async with pg_engine.store.tx() as tx:
        got = await tx.claim_many([second], claims._WORKER_CLAIM, _values(pg_engine, "b"))
    assert [run.id for run in got] == [second]


async def test_ending_a_run_does_not_wait_for_a_claim_holding_the_gate(
    pg_engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(pg_engine)
    two = {"concurrency": {"limit": 2, "key": "gate"}}
    running, waiting = await due_executions(pg_engine, clock, user, [{"i": 1}, {"i": 2}], **two)
    assert (await pg_engine.claim(user, "a", running))["claimed"] is True
    release = asyncio.Event()
    holding = asyncio.Event()

    async def claim_and_hold() -> None:
        async with pg_engine.store.tx() as tx:
            await tx.claim_many([waiting], claims._WORKER_CLAIM, _values(pg_engine, "b"))
            holding.set()
            await release.wait()

    holder = asyncio.create_task(claim_and_hold())
    await asyncio.wait_for(holding.wait(), 10)
    try:  # the outcome finishes while the claim still holds the key's gate
        await asyncio.wait_for(
            pg_engine.report_outcome(user, running, OutcomeReport(success=True), "a"), 10
        )
    finally:
        release.set()
        await asyncio.wait_for(holder, 10)
    assert (await pg_engine.get_execution(user, running)).status == "success"
    assert (await pg_engine.get_execution(user, waiting)).status == "delivering"
