"""``cueflow worker``: the worker daemon really running shell commands and Python functions
against a real ``cueflow serve`` whose claim lease is two seconds, so only the daemon's
heartbeats keep a longer job's claim; concurrency, ``--max-executions``, timeouts, graceful
stop on SIGTERM, and its usage and connection errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cueflow.cli import app
from cueflow.client import ApiError, Unreachable
from cueflow.commands.daemon import Events, WorkerDaemon
from cueflow.commands.handlers import ShellHandler
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.server import cueflow_server, free_port

LEASE_SECONDS = 2
SERVER_ENV = {
    "WORKER_CLAIM_TIMEOUT_SECONDS": str(LEASE_SECONDS),
    "CUEFLOW_SWEEP_INTERVAL_SECONDS": "0.2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on SQLite with a two-second claim lease."""
    workdir = tmp_path_factory.mktemp("cli-worker")
    with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir, **SERVER_ENV) as base:
        yield base


class Account:
    """A fresh account: makes due worker executions and runs the worker as that account."""

    def __init__(self, base: str) -> None:
        email = f"worker-{uuid.uuid4().hex[:8]}@example.com"
        response = httpx.post(f"{base}/v1/auth/register", json={"email": email})
        assert response.status_code == 201, response.text
        self.base = base
        self.key = response.json()["api_key"]
        self.env = {"CUEFLOW_API_URL": base, "CUEFLOW_API_KEY": self.key}
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def due(self, task: str, **payload: Any) -> str:
        """A worker cue for ``task`` fired now; returns its pending execution's id."""
        cue = self.http.post(
            "/v1/cues",
            json={
                "name": f"cue-{uuid.uuid4().hex[:8]}",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "0 0 1 1 *"},
                "payload": {"task": task, **payload},
            },
        )
        assert cue.status_code == 201, cue.text
        run = self.http.post(f"/v1/cues/{cue.json()['id']}/fire")
        assert run.status_code == 200, run.text
        return str(run.json()["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        """``GET /v1/executions/{id}``."""
        response = self.http.get(f"/v1/executions/{execution_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def worker(self, *args: str, limit: float = 60) -> Result:
        """Run ``cueflow worker ARGS --json`` in process (polling fast). After ``limit``
        seconds it gets SIGTERM, so a daemon that never finishes fails the test instead of
        hanging it."""
        command = ["worker", "--poll-interval", "0.1", "--json", *args]
        deadline = threading.Timer(limit, os.kill, (os.getpid(), signal.SIGTERM))
        deadline.start()
        try:
            return CliRunner().invoke(app, command, env=self.env)
        finally:
            deadline.cancel()


@pytest.fixture
def account(server: str) -> Iterator[Account]:
    """A fresh account on the test server."""
    acc = Account(server)
    yield acc
    acc.http.close()


def events(result: Result) -> list[dict[str, Any]]:
    """The JSON-line events the worker printed."""
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check()`` until it returns something truthy (at most ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# shell handlers ---------------------------------------------------------------------------------
def test_shell_handler_gets_the_payload_and_its_stdout_is_the_result(account: Account) -> None:
    execution_id = account.due("echo", n=2)
    command = 'in=$(cat); [ "$in" = "$CUEFLOW_PAYLOAD" ] && echo "task=$CUEFLOW_TASK payload=$in"'
    result = account.worker("--handler", f"echo=shell:{command}", "--once", "--worker-id", "w-echo")
    assert result.exit_code == 0, result.output
    execution = account.execution(execution_id)
    assert execution["status"] == "success"
    assert execution["claimed_by_worker"] == "w-echo"
    assert execution["outcome"]["result"] == 'task=echo payload={"task": "echo", "n": 2}'
    kinds = [e["event"] for e in events(result)]
    assert kinds == ["started", "claimed", "finished", "stopped"]
    [worker] = account.http.get("/v1/workers").json()["workers"]
    assert worker["worker_id"] == "w-echo" and worker["handlers"] == ["echo"]


def test_shell_handler_failure_reports_exit_code_and_stderr(account: Account) -> None:
    execution_id = account.due("broken")
    result = account.worker(
        "--handler", "broken=shell:echo partial; echo oops >&2; exit 3", "--once"
    )
    assert result.exit_code == 0, result.output
    execution = account.execution(execution_id)
    assert execution["status"] == "failed"
    assert execution["outcome"]["success"] is False
    assert execution["outcome"]["error"] == "exit code 3: oops"


def test_shell_handler_last_json_line_is_reported_as_evidence(account: Account) -> None:
    execution_id = account.due("count")
    command = """echo 'counting'; echo '{"summary": "two rows", "metadata": {"rows": 2}}'"""
    assert account.worker("--handler", f"count=shell:{command}", "--once").exit_code == 0
    outcome = account.execution(execution_id)["outcome"]
    assert outcome["success"] is True
    assert outcome["result"] == "counting"
    assert outcome["metadata"] == {"rows": 2}


def test_shell_handler_never_sees_the_api_key(account: Account) -> None:
    execution_id = account.due("env")
    command = 'echo "key=${CUEFLOW_API_KEY:-none}"'
    assert account.worker("--handler", f"env=shell:{command}", "--once").exit_code == 0
    assert account.execution(execution_id)["outcome"]["result"] == "key=none"


# python handlers --------------------------------------------------------------------------------
@pytest.fixture
def handlers_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of handlers in the working directory; returns its name."""
    name = f"cli_handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            def double(payload):
                return {"n": payload["n"] * 2}

            def explode(payload):
                raise ValueError(f"bad n: {payload['n']}")

            def with_context(payload, context):
                return f"{context.task} attempt {context.attempt} of {context.cue_name}"

            async def later(payload):
                return "awaited"
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    return name


def test_python_handlers_return_results_and_raise_failures(
    account: Account, handlers_module: str
) -> None:
    doubled = account.due("double", n=21)
    exploded = account.due("explode", n=7)
    contextual = account.due("context")
    awaited = account.due("later")
    result = account.worker(
        "--handler", f"double=python:{handlers_module}:double",
        "--handler", f"explode=python:{handlers_module}:explode",
        "--handler", f"context=python:{handlers_module}:with_context",
        "--handler", f"later=python:{handlers_module}:later",
        "--once", "--concurrency", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert account.execution(doubled)["outcome"] | {"recorded_at": None} == {
        "success": True, "result": '{"n": 42}', "error": None, "metadata": None,
        "recorded_at": None,
    }  # fmt: skip
    failed = account.execution(exploded)
    assert failed["status"] == "failed"
    assert failed["outcome"]["error"] == "ValueError: bad n: 7"
    assert account.execution(contextual)["outcome"]["result"].startswith(
        "context attempt 1 of cue-"
    )
    assert account.execution(awaited)["outcome"]["result"] == "awaited"


# leases, concurrency, limits ---------------------------------------------------------------------
def test_heartbeats_keep_a_job_longer_than_the_lease(account: Account) -> None:
    execution_id = account.due("slow")
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=account.base, headers=account.http.headers) as http:
            while not done.is_set():
                seen.append(http.get(f"/v1/executions/{execution_id}").json()["status"])
                time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.monotonic()
    try:
        result = account.worker("--handler", "slow=shell:sleep 5; echo slept", "--once")
    finally:
        done.set()
        watcher.join()
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started > 2 * LEASE_SECONDS
    execution = account.execution(execution_id)
    assert execution["status"] == "success" and execution["outcome"]["result"] == "slept"
    assert execution["attempts"] == 1 and execution["error_message"] is None
    # without heartbeats the sweeper takes the claim back after 2 s (delivering -> pending)
    claimed = seen.index("delivering")
    assert set(seen[claimed:]) <= {"delivering", "success"}, seen
    assert not [e for e in events(result) if e["event"] in ("lease_lost", "report_refused")]


def test_concurrency_runs_executions_side_by_side(account: Account) -> None:
    ids = {account.due("nap") for _ in range(3)}
    result = account.worker("--handler", "nap=shell:sleep 1", "--concurrency", "3", "--once")
    assert result.exit_code == 0, result.output
    kinds = [e["event"] for e in events(result)]
    assert kinds[:4] == ["started", "claimed", "claimed", "claimed"]
    assert {e["execution_id"] for e in events(result) if e["event"] == "finished"} == ids
    assert all(account.execution(i)["status"] == "success" for i in ids)


def test_max_executions_stops_the_worker(account: Account) -> None:
    ids = [account.due("one") for _ in range(3)]
    result = account.worker("--handler", "one=shell:true", "--max-executions", "2")
    assert result.exit_code == 0, result.output
    statuses = sorted(account.execution(i)["status"] for i in ids)
    assert statuses == ["pending", "success", "success"]


def test_timeout_fails_a_run(account: Account) -> None:
    execution_id = account.due("stuck")
    result = account.worker("--handler", "stuck=shell:sleep 30", "--timeout", "0.5", "--once")
    assert result.exit_code == 0, result.output
    assert account.execution(execution_id)["outcome"]["error"] == "timed out after 0.5 s"


# stopping ---------------------------------------------------------------------------------------
def _daemon(account: Account, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cueflow", "worker", "--poll-interval", "0.1", "--json", *args],
        env={**os.environ, **account.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _claimed(account: Account, execution_id: str) -> bool:
    return account.execution(execution_id)["status"] == "delivering"


def test_sigterm_lets_running_work_finish(account: Account) -> None:
    execution_id = account.due("finish")
    daemon = _daemon(account, "--handler", "finish=shell:sleep 1; echo done", "--grace", "20")
    try:
        wait_for(lambda: _claimed(account, execution_id))
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, err
    assert '"event": "stopping"' in out
    assert account.execution(execution_id)["outcome"]["result"] == "done"


def test_sigterm_releases_work_still_running_after_the_grace(account: Account) -> None:
    execution_id = account.due("endless")
    daemon = _daemon(account, "--handler", "endless=shell:sleep 60", "--grace", "0.3")
    try:
        wait_for(lambda: _claimed(account, execution_id))
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=30)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, err
    assert '"event": "released"' in out
    execution = account.execution(execution_id)
    assert execution["status"] == "pending" and execution["outcome"] is None
    assert execution["attempts"] == 1


# errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("handler", "message"),
    [
        ("nothing", "is not TASK=shell:COMMAND or TASK=python:MODULE:FUNCTION"),
        ("t=perl:x", "unknown handler kind 'perl'"),
        ("t=python:no_such_module_here:f", "cannot import 'no_such_module_here'"),
        ("t=python:json:no_such_function", "'json' has no 'no_such_function'"),
    ],
)
def test_bad_handlers_are_usage_errors(account: Account, handler: str, message: str) -> None:
    result = account.worker("--handler", handler, "--once")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_worker_exit_codes_for_bad_key_and_unreachable_server(account: Account) -> None:
    runner = CliRunner()
    bad_key = runner.invoke(
        app,
        [
            "worker",
            "-H",
            "t=shell:true",
            "--once",
            "--api-url",
            account.base,
            "--api-key",
            "cue_sk_nope",
        ],
    )
    assert bad_key.exit_code == 1 and "Invalid API key" in bad_key.stderr
    url = f"http://127.0.0.1:{free_port()}"
    unreachable = runner.invoke(
        app, ["worker", "-H", "t=shell:true", "--api-url", url, "--api-key", "k"]
    )
    assert unreachable.exit_code == 3 and f"cannot reach {url}" in unreachable.stderr
    no_key = runner.invoke(app, ["worker", "-H", "t=shell:true"], env={"CUEFLOW_API_KEY": ""})
    assert no_key.exit_code == 2 and "no API key" in no_key.stderr


# on PostgreSQL ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same server on PostgreSQL (skipped when PostgreSQL is unreachable)."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        with cueflow_server(url, tmp_path_factory.mktemp("cli-worker-pg"), **SERVER_ENV) as base:
            yield base
    finally:
        asyncio.run(drop_pg_database(url))


def test_worker_on_postgresql(pg_server: str) -> None:
    account = Account(pg_server)
    ok, bad = account.due("ok", n=1), account.due("bad")
    result = account.worker(
        "--handler", "ok=shell:cat", "--handler", "bad=shell:exit 4", "--concurrency", "2", "--once"
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(account.execution(ok)["outcome"]["result"]) == {"task": "ok", "n": 1}
    assert account.execution(bad)["outcome"]["error"] == "exit code 4"


# the daemon against a scripted server -----------------------------------------------------------
class ScriptedApi:
    """Stands in for :class:`~cueflow.client.AsyncClient`: claimable polls fail ``outages``
    times with :class:`Unreachable`, then list one execution; an outcome carrying evidence is
    refused with 422 once."""

    def __init__(self, outages: int) -> None:
        self.outages = outages
        self.outcomes: list[dict[str, Any]] = []
        self.listed = False

    async def request(self, method: str, path: str, *, body: Any = None, **kwargs: Any) -> Any:
        if method == "POST":
            return await self.post(path, body)
        assert (method, path) == ("GET", "/v1/executions/claimable")
        if self.outages:
            self.outages -= 1
            raise Unreachable("cannot reach http://scripted: refused")
        items = (
            []
            if self.listed
            else [{"execution_id": "e1", "cue_id": "c", "task": "t", "payload": {}}]
        )
        self.listed = True
        return {"executions": items}

    async def post(self, path: str, body: Any = None) -> Any:
        if path.endswith("/claim"):
            return {"claimed": True, "execution_id": "e1", "lease_seconds": 60}
        if path.endswith("/outcome"):
            if "result_url" in body:
                raise ApiError(422, "validation_error", "body.result_url: bad URL")
            self.outcomes.append(body)
        return {}

    async def aclose(self) -> None:
        pass


def _daemon_for(api: ScriptedApi, **options: Any) -> WorkerDaemon:
    command = """echo '{"result": "r", "result_url": "not a url"}'"""
    return WorkerDaemon(
        api, [ShellHandler("t", command)], Events(as_json=True),  # type: ignore[arg-type]
        worker_id="w", poll_interval=0.01, **options,
    )  # fmt: skip


def test_daemon_retries_polls_while_the_server_is_down_and_drops_refused_evidence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = ScriptedApi(outages=2)
    _daemon_for(api, max_executions=1).run()
    assert api.outcomes == [{"success": True, "result": "r", "worker_id": "w"}]
    logged = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert logged.count("poll_failed") == 2 and logged[-1] == "finished"


def test_daemon_once_reports_a_server_it_cannot_reach() -> None:
    with pytest.raises(Unreachable):
        _daemon_for(ScriptedApi(outages=1), once=True).run()


class LosingApi(ScriptedApi):
    """A :class:`ScriptedApi` whose claims come with a 0.3 s lease that no heartbeat keeps: the
    server answers every execution heartbeat with ``lease_lost``."""

    async def post(self, path: str, body: Any = None) -> Any:
        if path.startswith("/v1/executions/") and path.endswith("/heartbeat"):
            self.beats = getattr(self, "beats", 0) + 1
            raise ApiError(409, "lease_lost", "the lease ran out")
        answer = await super().post(path, body)
        return {**answer, "lease_seconds": 0.3} if path.endswith("/claim") else answer


def test_daemon_tells_of_a_lost_lease_once_and_stops_heartbeating_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    api = LosingApi(outages=0)
    daemon = WorkerDaemon(
        api, [ShellHandler("t", "sleep 1; echo done")], Events(as_json=True),  # type: ignore[arg-type]
        worker_id="w", poll_interval=0.01, max_executions=1,
    )  # fmt: skip
    daemon.run()
    logged = [json.loads(line)["event"] for line in capsys.readouterr().out.splitlines()]
    assert logged.count("lease_lost") == 1 and api.beats == 1
