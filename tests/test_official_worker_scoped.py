"""The official worker daemon (PyPI ``cueapi-worker``, pinned) with a worker-scoped key
(``docs/operations.md``, "Scoped keys"): it registers, polls, claims, runs handlers and reports
outcomes with nothing more than the worker scope, and the one thing it does that needs more,
``regenerate-key``, is refused without changing anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.official_clients import clients_bin
from tests.test_official_worker import _account, _cue, _executions, _wait


def _worker_key(base: str, auth: dict[str, str]) -> str:
    response = httpx.post(f"{base}/v1/auth/keys", json={"scope": "worker"}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


def test_worker_daemon_runs_with_a_worker_key(official_server: str, tmp_path: Path) -> None:
    auth = _account(official_server)
    config = {
        "api_key": _worker_key(official_server, auth),
        "api_base": official_server,
        "worker_id": "scoped-1",
        "poll_interval": 1,
        "heartbeat_interval": 1,
        "handlers": {"invoice": "echo invoiced"},
    }
    path = tmp_path / "worker.yaml"
    path.write_text(json.dumps(config))
    cue = _cue(official_server, auth, "scoped-invoice", {"task": "invoice"})
    env = {**os.environ, "HOME": str(tmp_path)}
    daemon = subprocess.Popen(
        [str(clients_bin() / "cueapi-worker"), "start", "-c", str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def finished() -> list[dict[str, Any]]:
            return [
                e
                for e in _executions(official_server, auth, cue)
                if e["status"] in ("success", "failed")
            ]

        [result] = _wait(finished)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=40)
    assert daemon.returncode == 0, stderr[-2000:]
    assert "insufficient_scope" not in stderr
    assert (result["status"], result["claimed_by_worker"]) == ("success", "scoped-1")
    workers = httpx.get(f"{official_server}/v1/workers", headers=auth).json()["workers"]
    assert [w["worker_id"] for w in workers] == ["scoped-1"]

    status = subprocess.run(
        [str(clients_bin() / "cueapi-worker"), "status", "-c", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    regenerate = subprocess.run(
        [str(clients_bin() / "cueapi-worker"), "regenerate-key", "-c", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert regenerate.returncode == 1, regenerate.stdout + regenerate.stderr
    assert json.loads(path.read_text())["api_key"] == config["api_key"]
    me = httpx.get(f"{official_server}/v1/auth/me", headers=auth)
    assert me.status_code == 200  # the account key was not replaced
