"""Statements that find a row by its key (a claim by id, a worker's outcome, reading one cue)
use the primary key on PostgreSQL, whatever the planner's statistics say.

On a database whose statistics describe tables far smaller than they are (a new database, or
tables that grew since the last ``ANALYZE``: the normal state during a burst), PostgreSQL served
``id = ANY(:ids) AND user_id = :user`` from an index led by ``user_id`` and read every execution
of the account to write one outcome (0.23 ms grew to 1.5 ms per outcome at 3,000 executions,
O(queue) for each). The owner is a re-check (:func:`cueflow.sql.base.owned_by`); this asks
PostgreSQL for the plan of every statement of those paths with its statistics in that state.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.claims_support import many_due_executions, new_user, statements_run

KEYED_BY_OWNER = (
    "ix_executions_concurrency",
    "ix_executions_user_created",
    "ix_executions_queue",
    "ix_cues_user_listed",
)
"""Indexes led by ``user_id``: a keyed statement served by one reads the whole account (the
concurrency index stays right for what a concurrency key has in flight, looked up with the key)."""


def _owner_wide(plan: str) -> list[str]:
    """The steps of ``plan`` that read an index led by ``user_id`` for the owner alone."""
    lines = plan.splitlines()
    found = []
    for at, line in enumerate(lines):
        if not any(f"using {index} on" in line for index in KEYED_BY_OWNER):
            continue
        condition = next((later for later in lines[at + 1 :] if "Index Cond" in later), "")
        if "concurrency_key" not in condition:
            found.append(f"{line.strip()} / {condition.strip()}")
    return found


async def _plans(engine: Engine, statements: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Each statement's plan (``EXPLAIN``, not run), with ``executions`` and ``cues`` made to
    look never analyzed (a new database: no row count, no column statistics) in the same
    transaction, rolled back: nothing is changed (a test database may have been analyzed by an
    earlier test's data)."""
    plans = []
    async with engine.store.connector.engine.connect() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            text(
                "UPDATE pg_class SET reltuples = -1, relpages = 1"
                " WHERE relname IN ('executions', 'cues')"
            )
        )
        await conn.execute(
            text(
                "DELETE FROM pg_statistic"
                " WHERE starelid IN ('executions'::regclass, 'cues'::regclass)"
            )
        )
        for sql, params in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH")):
                continue
            rows = await conn.exec_driver_sql("EXPLAIN " + sql, params)
            plans.append((sql, "\n".join(str(row[0]) for row in rows)))
        await conn.rollback()
    return plans


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_keyed_statements_use_the_primary_key_whatever_the_statistics(
    engine: Engine, clock: FakeClock
) -> None:
    me = await new_user(engine)
    ids = sorted(await many_due_executions(engine, clock, me, 200))
    cue_id = (await engine.get_execution(me, ids[0])).cue_id

    async def keyed_work() -> None:
        claimed = await engine.claim(me, "w1", ids[0])
        await engine.heartbeat_execution(me, claimed["execution_id"], "w1")
        await engine.report_outcome(me, claimed["execution_id"], {"success": True}, "w1")
        await engine.get_cue(me, cue_id)
        await engine.get_execution(me, ids[1])

    statements = await statements_run(engine, keyed_work)
    assert len(statements) >= 5
    owner_wide = [
        f"{sql[:240]}\n{_owner_wide(plan)}"
        for sql, plan in await _plans(engine, statements)
        if _owner_wide(plan)
    ]
    assert owner_wide == []
