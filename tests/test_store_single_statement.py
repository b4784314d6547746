"""Single-statement units of work (``store.tx(single_statement=True)``): PostgreSQL runs them
without a transaction, saving the ``BEGIN`` and ``COMMIT`` round trips of the worker protocol's
hot paths (the claimable list, a claim); SQLite keeps its transaction (its write lock is what
keeps writers apart)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from cueflow.authentication import Principal
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from tests.claims_support import new_user, one_time_cue


async def _driver_in_transaction(tx: Any) -> bool | None:
    """Whether the PostgreSQL driver connection under ``tx`` is inside a transaction (``None``
    on another store)."""
    conn = tx.conn._conn
    if not hasattr(conn, "get_raw_connection"):
        return None
    raw = await conn.get_raw_connection()
    return bool(raw.driver_connection.is_in_transaction())


async def test_a_single_statement_unit_runs_without_a_transaction_on_postgresql(engine: Engine):
    async with engine.store.tx(single_statement=True) as tx:
        assert (await tx.conn.execute(text("SELECT 1"))).scalar_one() == 1
        in_transaction = await _driver_in_transaction(tx)
        atomic = tx.atomic
    if engine.store.name == "postgresql":
        assert (atomic, in_transaction) == (False, False)
    else:
        assert atomic is True


async def test_an_ordinary_unit_of_work_is_one_transaction(engine: Engine):
    async with engine.store.tx() as tx:
        await tx.conn.execute(text("SELECT 1"))
        in_transaction = await _driver_in_transaction(tx)
        assert tx.atomic is True
    assert in_transaction in (True, None)


async def _outcome_statements(
    engine: Engine, me: Principal, execution_id: str, report: dict[str, Any], worker_id: str
) -> tuple[Any, list[bool | None]]:
    """The answer (or error) of a worker's outcome, and for each statement it ran whether the
    PostgreSQL driver was inside a transaction then (``None`` on another store)."""
    connector_engine = engine.store.connector.engine  # type: ignore[attr-defined]
    sync = getattr(connector_engine, "sync_engine", connector_engine)
    seen: list[bool | None] = []

    def record(conn: Any, *_: Any) -> None:
        driver = conn.connection.driver_connection
        in_transaction = getattr(driver, "is_in_transaction", None)
        seen.append(None if in_transaction is None else bool(in_transaction()))

    event.listen(sync, "before_cursor_execute", record)
    try:
        answer: Any = await engine.report_outcome(me, execution_id, report, worker_id)
    except CueflowError as error:
        answer = error
    finally:
        event.remove(sync, "before_cursor_execute", record)
    return answer, seen


async def _claimed_one_time_run(engine: Engine, clock: FakeClock) -> tuple[Principal, Any, Any]:
    """A new account's one-time worker cue, fired and claimed by ``w1``: the account, the cue
    and the claim's answer."""
    me = await new_user(engine)
    cue = await one_time_cue(engine, me, "job", delay=1)
    clock.advance(5)
    assert await engine.fire_due() == 1
    return me, cue, await engine.claim(me, "w1")


@pytest.mark.parametrize(("success", "cue_status"), [(True, "completed"), (False, "failed")])
async def test_a_worker_outcome_is_two_statements_without_a_transaction_on_postgresql(
    engine: Engine, clock: FakeClock, success: bool, cue_status: str
):
    """A worker's outcome reads its execution, then writes the outcome and counts the run on
    its cue in one statement (PostgreSQL: no ``BEGIN`` or ``COMMIT`` either, where it took five
    round trips); the one-time cue ends with it, on every store."""
    me, cue, claimed = await _claimed_one_time_run(engine, clock)
    answer, statements = await _outcome_statements(
        engine, me, claimed["execution_id"], {"success": success}, "w1"
    )
    assert answer["outcome_recorded"] is True
    if engine.store.name == "postgresql":
        # a failure also reads the cue's latest runs after the write (its alert rule)
        assert statements == [False] * (2 if success else 3)
    ended = await engine.get_cue(me, cue.id)
    assert (ended.status, ended.run_count) == (cue_status, 1)
    execution = await engine.get_execution(me, claimed["execution_id"])
    assert execution.status == ("success" if success else "failed")


async def test_an_outcome_the_gate_refuses_counts_no_run(engine: Engine, clock: FakeClock):
    """A report from a worker that does not hold the claim writes nothing: neither the
    outcome nor its cue's run (the two are one write)."""
    me, cue, claimed = await _claimed_one_time_run(engine, clock)
    answer, _ = await _outcome_statements(
        engine, me, claimed["execution_id"], {"success": True}, "w2"
    )
    assert isinstance(answer, CueflowError) and answer.code == "lease_lost"
    untouched = await engine.get_cue(me, cue.id)
    assert (untouched.status, untouched.run_count) == ("active", 0)
    execution = await engine.get_execution(me, claimed["execution_id"])
    assert (execution.status, execution.outcome_recorded_at) == ("delivering", None)


async def test_a_recurring_cue_counts_the_run_and_stays_active(engine: Engine, clock: FakeClock):
    me = await new_user(engine)
    cue, _ = await engine.create_cue(
        me,
        {
            "name": "every-minute",
            "transport": "worker",
            "schedule": {"type": "interval", "interval_seconds": 60},
            "payload": {},
        },
    )
    clock.advance(61)
    assert await engine.fire_due() == 1
    claimed = await engine.claim(me, "w1")
    answer, _ = await _outcome_statements(
        engine, me, claimed["execution_id"], {"success": True}, "w1"
    )
    assert answer["outcome_recorded"] is True
    after = await engine.get_cue(me, cue.id)
    assert (after.status, after.run_count) == ("active", 1)
