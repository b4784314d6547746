"""The worker path's statements on SQLite find their rows through an index: no claim, listing or
outcome reads the whole of ``executions`` or ``cues``, nor every execution of one status.

Two such plans made the worker path's cost grow with the table: ``id IN (...) = 1`` (an IN
list typed as a boolean, rendered so on a database without a native boolean) made every
outcome scan both tables, and a batch claim's keyed update was served by an index on
``status`` alone (read every pending execution to claim ten). This asks SQLite for the plan of
every statement the path runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.claims_support import new_user, one_time_cue, statements_run
from tests.conftest import fresh_sqlite_database, make_settings

FULL_SCANS = ("SCAN executions", "SCAN cues")
WHOLE_STATUS = re.compile(r"SEARCH executions USING (COVERING )?INDEX \w+ \(status=\?\)")
"""A step that reads every execution of one status (an index used for ``status`` alone)."""


def _full_scans(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """The statements among ``statements`` whose plan reads a whole big table, or every
    execution of a status."""
    raw = engine.store.connector.engine.raw_connection()  # type: ignore[attr-defined]
    found = []
    try:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH")):
                continue
            cursor = raw.cursor()
            cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
            plan = [str(row[3]) for row in cursor.fetchall()]
            if any(step.startswith(FULL_SCANS) or WHOLE_STATUS.match(step) for step in plan):
                found.append(f"{sql[:300]}\n  plan: {plan}")
    finally:
        raw.close()
    return found


async def test_claims_listings_and_outcomes_read_no_whole_table(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = Engine(make_settings(await fresh_sqlite_database(tmp_path)), clock=clock)
    await engine.open()
    try:
        me = await new_user(engine)
        for n in range(6):
            await one_time_cue(engine, me, f"job-{n}", delay=1)
        clock.advance(5)
        assert await engine.fire_due() == 6
        claimed: dict[str, Any] = {}

        async def claim_and_report() -> None:
            await engine.claimable(me)
            claimed["one"] = await engine.claim(me, "w1")
            await engine.report_outcome(me, claimed["one"]["execution_id"], {"success": True})
            batch = await engine.claim_batch(me, "w1", limit=3)
            ids = [run.id for run in batch.claimed]
            claimed["batch"] = ids
            await engine.report_outcomes(me, [(eid, {"success": False}) for eid in ids], "w1")

        statements = await statements_run(engine, claim_and_report)
        assert len(claimed["batch"]) == 3
        assert len(statements) >= 6
        assert _full_scans(engine, statements) == []
    finally:
        await engine.close()
