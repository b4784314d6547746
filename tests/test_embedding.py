"""Embedding cueflow in a Python application: the README's example, stores opened by URL, cues
managed from Python, accounts without API keys, the engine inside an existing asyncio app and
the REST router mounted into an existing FastAPI app."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

import cueflow
from cueflow.api import mount
from cueflow.clock import FakeClock
from cueflow.errors import CueflowError, NotFound
from tests.conftest import drop_pg_database, eventually, fresh_pg_database, pg_available

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "embedded_app.py"


def engine_for(url: str, **settings: Any) -> cueflow.Engine:
    """``cueflow.open_engine`` without a stray ``.env`` file."""
    return cueflow.open_engine(url, _env_file=None, **settings)


@pytest.fixture(params=["memory", "file", "postgresql"])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every kind of store URL an embedding app may open."""
    if request.param == "memory":
        yield "sqlite://"
    elif request.param == "file":
        yield f"sqlite:///{tmp_path / 'app.db'}"
    else:
        if not pg_available():
            pytest.skip("PostgreSQL is not reachable")
        url = await fresh_pg_database()
        try:
            yield url
        finally:
            await drop_pg_database(url)


def test_the_readme_shows_the_embedded_example_verbatim() -> None:
    code = EXAMPLE.read_text().split('"""\n\n', 1)[1].strip()
    readme = (ROOT / "README.md").read_text()
    assert f"```python\n{code}\n```" in readme
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 20


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_the_embedded_example_runs_its_handler_and_stops_cleanly_on_a_signal(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), 30)
        second = await asyncio.wait_for(process.stdout.readline(), 30)
        assert first == second == b"Hello, world!\n"
        process.send_signal(stop_signal)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr, stderr.decode()


def test_the_embedded_example_runs_twice_in_a_row_on_a_file_database(tmp_path: Path) -> None:
    """Its schedule is declared in code: the second run finds the cue the first one stored."""
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    env = {**os.environ, "EXAMPLE_DATABASE_URL": url, "EXAMPLE_RUNS": "1"}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout == b"Hello, world!\n", done.stderr.decode()
        assert b"Traceback" not in done.stderr, done.stderr.decode()

    async def stored() -> list[cueflow.Cue]:
        async with engine_for(url) as engine:
            cues, _ = await engine.list_cues(await engine.account("me@example.com"))
            return cues

    [cue] = asyncio.run(stored())
    assert (cue.name, cue.run_count) == ("greeting", 2)


async def test_cues_are_created_listed_paused_resumed_and_deleted_from_python(
    store_url: str,
) -> None:
    clock = FakeClock()
    engine = cueflow.open_engine(store_url, clock=clock, _env_file=None)
    engine.handler("report")(lambda payload: "ok")
    async with engine:
        me = await engine.account("app@example.com")
        cue, warning = await engine.create_cue(
            me,
            {
                "name": "daily-report",
                "transport": "inprocess",
                "schedule": {"type": "recurring", "cron": "0 9 * * *", "timezone": "Europe/Paris"},
                "payload": {"task": "report"},
            },
        )
        assert warning is None
        assert (cue.name, cue.status, cue.task) == ("daily-report", "active", "report")

        cues, total = await engine.list_cues(me)
        assert total == 1 and [c.id for c in cues] == [cue.id]

        paused = await engine.pause_cue(me, cue.id)
        assert (paused.status, paused.next_run) == ("paused", None)
        assert (await engine.list_cues(me, status="paused"))[1] == 1
        resumed = await engine.resume_cue(me, cue.id)
        assert resumed.status == "active" and resumed.next_run is not None
        changed = await engine.update_cue(me, cue.id, {"description": "for the board"})
        assert changed.description == "for the board"

        await engine.delete_cue(me, cue.id)
        assert await engine.list_cues(me) == ([], 0)
        with pytest.raises(NotFound):
            await engine.get_cue(me, cue.id)


