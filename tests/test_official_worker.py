"""The official worker daemon (PyPI ``cueapi-worker``, pinned) against a live ``cueflow serve``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.official_clients import clients_bin


def _account(base: str) -> dict[str, str]:
    email = f"daemon-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
    return {"Authorization": f"Bearer {key}"}


def _cue(base: str, auth: dict[str, str], name: str, payload: dict[str, Any]) -> str:
    at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    body = {
        "name": name,
        "schedule": {"type": "once", "at": at},
        "transport": "worker",
        "payload": payload,
    }
    response = httpx.post(f"{base}/v1/cues", headers=auth, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _executions(base: str, auth: dict[str, str], cue_id: str) -> list[dict[str, Any]]:
    page = httpx.get(f"{base}/v1/executions", headers=auth, params={"cue_id": cue_id})
    return list(page.json()["executions"])


def _wait(check: Any, timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "the worker daemon did not finish in time"
        time.sleep(0.2)


def test_worker_daemon_runs_handlers_and_reports_outcomes(
    official_server: str, tmp_path: Path
) -> None:
    auth = _account(official_server)
    key = auth["Authorization"].split()[1]
    evidence = json.dumps({"external_id": "inv-7", "result": "invoiced acme"})
    config = {
        "api_key": key,
        "api_base": official_server,
        "worker_id": "daemon-1",
        "poll_interval": 1,
        "heartbeat_interval": 1,
        "handlers": {
            "invoice": {"cmd": f"echo started; printf '%s' '{evidence}' > $CUEAPI_OUTCOME_FILE"},
            "explode": "echo 'no disk' >&2; exit 3",
        },
    }
    path = tmp_path / "worker.yaml"
    path.write_text(json.dumps(config))
    good = _cue(official_server, auth, "invoice-run", {"task": "invoice", "customer": "acme"})
    bad = _cue(official_server, auth, "explode-run", {"task": "explode"})
    daemon = subprocess.Popen(
        [str(clients_bin() / "cueapi-worker"), "start", "-c", str(path)],
        env={**os.environ, "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def finished() -> list[dict[str, Any]]:
            done = [
                e
                for cue in (good, bad)
                for e in _executions(official_server, auth, cue)
                if e["status"] in ("success", "failed")
            ]
            return done if len(done) == 2 else []

        results = {e["cue_id"]: e for e in _wait(finished)}
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=40)
    assert daemon.returncode == 0, stderr[-2000:]
    assert results[good]["status"] == "success"
    assert results[good]["outcome"]["result"] == "invoiced acme"
    assert results[good]["claimed_by_worker"] == "daemon-1"
    assert results[bad]["status"] == "failed"
    workers = httpx.get(f"{official_server}/v1/workers", headers=auth).json()["workers"]
    assert [w["worker_id"] for w in workers] == ["daemon-1"]
    assert sorted(workers[0]["handlers"]) == ["explode", "invoice"]


def test_worker_daemon_status_command_authenticates(official_server: str, tmp_path: Path) -> None:
    auth = _account(official_server)
    config = {
        "api_key": auth["Authorization"].split()[1],
        "api_base": official_server,
        "worker_id": "probe",
        "handlers": {"x": "true"},
    }
    path = tmp_path / "worker.yaml"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(clients_bin() / "cueapi-worker"), "status", "-c", str(path)],
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "connected and authenticated" in result.stdout
