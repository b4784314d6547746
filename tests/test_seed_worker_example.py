"""CueAPI's minimal worker example (``requests`` swapped for ``httpx``, the calls unchanged) runs
against a real ``cueflow serve``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.server import cueflow_server

EXAMPLE = Path(__file__).parent.parent / "examples" / "minimal_worker.py"


def _wait_for(check, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        time.sleep(0.1)


def test_minimal_worker_example_processes_due_cues(database_url: str, tmp_path: Path) -> None:
    with cueflow_server(database_url, tmp_path) as base:
        key = httpx.post(f"{base}/v1/auth/register", json={"email": "seed@example.com"}).json()[
            "api_key"
        ]
        headers = {"Authorization": f"Bearer {key}"}
        at = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
        for n in range(3):
            response = httpx.post(
                f"{base}/v1/cues",
                headers=headers,
                json={
                    "name": f"report-{n}",
                    "schedule": {"type": "once", "at": at},
                    "transport": "worker",
                    "payload": {"task": f"report-{n}"},
                },
            )
            assert response.status_code == 201, response.text
        worker = subprocess.Popen(
            [sys.executable, str(EXAMPLE)],
            env={**os.environ, "CUEFLOW_URL": base, "CUEFLOW_API_KEY": key},
        )
        try:

            def all_succeeded() -> bool:
                page = httpx.get(f"{base}/v1/executions", headers=headers).json()
                done = [e for e in page["executions"] if e["status"] == "success"]
                return len(done) == 3

            _wait_for(all_succeeded, timeout=30)
        finally:
            worker.terminate()
            worker.wait(timeout=10)
        page = httpx.get(f"{base}/v1/executions", headers=headers).json()
        results = sorted(e["outcome"]["result"] for e in page["executions"])
        assert results == ["done: report-0", "done: report-1", "done: report-2"]
        assert {e["claimed_by_worker"] for e in page["executions"]} == {"my-worker-001"}
        cues = httpx.get(f"{base}/v1/cues", headers=headers).json()["cues"]
        assert {c["status"] for c in cues} == {"completed"}


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
