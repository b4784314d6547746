"""The official CLI (PyPI ``cueapi``, pinned) against a live ``cueflow serve``.

The CLI's base URL includes ``/v1``; it reads the key from ``CUEAPI_API_KEY``. Every command a
self-hosted user can run is driven here and checked through its exit code, its output and the
server's state.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.official_clients import clients_bin


class Cli:
    """Runs ``cueapi`` commands as one account."""

    def __init__(self, base: str, home: Path) -> None:
        email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
        self.base = base
        self.key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
        self.home = home

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "CUEAPI_API_KEY": self.key,
            "CUEAPI_API_BASE": f"{self.base}/v1",
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
        }
        result = subprocess.run(
            [str(clients_bin() / "cueapi"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.base}/v1{path}", headers=self.auth).json()


@pytest.fixture
def cli(official_server: str, tmp_path: Path) -> Cli:
    """The CLI with a fresh account."""
    return Cli(official_server, tmp_path)


def _cue_id(output: str) -> str:
    found = re.search(r"cue_[a-z0-9]{12}", output)
    assert found, output
    return found.group(0)


def test_cli_manages_cues(cli: Cli) -> None:
    created = cli(
        "create",
        "--name",
        "nightly",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Paris",
        "--worker",
        "--payload",
        '{"task": "report"}',
    )
    cue_id = _cue_id(created.stdout)
    assert cli.get(f"/cues/{cue_id}")["schedule"]["timezone"] == "Europe/Paris"
    assert cue_id in cli("list").stdout
    shown = cli("get", cue_id).stdout
    assert "nightly" in shown and "0 9 * * *" in shown
    cli("pause", cue_id)
    assert cli.get(f"/cues/{cue_id}")["status"] == "paused"
    cli("resume", cue_id)
    assert cli.get(f"/cues/{cue_id}")["status"] == "active"
    cli("update", cue_id, "--name", "daily", "--description", "renamed")
    assert cli.get(f"/cues/{cue_id}")["name"] == "daily"
    cli("fire", cue_id)
    assert cli.get(f"/executions?cue_id={cue_id}")["total"] == 1
    cli("delete", cue_id, "-y")
    assert cli("get", cue_id, ok=False).returncode == 1


def test_cli_creates_one_time_webhook_cues(cli: Cli) -> None:
    at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = cli(
        "create",
        "--name",
        "ping",
        "--at",
        at,
        "--url",
        "http://127.0.0.1:9/hook",
        "--method",
        "POST",
        "--on-failure",
        '{"email": false, "pause": false}',
    )
    cue = cli.get(f"/cues/{_cue_id(created.stdout)}")
    assert cue["transport"] == "webhook" and cue["schedule"]["type"] == "once"


def test_cli_runs_the_worker_protocol(cli: Cli) -> None:
    created = cli(
        "create",
        "--name",
        "job",
        "--cron",
        "0 0 1 1 *",
        "--worker",
        "--payload",
        '{"task": "crunch"}',
    )
    cue_id = _cue_id(created.stdout)
    cli("fire", cue_id)
    cli("fire", cue_id)
    listed = cli("executions", "list-claimable", "--task", "crunch").stdout
    ids = re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", listed)
    assert len(set(ids)) == 2
    claimed = cli("executions", "claim", ids[0], "--worker-id", "w1").stdout
    assert "900" in claimed
    assert cli("executions", "claim", ids[0], "--worker-id", "w2", ok=False).returncode == 1
    cli("executions", "heartbeat", ids[0], "--worker-id", "w1")
    refused = cli("executions", "heartbeat", ids[0], "--worker-id", "intruder", ok=False)
    assert refused.returncode == 1
    cli(
        "executions",
        "report-outcome",
        ids[0],
        "--success",
        "--external-id",
        "run-1",
        "--summary",
        "crunched",
    )
    assert cli.get(f"/executions/{ids[0]}")["status"] == "success"
    assert "success" in cli("executions", "get", ids[0]).stdout
    nxt = cli("executions", "claim-next", "--worker-id", "w1").stdout
    assert ids[1] in nxt
    cli("executions", "report-outcome", ids[1], "--failure")
    assert cli.get(f"/executions/{ids[1]}")["status"] == "failed"
    empty = cli("executions", "claim-next", "--worker-id", "w1")
    assert "No executions available" in empty.stdout + empty.stderr
    assert ids[0] in cli("executions", "list", "--cue-id", cue_id).stdout


def test_cli_fire_merges_or_replaces_the_payload_override(cli: Cli) -> None:
    payload = '{"task": "crunch", "lang": "en", "opts": {"a": 1}}'
    created = cli(
        "create", "--name", "ovr", "--cron", "0 0 1 1 *", "--worker", "--payload", payload
    )
    cue_id = _cue_id(created.stdout)
    override = '{"lang": "fr", "opts": {"b": 2}}'
    cli("fire", cue_id, "--payload-override", override)  # merge is the default
    cli("fire", cue_id, "--payload-override", override, "--merge-strategy", "merge")
    cli("fire", cue_id, "--payload-override", '{"task": "crunch"}', "--merge-strategy", "replace")
    shown = [
        cli.get(f"/executions/{e['id']}")["payload"]
        for e in reversed(cli.get(f"/executions?cue_id={cue_id}")["executions"])
    ]
    merged = {"task": "crunch", "lang": "fr", "opts": {"b": 2}}
    assert sorted(shown, key=len) == sorted([merged, merged, {"task": "crunch"}], key=len)


def test_cli_shows_the_account_and_usage(cli: Cli) -> None:
    assert "@example.com" in cli("whoami").stdout
    cli("create", "--name", "u", "--cron", "0 0 * * *", "--worker")
    usage = cli("usage").stdout
    assert "1" in usage


def test_cli_regenerates_the_key_and_the_old_one_stops_working(cli: Cli) -> None:
    old = cli.key
    cli("key", "regenerate", "-y")
    response = httpx.get(f"{cli.base}/v1/cues", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "key_rotated"


def test_cli_quickstart_delivers_a_webhook_to_the_echo_endpoint(cli: Cli) -> None:
    result = cli("quickstart")
    assert cli.get("/cues")["total"] == 0, result.stdout
