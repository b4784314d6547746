"""The dispatcher's candidate query on SQLite: each account's first few are read through the
waiting index and the chosen executions are read again by key, so a pass reads neither every
due execution nor ranks them all (a burst of thousands due at once made each pass rank them all,
milliseconds a pass)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cueflow.sql.delivery_candidates import candidates
from cueflow.sql.tables import metadata


class _SingleWriter:
    name = "sqlite"
    skip_locked = False


def _plan(statement: sa.Select[tuple[object, ...]]) -> list[str]:
    """SQLite's query plan of ``statement`` (its details, outermost first)."""
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    sql = str(statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    with engine.connect() as conn:
        return [str(row[3]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]


def _candidates_plan() -> list[str]:
    """SQLite's plan of the dispatcher's candidate statement (webhooks, one account skipped)."""
    statement = candidates(_SingleWriter(), False, True, ("pending", "retry_ready")).params(
        p_transport="webhook",
        p_sources=["pending", "retry_ready"],
        p_now=datetime(2030, 1, 1, tzinfo=UTC),
        p_limit=40,
        p_per_account=10,
        p_skip=["someone"],
    )
    return _plan(statement)


def test_due_deliveries_reads_the_chosen_executions_by_key() -> None:
    plan = _candidates_plan()
    outer = plan[0]
    assert outer.startswith("SEARCH executions USING INDEX sqlite_autoindex_executions_1"), plan


def test_due_deliveries_reads_each_accounts_first_few_without_ranking_every_due_row() -> None:
    plan = _candidates_plan()
    # the accounts one seek each, then each account's first few in the index's order
    assert any("ix_executions_waiting (transport=? AND user_id>?)" in step for step in plan), plan
    assert any("ix_executions_waiting (transport=? AND user_id=?)" in step for step in plan), plan
    assert not any("ix_executions_dispatch" in step for step in plan), plan
    assert not any(step.startswith("SCAN executions") for step in plan), plan
