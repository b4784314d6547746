"""Another process holding SQLite's write lock delays only the work that needs the database.

A plain ``sqlite3`` connection in a thread plays the other process: it holds ``BEGIN IMMEDIATE``
on the same file until the test releases it (or a few seconds pass). Meanwhile the event loop
must stay free: ``/v1/info`` and ``/health`` answer at once, requests that need the database
wait for the lock without blocking anything else, and one that waits longer than
``sqlite_lock_timeout_seconds`` gets a clean 503.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import DatabaseBusy
from tests.conftest import make_settings, register
from tests.helpers import assert_error, cue_body

HELD_AT_MOST = 4.0
"""Longest the outside lock is held when a test does not release it earlier."""
AT_ONCE = 1.5
"""A bound on answers that must not wait for the lock (it is held far longer)."""


class OutsideLock:
    """A write transaction another connection holds on the database file."""

    def __init__(self, path: Path, hold: float) -> None:
        self._path = path
        self._hold = hold
        self._taken = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS outside_writer (x INTEGER)")
            self._taken.set()
            self._release.wait(self._hold)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    def start(self) -> None:
        """Take the lock; returns once it is held."""
        self._thread.start()
        assert self._taken.wait(5), "the outside connection could not take the lock"

    def release(self) -> None:
        """Give the lock back and wait until it is."""
        self._release.set()
        self._thread.join(10)


@contextmanager
def outside_lock(path: Path, hold: float = HELD_AT_MOST) -> Iterator[OutsideLock]:
    """Hold the write lock on ``path`` for at most ``hold`` seconds (released on exit)."""
    lock = OutsideLock(path, hold)
    lock.start()
    try:
        yield lock
    finally:
        lock.release()


@asynccontextmanager
async def sqlite_client(path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an app over a SQLite file (in process, no background loops)."""
    engine = Engine(make_settings(f"sqlite:///{path}", **settings), clock=FakeClock())
    await engine.open()
    app = create_app(engine, manage_engine=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
        ) as client:
            yield client
    finally:
        await engine.close()


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_info_and_health_answer_at_once_while_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cueflow.db"
    async with sqlite_client(db) as client:
        auth = await register(client)
        with outside_lock(db) as lock:
            started = time.monotonic()
            # A request that needs the database, waiting for the lock in the background.
            waiting = asyncio.ensure_future(client.get("/v1/cues", headers=auth))
            await asyncio.sleep(0.05)
            info, _ = await _timed(client.get("/v1/info"))
            health, _ = await _timed(client.get("/health"))
            elapsed = time.monotonic() - started
            assert info.status_code == 200
            assert health.status_code == 200
            assert health.json()["services"]["database"] == "busy"
            assert health.json()["status"] == "degraded"
            assert elapsed < AT_ONCE, f"answers took {elapsed:.2f} s while the lock was held"
            status = await client.get("/status")
            assert (status.status_code, status.json()) == (
                200,
                {"status": "degraded", "reason": "database busy"},
            )
            assert not waiting.done()
            lock.release()
            response = await asyncio.wait_for(waiting, 5)
        assert response.status_code == 200, response.text
        health = await client.get("/health")
        assert health.json()["services"]["database"] == "ok"


async def test_a_write_waits_for_the_lock_and_succeeds_once_it_is_released(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cueflow.db"
    async with sqlite_client(db) as client:
        auth = await register(client)
        with outside_lock(db, hold=1.0):
            response, waited = await _timed(client.post("/v1/cues", json=cue_body(), headers=auth))
        assert response.status_code == 201, response.text
        assert waited >= 0.5
        listed = await client.get("/v1/cues", headers=auth)
        assert listed.json()["total"] == 1


async def test_a_request_waiting_longer_than_the_lock_timeout_gets_503(tmp_path: Path) -> None:
    db = tmp_path / "cueflow.db"
    async with sqlite_client(db, sqlite_lock_timeout_seconds=0.5) as client:
        auth = await register(client)
        with outside_lock(db):
            response = await client.post("/v1/cues", json=cue_body(), headers=auth)
            assert_error(response, 503, "database_unavailable")
        after = await client.post("/v1/cues", json=cue_body(), headers=auth)
        assert after.status_code == 201, after.text


async def test_units_of_work_queue_for_the_connection_instead_of_failing(tmp_path: Path) -> None:
    """A unit of work that awaits inside its transaction makes others wait their turn."""
    engine = Engine(make_settings(f"sqlite:///{tmp_path / 'cueflow.db'}"), clock=FakeClock())
    await engine.open()
    order: list[str] = []

    async def unit(name: str, pause: float) -> None:
        async with engine.store.tx() as tx:
            order.append(f"{name} begins")
            await tx.earliest_next_run()
            await asyncio.sleep(pause)
            order.append(f"{name} ends")

    try:
        await asyncio.gather(unit("first", 0.05), unit("second", 0))
    finally:
        await engine.close()
    assert order == ["first begins", "first ends", "second begins", "second ends"]


async def test_a_nested_unit_of_work_fails_loudly_instead_of_waiting_forever(
    tmp_path: Path,
) -> None:
    engine = Engine(make_settings(f"sqlite:///{tmp_path / 'cueflow.db'}"), clock=FakeClock())
    await engine.open()
    try:
        async with engine.store.tx():
            with pytest.raises(RuntimeError, match="re-entered"):
                async with engine.store.tx():
                    pass
    finally:
        await engine.close()


async def test_opening_waits_for_the_lock_and_migrates(tmp_path: Path) -> None:
    """Start-up (migrations) waits for the lock without failing, then serves as usual."""
    db = tmp_path / "cueflow.db"
    with outside_lock(db, hold=1.0):
        engine = Engine(make_settings(f"sqlite:///{db}"), clock=FakeClock())
        await engine.open()
    try:
        async with engine.store.tx() as tx:
            assert await tx.earliest_next_run() is None
    finally:
        await engine.close()


async def test_opening_gives_up_with_database_busy_after_the_lock_timeout(
    tmp_path: Path,
) -> None:
    db = tmp_path / "cueflow.db"
    first = Engine(make_settings(f"sqlite:///{db}"), clock=FakeClock())
    await first.open()
    await first.close()
    with outside_lock(db):
        engine = Engine(
            make_settings(f"sqlite:///{db}", sqlite_lock_timeout_seconds=0.3), clock=FakeClock()
        )
        with pytest.raises(DatabaseBusy):
            await engine.open()
        await engine.close()
