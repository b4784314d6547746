"""The official worker daemon (PyPI ``cueapi-worker``, pinned) runs flow steps against a live
``cueflow serve`` without knowing flows exist: a step is an execution like any other, and its
outcome's ``result`` becomes the step's output, handed on to the next step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.official_clients import clients_bin


def _wait(check: Any, timeout: float = 40) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "the flow did not finish in time"
        time.sleep(0.2)


def test_the_official_worker_daemon_runs_a_flows_steps(
    official_server: str, tmp_path: Path
) -> None:
    email = f"flow-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{official_server}/v1/auth/register", json={"email": email}).json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    steps = [
        {"id": "fetch", "transport": "worker", "payload": {"task": "fetch"}},
        {"id": "store", "needs": ["fetch"], "transport": "worker", "payload": {"task": "store"}},
    ]
    flow = httpx.post(
        f"{official_server}/v1/flows", headers=auth, json={"name": "pipeline", "steps": steps}
    )
    assert flow.status_code == 201, flow.text
    run = httpx.post(
        f"{official_server}/v1/flows/{flow.json()['id']}/runs", headers=auth, json={"input": 5}
    )
    assert run.status_code == 201, run.text
    outcome = json.dumps({"result": "fetched 5 rows"})
    config = {
        "api_key": key,
        "api_base": official_server,
        "worker_id": "flow-daemon",
        "poll_interval": 1,
        "heartbeat_interval": 1,
        "handlers": {
            "fetch": {"cmd": f"printf '%s' '{outcome}' > $CUEAPI_OUTCOME_FILE"},
            "store": "true",
        },
    }
    path = tmp_path / "worker.yaml"
    path.write_text(json.dumps(config))
    daemon = subprocess.Popen(
        [str(clients_bin() / "cueapi-worker"), "start", "-c", str(path)],
        env={**os.environ, "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    run_url = f"{official_server}/v1/flow-runs/{run.json()['id']}"
    try:

        def ended() -> dict[str, Any] | None:
            shown: dict[str, Any] = httpx.get(run_url, headers=auth).json()
            return shown if shown["status"] in ("succeeded", "failed") else None

        shown = _wait(ended)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=40)
    assert daemon.returncode == 0, stderr[-2000:]
    assert shown["status"] == "succeeded", shown
    assert shown["steps"]["fetch"]["output"] == "fetched 5 rows"
    [store_execution] = shown["steps"]["store"]["execution_ids"]
    execution = httpx.get(f"{official_server}/v1/executions/{store_execution}", headers=auth)
    assert execution.json()["claimed_by_worker"] == "flow-daemon"
    assert execution.json()["step_id"] == "store"
