"""``cueflow serve``'s options: its help names the environment variable of each setting, and
the graceful timeout has a flag, a variable and a default well under 30 s."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from cueflow.cli import app
from tests.conftest import make_settings

SERVE_VARIABLES = [
    "HOST",
    "PORT",
    "DATABASE_URL",
    "WORKER_CLAIM_TIMEOUT_SECONDS",
    "WORKER_HEARTBEAT_TIMEOUT_SECONDS",
    "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS",
    "CUEFLOW_FORWARDED_ALLOW_IPS",
    "CUEFLOW_GRACEFUL_TIMEOUT_SECONDS",
    "CUEFLOW_LOG_FORMAT",
]


@pytest.mark.parametrize("width", ["200", "80"])
def test_serve_help_names_each_environment_variable(width: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": width})
    assert result.exit_code == 0, result.output
    words = set(re.findall(r"[A-Z][A-Z_]+", result.output))
    assert set(SERVE_VARIABLES) <= words
    assert "--graceful-timeout" in result.output
    assert "--forwarded-allow-ips" in result.output


def test_the_graceful_timeout_defaults_to_20_s_and_reads_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert make_settings("sqlite://").graceful_timeout_seconds == 20.0
    monkeypatch.setenv("CUEFLOW_GRACEFUL_TIMEOUT_SECONDS", "7.5")
    assert make_settings("sqlite://").graceful_timeout_seconds == 7.5
