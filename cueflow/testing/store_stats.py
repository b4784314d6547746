"""Store conformance: the dashboard's reads (cue name search, the overview's aggregates and
the live stream's changes)."""

from __future__ import annotations

import asyncio

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.testing.harness import fire, new_user, one_time_cue
from cueflow.testing.store_fixtures import StoreFixtures


async def _never_gone() -> bool:
    return False


class StoreStatsTests(StoreFixtures):
    """Name search, the overview's figures and the change stream, scoped to their user."""

    async def test_cues_are_searched_by_name_ignoring_case_and_wildcards(
        self, engine: Engine
    ) -> None:
        user = await new_user(engine)
        stranger = await new_user(engine)
        report = await one_time_cue(engine, user, name="Nightly-Report")
        await one_time_cue(engine, user, name="sync")
        literal = await one_time_cue(engine, user, name="50%_off")
        await one_time_cue(engine, stranger, name="report-of-another")
        rows, total = await engine.list_cues(user, name="REPORT")
        assert ([row.id for row in rows], total) == ([report.id], 1)
        rows, total = await engine.list_cues(user, name="%_")
        assert ([row.id for row in rows], total) == ([literal.id], 1)

    async def test_the_overview_counts_the_users_recent_executions_and_queue(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        stranger = await new_user(engine)
        await one_time_cue(engine, user, delay=30)
        await one_time_cue(engine, user, delay=30)
        await one_time_cue(engine, stranger, delay=30)
        assert await fire(engine, clock, 30) == 3
        overview = await engine.stats_overview(user, "1h")
        assert overview["executions"]["totals"]["pending"] == 2
        assert sum(overview["executions"]["per_minute"]["pending"]) == 2
        assert overview["queue"]["by_status"]["pending"] == 2
        assert overview["queue"]["oldest_scheduled_for"] is not None
        assert overview["lag"]["count"] == 0  # nothing started yet
        clock.advance(2 * 3600)
        later = await engine.stats_overview(user, "1h")
        assert later["executions"]["totals"]["pending"] == 0  # created before the window
        assert later["queue"]["total"] == 2  # but still queued
        assert (await engine.stats_overview(user, "24h"))["executions"]["totals"]["pending"] == 2

    async def test_the_change_stream_sends_the_users_new_executions(
        self, engine: Engine, clock: FakeClock
    ) -> None:
        user = await new_user(engine)
        stranger = await new_user(engine)
        cue = await one_time_cue(engine, user, delay=30)
        await one_time_cue(engine, stranger, delay=30)
        stream = engine.change_stream(user, _never_gone)
        try:
            assert b"event: hello" in await anext(stream)
            await fire(engine, clock, 30)
            async with asyncio.timeout(10):
                chunk = await anext(stream)
                while b"event: executions" not in chunk:
                    chunk = await anext(stream)
            assert cue.id.encode() in chunk
            assert chunk.count(b'"cue_id"') == 1
        finally:
            await stream.aclose()
