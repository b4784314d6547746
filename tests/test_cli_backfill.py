"""``cueflow cues backfill`` against a real ``cueflow serve`` (SQLite), through typer's
``CliRunner``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from cueflow.cli import app

NEW_YORK = "America/New_York"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on SQLite."""
    from tests.server import cueflow_server

    workdir = tmp_path_factory.mktemp("backfill-cli")
    with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir) as base:
        yield base


def test_cli_backfill(server: str) -> None:
    http = httpx.Client(base_url=server)
    key = http.post("/v1/auth/register", json={"email": f"{uuid.uuid4().hex}@example.com"})
    headers = {"Authorization": f"Bearer {key.json()['api_key']}"}
    cue = http.post(
        "/v1/cues",
        json={
            "name": "nightly",
            "schedule": {"type": "recurring", "cron": "30 2 * * *", "timezone": NEW_YORK},
            "transport": "worker",
            "payload": {"task": "report"},
        },
        headers=headers,
    ).json()
    env = {"CUEFLOW_API_URL": server, "CUEFLOW_API_KEY": headers["Authorization"][7:]}
    args = ["cues", "backfill", cue["id"], "--start", "2026-03-06T12:00:00Z"]
    result = CliRunner().invoke(app, [*args, "--end", "2026-03-11T12:00:00Z"], env=env)
    assert result.exit_code == 0, result.output
    assert "5 run(s) created" in result.stdout
    again = CliRunner().invoke(
        app, [*args, "--end", "2026-03-11T12:00:00", "--json", "--overlap-policy", "skip"], env=env
    )
    assert again.exit_code == 0, again.output
    assert '"skipped_existing": 5' in again.stdout or '"skipped_existing":5' in again.stdout
    refused = CliRunner().invoke(app, [*args, "--end", "2026-03-01T00:00:00Z"], env=env)
    assert refused.exit_code == 1
    assert "end must be after start" in refused.output
    bad = CliRunner().invoke(app, [*args, "--end", "2026-03-11", "--overlap-policy", "x"], env=env)
    assert bad.exit_code == 2
