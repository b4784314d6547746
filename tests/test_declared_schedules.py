"""Schedules declared in code (``@engine.cron``, ``@engine.every``, ``@engine.at``) on both
stores: each start stores them idempotently (created, updated when the declaration changed,
left alone without a write when it did not), a cue no code declares any more is left alone or,
opted in, paused; cues made by hand are never touched, and a name they hold is a clear error.

Each "start" is a new engine over the same database (a process started again); time moves on
the fake clock.
"""

from __future__ import annotations

import asyncio
import re
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cueflow import Engine, Retry
from cueflow.clock import FakeClock
from cueflow.engine.declared_schedules import interval_seconds
from cueflow.errors import CueflowError
from cueflow.records import Cue
from cueflow.states import CueStatus
from tests.conftest import make_settings
from tests.inprocess_support import fire, only_execution

ROOT = Path(__file__).resolve().parents[1]
OWNER = "app@example.com"
Declare = Callable[[Engine], None]


@asynccontextmanager
async def started(
    database_url: str, clock: FakeClock, declare: Declare, **settings: Any
) -> AsyncIterator[Engine]:
    """An opened engine (no background loops) with ``declare``'s schedules, synced."""
    engine = Engine(make_settings(database_url, **settings), clock=clock)
    declare(engine)
    await engine.open()
    try:
        await engine.sync_schedules()
        yield engine
    finally:
        await engine.close()


async def cue_named(engine: Engine, name: str, owner: str = OWNER) -> Cue:
    me = await engine.account(owner)
    cues, _ = await engine.list_cues(me, name=name)
    [cue] = [cue for cue in cues if cue.name == name]
    return cue


def report(engine: Engine, **options: Any) -> None:
    options = {"owner": OWNER, "name": "report"} | options

    @engine.cron("0 9 * * MON-FRI", timezone="America/New_York", **options)
    def send_report(payload: dict[str, Any]) -> str:
        return "sent"


async def test_each_decorator_declares_an_inprocess_cue_with_its_options(
    database_url: str, clock: FakeClock
) -> None:
    when = clock.now() + timedelta(days=1)
    names: list[str] = []

    def declare(engine: Engine) -> None:
        report(
            engine,
            payload={"to": "team"},
            misfire_policy="skip",
            overlap_policy="skip",
            concurrency=2,
            priority=5,
            rate_limit={"limit": 10, "period_seconds": 60},
            required_payload_keys=["to"],
            retry=Retry(max_attempts=2, backoff_minutes=[1]),
            timeout_seconds=30,
            description="the morning report",
        )

        @engine.every("5m", owner=OWNER)
        def refresh(payload: dict[str, Any]) -> None:
            pass

        names.append(refresh.__qualname__)

        @engine.at(when, owner=OWNER, name="launch")
        async def launch(payload: dict[str, Any]) -> None:
            pass

    async with started(database_url, clock, declare) as engine:
        cron = await cue_named(engine, "report")
        assert (cron.transport, cron.schedule_cron) == ("inprocess", "0 9 * * MON-FRI")
        assert cron.schedule_timezone == "America/New_York"
        assert cron.payload == {"to": "team", "task": "report"}
        assert (cron.misfire_policy, cron.overlap_policy) == ("skip", "skip")
        assert (cron.concurrency_limit, cron.priority, cron.rate_limit) == (2, 5, 10)
        assert cron.required_payload_keys == ["to"]
        assert (cron.retry_max_attempts, cron.retry_backoff_minutes) == (2, [1])
        assert (cron.timeout_seconds, cron.description) == (30, "the morning report")
        assert cron.declaration is not None
        [qualified] = names  # the default name: the function's qualified name
        assert qualified.endswith("declare.<locals>.refresh")
        interval = await cue_named(engine, qualified)
        assert interval.schedule_interval_seconds == 300 and interval.payload == {"task": qualified}
        once = await cue_named(engine, "launch")
        assert once.schedule_at == when and once.next_run == when


async def test_the_declared_function_runs_when_its_cue_fires(
    database_url: str, clock: FakeClock
) -> None:
    seen: list[dict[str, Any]] = []

    def declare(engine: Engine) -> None:
        @engine.every(timedelta(minutes=1), owner=OWNER, name="tick", payload={"n": 1})
        def tick(payload: dict[str, Any]) -> str:
            seen.append(payload)
            return "ticked"

    async with started(database_url, clock, declare) as engine:
        me = await engine.account(OWNER)
        cue = await cue_named(engine, "tick")
        await fire(engine, clock, 60)
        execution = await only_execution(engine, me, cue.id)
        assert execution.status == "success" and seen == [{"n": 1, "task": "tick"}]


async def test_starting_the_engine_stores_its_declared_schedules(
    database_url: str, clock: FakeClock
) -> None:
    engine = Engine(make_settings(database_url), clock=clock)
    report(engine)
    async with engine:
        cue = await cue_named(engine, "report")
    assert cue.status == CueStatus.ACTIVE and cue.next_run is not None


async def test_a_start_with_unchanged_declarations_writes_nothing(
    database_url: str, clock: FakeClock
) -> None:
    async with started(database_url, clock, report) as engine:
        first = await cue_named(engine, "report")
    clock.advance(3600)
    async with started(database_url, clock, report) as engine:
        again = await cue_named(engine, "report")
    assert again == first  # updated_at and next_run included