async def test_a_file_store_keeps_cues_across_engines(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    body = {
        "name": "kept",
        "transport": "worker",
        "schedule": {"type": "recurring", "cron": "0 9 * * *"},
    }
    async with engine_for(url) as first:
        me = await first.account("app@example.com")
        await first.create_cue(me, body)
    async with engine_for(url) as second:
        again = await second.account("app@example.com")
        assert again == me
        assert [c.name for c in (await second.list_cues(again))[0]] == ["kept"]


async def test_account_gets_or_creates_a_principal_and_never_shows_a_key(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with engine_for(database_url, allow_register=False) as engine:
        first = await engine.account("app@example.com")
        second = await engine.account("app@example.com")
        assert first == second
        assert first.email == "app@example.com"
        assert "api_key" not in repr(first)
        other = await engine.account("other@example.com")
        assert other.user_id != first.user_id

        with pytest.raises(CueflowError) as invalid:
            await engine.account("not an email")
        assert (invalid.value.status, invalid.value.code) == (422, "validation_error")

    async with engine_for(database_url) as engine:
        registered = await engine.register("rest@example.com")
        from_key = await engine.principal(registered["api_key"])
        assert await engine.account("rest@example.com") == from_key
    assert not re.search(r"cue_sk_[0-9a-f]{8}", caplog.text)


async def test_the_engine_runs_inside_an_existing_asyncio_app(database_url: str) -> None:
    ran: list[dict[str, Any]] = []
    engine = engine_for(database_url)

    @engine.handler("tick")
    async def tick(payload: dict[str, Any]) -> int:
        ran.append(payload)
        return len(ran)

    async with engine:
        me = await engine.account("app@example.com")
        cue, _ = await engine.create_cue(
            me,
            {
                "name": "ticker",
                "transport": "inprocess",
                "schedule": {"type": "interval", "interval_seconds": 1},
                "payload": {"task": "tick"},
            },
        )

        async def succeeded() -> bool:
            rows, _ = await engine.cue_executions(me, cue.id)
            return any(row.status == "success" for row in rows)

        await eventually(succeeded, timeout=15)
    assert ran[0] == {"task": "tick"}
    assert not engine.loops.running()  # closed with the block


async def test_the_rest_router_mounted_in_an_existing_app_shares_the_python_api(
    database_url: str,
) -> None:
    engine = engine_for(database_url)
    engine.handler("report")(lambda payload: "ok")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with engine:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    mount(app, engine)
    body = {
        "transport": "inprocess",
        "schedule": {"type": "recurring", "cron": "0 9 * * *"},
        "payload": {"task": "report"},
    }
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://host.test"
        ) as client,
    ):
        assert engine.loops.running(), "the host app's lifespan starts the engine"
        assert (await client.get("/hello")).json() == {"hello": "world"}
        key = (await client.post("/v1/auth/register", json={"email": "app@example.com"})).json()[
            "api_key"
        ]
        auth = {"Authorization": f"Bearer {key}"}
        me = await engine.account("app@example.com")
        from_python, _ = await engine.create_cue(me, {"name": "from-python", **body})
        from_rest = await client.post("/v1/cues", json={"name": "from-rest", **body}, headers=auth)
        assert from_rest.status_code == 201, from_rest.text

        listed = (await client.get("/v1/cues", headers=auth)).json()
        assert {c["name"] for c in listed["cues"]} == {"from-python", "from-rest"}
        paused = await client.patch(
            f"/v1/cues/{from_python.id}", json={"status": "paused"}, headers=auth
        )
        assert paused.json()["status"] == "paused"
        assert (await engine.get_cue(me, from_python.id)).status == "paused"
        missing = await client.get("/v1/cues/cue_missing00000", headers=auth)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "cue_not_found"
        refused = await client.post(
            "/v1/cues",
            json={"name": "unknown", **body, "payload": {"task": "nobody"}},
            headers=auth,
        )
        assert refused.status_code == 422
    assert not engine.loops.running(), "and its shutdown closes it"


def test_importing_cueflow_stays_light() -> None:
    code = (
        "import sys, cueflow; "
        "assert 'cueflow.engine' not in sys.modules, 'engine imported eagerly'; "
        "assert 'sqlalchemy' not in sys.modules; "
        "assert callable(cueflow.open_engine) and cueflow.Engine.__name__ == 'Engine'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_name_the_embedding_docs_import_comes_from_cueflow() -> None:
    """The README's embedding sections name no import from a plugin package, and each
    ``cueflow.X`` they name resolves."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Embedding")
    sections = readme[start : readme.index("\n## ", readme.index("## In-process handlers") + 1)]
    assert not re.findall(r"cueflow_(?:inprocess|webhook|worker|sqlite|postgres)\.", sections)
    for name in sorted(set(re.findall(r"`cueflow\.([A-Z]\w+)", sections))):
        assert getattr(cueflow, name) is not None, name
    assert cueflow.HandlerContext.__module__ == "cueflow.handler_context"
    assert "HandlerContext" in cueflow.__all__
