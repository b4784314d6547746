"""``cueflow db prune``: a dry run counts per kind and deletes nothing, a real one deletes the
ended history older than the age given; ages need a unit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cueflow.cli import app
from cueflow.clock import SystemClock
from cueflow.retention import KEEP_LATEST
from tests.claims_support import new_user, opened
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.retention_support import kept, recurring, seed


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prune.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


async def _seeded(url: str) -> tuple[list[str], list[str]]:
    async with opened(url, SystemClock()) as engine:
        user = await new_user(engine)
        cue_id = await recurring(engine, user)
        old = await seed(engine, user, cue_id, "success", timedelta(days=40), count=6)
        recent = await seed(engine, user, cue_id, "failed", timedelta(days=1), count=KEEP_LATEST)
    return old, recent


async def _left(url: str, ids: list[str]) -> list[str]:
    async with opened(url, SystemClock()) as engine:
        return await kept(engine, await engine.account("a@example.com"), ids)


def test_prune_dry_run_then_prune(database: str) -> None:
    old, recent = asyncio.run(_seeded(database))
    runner = CliRunner()
    args = ["db", "prune", "--older-than", "30d", "--database-url", database]

    dry = runner.invoke(app, [*args, "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["would_delete"]["executions"] == 6
    assert asyncio.run(_left(database, old)) == old

    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "executions" in done.stdout and "6" in done.stdout
    assert asyncio.run(_left(database, old)) == []
    assert asyncio.run(_left(database, recent)) == recent


def test_prune_needs_an_age_with_a_unit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    result = CliRunner().invoke(app, ["db", "prune", "--older-than", "30", "--database-url", url])
    assert result.exit_code == 2 and "--older-than" in result.stderr
