"""``cueflow mcp`` as a stdio subprocess served to the ``mcp`` SDK's client, and the settings
it explains when they are missing. Runs on whichever ``mcp`` major is installed
(``tests/mcp_support.py``)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest
from mcp import StdioServerParameters
from typer.testing import CliRunner

from cueflow import cli
from tests.mcp_support import MANAGEMENT_TOOLS, WORKER_TOOLS, over_stdio


async def test_cueflow_mcp_serves_over_stdio(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'mcp.db'}"
    command = ["-m", "cueflow", "mcp", "--database-url", database, "--manage",
               "--email", f"mcp-{uuid.uuid4().hex[:6]}@example.com"]  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=command, cwd=str(tmp_path))
    async with asyncio.timeout(60), over_stdio(params) as mcp:
        assert set(await mcp.tools()) == WORKER_TOOLS | MANAGEMENT_TOOLS
        cue = await mcp.ok("create_cue", name="every-minute", cron="* * * * *")
        assert (await mcp.ok("list_cues"))["cues"][0]["id"] == cue["id"]
        assert (await mcp.ok("poll_executions"))["executions"] == []


def test_cueflow_mcp_explains_missing_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUEFLOW_API_KEY", raising=False)
    runner = CliRunner()
    for args, message in [
        (["mcp"], "give --url or --database-url"),
        (["mcp", "--url", "http://127.0.0.1:9"], "CUEFLOW_API_KEY"),
        (["mcp", "--database-url", "sqlite://"], "--email"),
        (["mcp", "--http", "--port", "55459"], "give --url or --database-url"),
        (["mcp", "--tool-names", "cue"], "cueflow, cueapi or both"),
        (["mcp", "--http", "--database-url", "sqlite://", "--email", "a@b.c"], "API key"),
    ]:
        result = runner.invoke(cli.app, args)
        assert result.exit_code == 2
        assert message in result.output
