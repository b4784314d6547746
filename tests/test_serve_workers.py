"""``cueflow serve --workers N``: several server processes on one port, each a full node, on
PostgreSQL; refused on SQLite. Real processes: the command as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.server import cueflow_server_process, free_port

ACCESS = re.compile(r"uvicorn\.access \[pid=(\d+) request_id=([0-9a-f-]+)")
STOP_SECONDS = 60.0


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


@contextmanager
def two_nodes(
    url: str, tmp_path: Path, **env: str
) -> Iterator[tuple[str, subprocess.Popen[bytes], IO[str]]]:
    """``cueflow serve --workers 2`` logging at info to a file, in a process group of its own:
    (base URL, process, log)."""
    with (
        open(tmp_path / "serve.log", "w+") as log,
        cueflow_server_process(
            url,
            tmp_path,
            args=["--workers", "2"],
            session=True,
            log_level="info",
            stderr=log,
            **env,
        ) as (base, process),
    ):
        yield base, process, log


def children_of(pid: int) -> set[int]:
    """The ids of ``pid``'s child processes, from ``/proc``."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(p) for p in (task / "children").read_text().split())
    return found


def answering_pids(base: str, log: IO[str], want: int, timeout: float = 60.0) -> set[int]:
    """Ask ``GET /status`` on fresh connections until the access log shows ``want`` different
    processes answering (or ``timeout`` passes); those processes' ids."""
    asked: set[str] = set()
    pids: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(pids) < want and time.monotonic() < deadline:
        for _ in range(10):  # one connection each: the kernel picks the process per connection
            response = httpx.get(f"{base}/status", timeout=10)
            assert response.status_code == 200, response.text
            asked.add(response.headers["x-request-id"])
        log.seek(0)
        pids = {int(m[1]) for m in ACCESS.finditer(log.read()) if m[2] in asked}
    return pids


def test_two_workers_answer_on_one_port_from_two_processes_and_drain_on_sigterm(
    pg_url: str, tmp_path: Path
) -> None:
    with two_nodes(pg_url, tmp_path, CUEFLOW_DRAIN_ACCEPT_SECONDS="5") as (base, process, log):
        pids = answering_pids(base, log, want=2)
        assert len(pids) == 2, f"answers came from {pids} only"
        assert pids <= children_of(process.pid), "the answering processes are the server's"
        key = httpx.post(
            f"{base}/v1/auth/register", json={"email": f"{uuid.uuid4().hex[:8]}@example.com"}
        ).json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}

        # a long-poll in flight when the signal comes is answered, not cut off
        answers: list[httpx.Response] = []

        def long_poll() -> None:
            params = {"task": "nothing", "wait": 30}
            url = f"{base}/v1/executions/claimable"
            answers.append(httpx.get(url, params=params, headers=auth, timeout=60))

        polling = threading.Thread(target=long_poll)
        polling.start()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        # the port stays open for the accept time, and readiness says draining at once
        statuses: list[int] = []
        while 503 not in statuses and time.monotonic() - started < 5:
            statuses.append(httpx.get(f"{base}/status", timeout=10).status_code)
        assert statuses[-1] == 503, statuses
        code = process.wait(timeout=STOP_SECONDS)
        polling.join(STOP_SECONDS)
        assert code == 0
        assert [a.status_code for a in answers] == [200]
        assert time.monotonic() - started < 30, "the drain answered the long-poll early"
        log.seek(0)
        text = log.read()
    drained = {int(pid) for pid in re.findall(r"\[pid=(\d+)\] draining: no new work", text)}
    assert drained == pids, text[-3000:]
    assert "every worker process has stopped" in text


def test_a_worker_cue_fired_with_two_nodes_runs_exactly_once(pg_url: str, tmp_path: Path) -> None:
    with two_nodes(pg_url, tmp_path) as (base, process, log):
        first = answering_pids(base, log, want=2)
        assert len(first) == 2
        # a node process that dies is replaced, and the replacement answers
        killed = min(first)
        os.kill(killed, signal.SIGKILL)
        now = answering_pids(base, log, want=2)  # only requests made from now on count
        assert killed not in now and len(now) == 2, now
        key = httpx.post(
            f"{base}/v1/auth/register", json={"email": f"{uuid.uuid4().hex[:8]}@example.com"}
        ).json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        at = datetime.now(UTC) + timedelta(seconds=2)
        cue = httpx.post(
            f"{base}/v1/cues",
            json={
                "name": "once-on-two-nodes",
                "transport": "worker",
                "schedule": {"type": "once", "at": at.isoformat()},
                "payload": {"task": "job"},
            },
            headers=auth,
        )
        assert cue.status_code == 201, cue.text
        cue_id = cue.json()["id"]

        # both nodes' schedulers see it due; one execution comes of it
        params = {"task": "job", "wait": 10}
        deadline = time.monotonic() + 60
        items: list[dict[str, Any]] = []
        while not items and time.monotonic() < deadline:
            url = f"{base}/v1/executions/claimable"
            found = httpx.get(url, params=params, headers=auth, timeout=30)
            assert found.status_code == 200, found.text
            items = found.json()["executions"]
        assert [item["cue_id"] for item in items] == [cue_id]
        execution_id = items[0]["execution_id"]

        # workers on either node race for it: one claim wins
        async def race() -> list[int]:
            async def claim(n: int) -> int:
                async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as client:
                    body = {"worker_id": f"w{n}"}
                    answer = await client.post(f"/v1/executions/{execution_id}/claim", json=body)
                    return answer.status_code

            return await asyncio.gather(*(claim(n) for n in range(8)))

        codes = asyncio.run(race())
        assert sorted(codes) == [200] + [409] * 7, codes
        listed = httpx.get(f"{base}/v1/executions", params={"cue_id": cue_id}, headers=auth)
        assert listed.json()["total"] == 1, listed.text
        # Ctrl-C in a terminal: SIGINT to every process of the foreground group
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=STOP_SECONDS) == 0
        log.seek(0)
        text = log.read()
    assert re.search(rf"worker process {killed} exited \(exit code -9\)", text), text[-3000:]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_sqlite_refuses_several_workers_and_says_why(tmp_path: Path, how: str) -> None:
    args = ["--workers", "2"] if how == "option" else []
    env = {"CUEFLOW_WORKERS": "2"} if how == "environment" else {}
    done = subprocess.run(
        [sys.executable, "-m", "cueflow", "serve", "--port", str(free_port()), *args,
         "--database-url", f"sqlite:///{tmp_path / 'one.db'}"],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--workers 2 needs PostgreSQL" in lines[0]
    assert "SQLite lets one process write at a time" in lines[0]
    assert not (tmp_path / "one.db").exists(), "refused before touching the database"


def test_node_processes_that_cannot_start_stop_the_supervisor_with_exit_3(
    pg_url: str, tmp_path: Path
) -> None:
    """A node process that fails at start-up would fail again: no restart loop."""
    missing = pg_url.rsplit("/", 1)[0] + f"/cueflow_missing_{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, "-m", "cueflow", "serve", "--port", str(free_port()),
         "--workers", "2", "--database-url", missing],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-3000:]
    assert "failed to start: stopping the others" in done.stderr
    assert "starting another" not in done.stderr
