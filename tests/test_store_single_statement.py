"""Single-statement units of work (``store.tx(single_statement=True)``): PostgreSQL runs them
without a transaction, saving the ``BEGIN`` and ``COMMIT`` round trips of the worker protocol's
hot paths (the claimable list, a claim); SQLite keeps its transaction (its write lock is what
keeps writers apart)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from cueflow.engine import Engine


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