async def test_a_changed_declaration_updates_its_cue_and_keeps_next_run_if_the_schedule_stayed(
    database_url: str, clock: FakeClock
) -> None:
    async with started(database_url, clock, lambda e: report(e, priority=5)) as engine:
        first = await cue_named(engine, "report")
    clock.advance(60)
    async with started(database_url, clock, lambda e: report(e, payload={"to": "x"})) as engine:
        changed = await cue_named(engine, "report")
    assert changed.payload == {"to": "x", "task": "report"}
    assert changed.priority == 0  # left out of the declaration: back to the default
    assert changed.updated_at > first.updated_at
    assert changed.next_run == first.next_run and changed.id == first.id

    def hourly(engine: Engine) -> None:
        @engine.every("1h", owner=OWNER, name="report")
        def send_report(payload: dict[str, Any]) -> None:
            pass

    clock.advance(60)
    async with started(database_url, clock, hourly) as engine:
        rescheduled = await cue_named(engine, "report")
    assert rescheduled.schedule_type == "interval" and rescheduled.schedule_cron is None
    assert rescheduled.next_run == clock.now() + timedelta(hours=1)


@pytest.mark.parametrize("opted_in", [False, True])
async def test_a_removed_declaration_leaves_its_cue_alone_unless_pausing_is_opted_in(
    database_url: str, clock: FakeClock, opted_in: bool
) -> None:
    async with started(database_url, clock, report) as engine:
        first = await cue_named(engine, "report")
        me = await engine.account(OWNER)
        hand_made, _ = await engine.create_cue(
            me,
            {
                "name": "by-hand",
                "transport": "worker",
                "schedule": {"type": "interval", "interval_seconds": 60},
                "payload": {"task": "by-hand"},
            },
        )
    clock.advance(60)
    settings = {"pause_removed_schedules": opted_in}
    async with started(database_url, clock, lambda e: None, **settings) as engine:
        removed = await cue_named(engine, "report")
        assert await cue_named(engine, "by-hand") == hand_made
    if not opted_in:
        assert removed == first
        return
    assert removed.status == CueStatus.PAUSED and removed.next_run is None
    clock.advance(60)
    async with started(database_url, clock, report, **settings) as engine:
        back = await cue_named(engine, "report")
    assert back.status == CueStatus.ACTIVE and back.next_run is not None


async def test_a_name_held_by_a_hand_made_cue_is_a_clear_error(
    database_url: str, clock: FakeClock
) -> None:
    async with started(database_url, clock, lambda e: None) as engine:
        me = await engine.account(OWNER)
        hand_made, _ = await engine.create_cue(
            me,
            {
                "name": "report",
                "transport": "worker",
                "schedule": {"type": "interval", "interval_seconds": 60},
                "payload": {"task": "something-else"},
            },
        )
        report(engine)
        with pytest.raises(CueflowError, match="not declared in code") as raised:
            await engine.sync_schedules()
        assert raised.value.code == "duplicate_cue_name" and raised.value.status == 409
        assert await cue_named(engine, "report") == hand_made


async def test_engines_starting_at_once_with_the_same_declarations_store_one_cue(
    database_url: str, clock: FakeClock
) -> None:
    engines = [Engine(make_settings(database_url), clock=clock) for _ in range(3)]
    for engine in engines:
        report(engine)
        await engine.open()
    try:
        synced = await asyncio.gather(*(engine.sync_schedules() for engine in engines))
        assert len({cues[0].id for cues in synced}) == 1
        me = await engines[0].account(OWNER)
        _, total = await engines[0].list_cues(me)
        assert total == 1
    finally:
        for engine in engines:
            await engine.close()


async def test_a_name_is_declared_once_per_engine(database_url: str, clock: FakeClock) -> None:
    engine = Engine(make_settings(database_url), clock=clock)
    report(engine)
    with pytest.raises(ValueError, match="declared already"):
        report(engine)


def test_intervals_are_read_with_their_unit() -> None:
    assert [interval_seconds(v) for v in ("30s", "5m", "2h", "1d", " 10 m ")] == [
        30,
        300,
        7200,
        86400,
        600,
    ]
    assert interval_seconds(90) == 90 and interval_seconds(5.0) == 5
    assert interval_seconds(timedelta(minutes=2)) == 120
    for bad in ("5", "5 minutes", "0s", 0.5, timedelta(milliseconds=1500), -1):
        with pytest.raises(ValueError, match="interval"):
            interval_seconds(bad)


async def test_the_docs_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
    [example] = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    monkeypatch.chdir(tmp_path)  # the example's sqlite:///app.db
    for _ in range(2):
        module = types.ModuleType("docs_embedding")
        exec(compile(example, "docs/embedding.md", "exec"), module.__dict__)
        cues = await asyncio.wait_for(module.main(), 30)
        names = [cue.name for cue in cues]
        assert names == ["morning_report", "refresh_prices", "new-year"]


def test_a_declaration_without_an_owner_is_refused() -> None:
    engine = Engine(make_settings("sqlite://"))
    with pytest.raises(TypeError, match="owner="):
        engine.every("5m")  # type: ignore[call-arg]  # what mypy refuses, at run time too
