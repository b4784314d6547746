"""The remote commands (``cueflow cues|executions|workers``) and ``cueflow db`` against a real
``cueflow serve``: table output, ``--json``, the server's errors (exit 1), usage errors (exit 2)
and an unreachable server (exit 3). Commands run in process through typer's ``CliRunner``; a few
run as ``python -m cueflow`` to prove the entry point and its exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from cueflow.cli import app
from cueflow.commands.client import ApiClient, ApiError
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.server import cueflow_server, free_port

SERVER_ENV = {"CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "true"}


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on SQLite, shared by this module's tests."""
    workdir = tmp_path_factory.mktemp("cli-sqlite")
    with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir, **SERVER_ENV) as base:
        yield base


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on PostgreSQL (skipped when PostgreSQL is unreachable)."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        with cueflow_server(url, tmp_path_factory.mktemp("cli-pg"), **SERVER_ENV) as base:
            yield base
    finally:
        asyncio.run(drop_pg_database(url))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest) -> str:
    """Each store's server in turn, for the key commands."""
    return str(
        request.getfixturevalue(f"{'pg' if request.param == 'postgresql' else 'sqlite'}_server")
    )


class Account:
    """A fresh account on a server, and the CLI acting as it."""

    def __init__(self, base: str) -> None:
        email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
        response = httpx.post(f"{base}/v1/auth/register", json={"email": email})
        assert response.status_code == 201, response.text
        self.base = base
        self.key = response.json()["api_key"]
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """Run ``cueflow ARGS`` in process with this account's URL and key in the environment."""
        env = {"CUEFLOW_API_URL": self.base, "CUEFLOW_API_KEY": self.key, "COLUMNS": "200"}
        return CliRunner().invoke(app, list(args), env=env, input=input)

    def json(self, *args: str) -> Any:
        """Run a command with ``--json``; it must succeed; returns the parsed output."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def create(self, **overrides: Any) -> dict[str, Any]:
        """A worker cue made through the API (every 5 minutes unless overridden)."""
        body = {
            "name": f"cue-{uuid.uuid4().hex[:8]}",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "*/5 * * * *"},
            "payload": {"task": "report"},
            **overrides,
        }
        response = self.http.post("/v1/cues", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def account(sqlite_server: str) -> Iterator[Account]:
    """A fresh account on the SQLite server."""
    acc = Account(sqlite_server)
    yield acc
    acc.http.close()


def fails(result: Result, code: int, message: str) -> None:
    """The command exited with ``code`` and printed ``message`` on stderr, nothing on stdout."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert message in " ".join(result.stderr.split()), result.stderr
    assert result.stdout == ""


# cues -------------------------------------------------------------------------------------------
def test_cues_create_list_and_show_on_each_store(any_server: str) -> None:
    acc = Account(any_server)
    result = acc(
        "cues", "create", "--name", "nightly-report", "--cron", "0 9 * * MON-FRI",
        "--timezone", "Europe/Paris", "--task", "report", "--payload", '{"rows": 10}',
        "--description", "weekday report",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Created cue" in result.stdout
    [cue] = acc.http.get("/v1/cues").json()["cues"]
    assert cue["id"] in result.stdout
    assert cue["transport"] == "worker"
    assert cue["schedule"] == {
        "type": "recurring",
        "cron": "0 9 * * MON-FRI",
        "timezone": "Europe/Paris",
    }
    assert cue["payload"] == {"rows": 10, "task": "report"}
    assert cue["description"] == "weekday report"
    assert "No active workers" in result.stderr  # the server's warning, shown as a warning

    table = acc("cues", "list")
    assert table.exit_code == 0, table.output
    assert cue["id"] in table.stdout and "nightly-report" in table.stdout
    assert "cron 0 9 * * MON-FRI (Europe/Paris)" in table.stdout
    listed = acc.json("cues", "list")
    assert [c["id"] for c in listed["cues"]] == [cue["id"]] and listed["total"] == 1

    shown = acc("cues", "show", cue["id"])
    assert shown.exit_code == 0, shown.output
    assert "weekday report" in shown.stdout and '{"rows":10,"task":"report"}' in shown.stdout
    assert "No executions yet." in shown.stdout
    assert acc.json("cues", "show", cue["id"])["execution_total"] == 0


def test_cues_create_interval_one_time_and_webhook_cues(account: Account) -> None:
    every = account.json("cues", "create", "--name", "poll", "--every", "5m")
    assert every["schedule"]["type"] == "interval"
    assert every["schedule"]["interval_seconds"] == 300
    once = account.json("cues", "create", "--name", "later", "--at", "+1h", "--task", "x")
    assert once["schedule"]["type"] == "once" and once["next_run"]
    hook = account.json(
        "cues", "create", "--name", "hook", "--cron", "*/10 * * * *",
        "--webhook", "http://127.0.0.1:9/hook", "--method", "PUT", "--header", "X-Token: abc",
        "--max-attempts", "5", "--backoff", "1,2", "--misfire-policy", "skip",
    )  # fmt: skip
    assert hook["transport"] == "webhook"
    assert hook["callback"]["url"].startswith("http://127.0.0.1:9/hook")
    assert hook["callback"]["method"] == "PUT"
    assert hook["callback"]["headers"] == {"X-Token": "abc"}
    assert hook["retry"] == {"max_attempts": 5, "backoff_minutes": [1, 2]}
    assert account.http.get(f"/v1/cues/{hook['id']}").json()["misfire_policy"] == "skip"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --cron, --every and --at"),
        (["--cron", "* * * * *", "--every", "5m"], "exactly one of --cron, --every and --at"),
        (["--every", "soon"], "not a duration"),
        (["--at", "tomorrow"], "not an ISO-8601 time"),
        (["--cron", "* * * * *", "--payload", "[1]"], "must be a JSON object"),
        (["--cron", "* * * * *", "--payload", "{nope"], "not valid JSON"),
        (
            ["--cron", "* * * * *", "--webhook", "http://x.example", "--worker"],
            "exclude each other",
        ),
        (["--cron", "* * * * *", "--backoff", "1,x"], "not a list of minutes"),
        (["--cron", "* * * * *", "--webhook", "http://x.example", "--header", "X"], "not a header"),
    ],
)
def test_cues_create_usage_errors_exit_2(account: Account, args: list[str], message: str) -> None:
    result = account("cues", "create", "--name", "bad", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    assert account.http.get("/v1/cues").json()["total"] == 0


def test_cues_create_refused_by_the_server_exits_1_with_its_message(account: Account) -> None:
    fails(
        account("cues", "create", "--name", "x", "--cron", "not a cron"),
        1, "Invalid cron expression (400 invalid_schedule)",
    )  # fmt: skip
    account.create(name="taken")
    fails(
        account("cues", "create", "--name", "taken", "--every", "60"),
        1, "A cue named 'taken' already exists",
    )  # fmt: skip


def test_cues_pause_and_resume(account: Account) -> None:
    cue = account.create()
    paused = account("cues", "pause", cue["id"])
    assert paused.exit_code == 0, paused.output
    assert f"Paused cue {cue['id']}" in paused.stdout
    assert account.http.get(f"/v1/cues/{cue['id']}").json()["status"] == "paused"
    resumed = account.json("cues", "resume", cue["id"])
    assert resumed["status"] == "active" and resumed["next_run"]
    assert account.http.get(f"/v1/cues/{cue['id']}").json()["status"] == "active"


def test_cues_delete_asks_unless_yes(account: Account) -> None:
    cue = account.create()
    declined = account("cues", "delete", cue["id"], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert account.http.get(f"/v1/cues/{cue['id']}").status_code == 200
    confirmed = account("cues", "delete", cue["id"], input="y\n")
    assert confirmed.exit_code == 0 and f"Deleted cue {cue['id']}" in confirmed.stdout
    assert account.http.get(f"/v1/cues/{cue['id']}").status_code == 404
    other = account.create()
    assert account.json("cues", "delete", other["id"], "--yes") == {
        "id": other["id"],
        "deleted": True,
    }
    assert account.http.get(f"/v1/cues/{other['id']}").status_code == 404


# executions -------------------------------------------------------------------------------------
def test_fire_then_list_show_and_replay_executions(any_server: str) -> None:
    acc = Account(any_server)
    cue = acc.create()
    fired = acc("cues", "fire", cue["id"])
    assert fired.exit_code == 0, fired.output
    [execution] = acc.http.get("/v1/executions", params={"cue_id": cue["id"]}).json()["executions"]
    assert execution["id"] in fired.stdout and execution["status"] == "pending"

    table = acc("executions", "list", "--cue", cue["id"])
    assert table.exit_code == 0, table.output
    assert execution["id"] in table.stdout and "pending" in table.stdout
    assert acc.json("executions", "list", "--status", "success,failed")["executions"] == []

    refused = acc("executions", "replay", execution["id"])
    fails(refused, 1, "Cannot replay an execution that is still in progress")

    claim = acc.http.post(f"/v1/executions/{execution['id']}/claim", json={"worker_id": "w1"})
    assert claim.status_code == 200, claim.text
    report = {"success": True, "result": "42 rows", "metadata": {"rows": 42}}
    assert (
        acc.http.post(f"/v1/executions/{execution['id']}/outcome", json=report).status_code == 200
    )
    shown = acc("executions", "show", execution["id"])
    assert shown.exit_code == 0, shown.output
    for text in ("success", "42 rows", '{"rows":42}', "w1", "manual_fire"):
        assert text in shown.stdout, text
    assert acc.json("executions", "show", execution["id"])["outcome"]["result"] == "42 rows"
    assert "ok: 42 rows" in acc("executions", "list", "--worker", "w1").stdout

    replayed = acc.json("executions", "replay", execution["id"])
    assert replayed["replayed_from"] == execution["id"] and replayed["status"] == "pending"
    again = acc.http.get(f"/v1/executions/{replayed['id']}").json()
    assert again["triggered_by"] == "replay"


def test_fire_at_a_later_time(account: Account) -> None:
    cue = account.create()
    run = account.json("cues", "fire", cue["id"], "--at", "2099-01-01T09:00:00Z")
    assert run["scheduled_for"].startswith("2099-01-01T09:00:00")


def test_list_pages_say_how_to_see_more(account: Account) -> None:
    for _ in range(3):
        account.create()
    page = account("cues", "list", "--limit", "2")
    assert page.exit_code == 0 and "2 of 3 shown; --offset 2 for more" in page.stdout
    assert len(account.json("cues", "list", "--offset", "2")["cues"]) == 1
    assert "No executions." in account("executions", "list").stdout


# workers ----------------------------------------------------------------------------------------
def test_workers_list_and_delete(account: Account) -> None:
    assert "No workers have registered." in account("workers", "list").stdout
    beat = {"worker_id": "box-1", "handlers": ["report", "sync"]}
    assert account.http.post("/v1/worker/heartbeat", json=beat).status_code == 200
    table = account("workers", "list")
    assert table.exit_code == 0, table.output
    assert "box-1" in table.stdout and "active" in table.stdout and "report, sync" in table.stdout
    [worker] = account.json("workers", "list")["workers"]
    assert worker["worker_id"] == "box-1" and worker["handlers"] == ["report", "sync"]
    deleted = account("workers", "delete", "box-1")
    assert deleted.exit_code == 0 and "Deleted worker box-1" in deleted.stdout
    assert account.http.get("/v1/workers").json()["workers"] == []


# errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cues", "show", "cue_000000000000"], "Cue not found (404 cue_not_found)"),
        (["cues", "pause", "cue_000000000000"], "Cue not found"),
        (["cues", "resume", "cue_000000000000"], "Cue not found"),
        (["cues", "fire", "cue_000000000000"], "Cue not found"),
        (["cues", "delete", "cue_000000000000", "--yes"], "Cue not found"),
        (["executions", "show", str(uuid.UUID(int=1))], "Execution not found"),
        (["executions", "replay", "not-a-uuid"], "Execution not found"),
        (["workers", "delete", "nobody"], "Worker not found"),
    ],
)
def test_unknown_ids_exit_1_with_the_servers_message(
    account: Account, args: list[str], message: str
) -> None:
    fails(account(*args), 1, message)


def test_a_wrong_key_exits_1_and_a_missing_key_exits_2(account: Account) -> None:
    wrong = CliRunner().invoke(
        app, ["cues", "list", "--api-url", account.base, "--api-key", "cue_sk_" + "0" * 32]
    )
    fails(wrong, 1, "Invalid API key (401 invalid_api_key)")
    assert "0" * 32 not in wrong.output  # the key is never echoed
    missing = CliRunner().invoke(app, ["cues", "list"], env={"CUEFLOW_API_KEY": ""})
    fails(missing, 2, "no API key: pass --api-key or set CUEFLOW_API_KEY")


@pytest.mark.parametrize(
    "args",
    [
        ["cues", "list"],
        ["cues", "fire", "cue_000000000000"],
        ["executions", "list"],
        ["workers", "list"],
    ],
)
def test_an_unreachable_server_exits_3(args: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, [*args, "--api-url", url, "--api-key", "cue_sk_x"])
    fails(result, 3, f"cannot reach {url}")


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://example.com", "::::"])
def test_an_unusable_server_url_is_a_usage_error(url: str) -> None:
    for command in (["workers", "list"], ["worker", "-H", "t=shell:true"]):
        result = CliRunner().invoke(app, [*command, "--api-url", url, "--api-key", "k"])
        fails(result, 2, "--api-url: ")
        assert "is not an http(s):// server URL" in result.stderr


def test_a_redirect_is_reported_as_a_wrong_url() -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "https://elsewhere.example/v1/cues"})

    api = ApiClient("http://cueflow.test", "k", transport=httpx.MockTransport(redirect))
    with pytest.raises(ApiError, match=r"redirects to https://elsewhere\.example/v1/cues"):
        api.cues.list()


def test_help_never_shows_the_key(account: Account) -> None:
    result = account("cues", "list", "--help")
    assert result.exit_code == 0 and "CUEFLOW_API_KEY" in result.stdout
    assert account.key not in result.output


# the real entry point ---------------------------------------------------------------------------
def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cueflow", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_python_m_cueflow_exit_codes(account: Account) -> None:
    cue = account.create(name="entry-point")
    env = {"CUEFLOW_API_URL": account.base, "CUEFLOW_API_KEY": account.key}
    listed = _run("cues", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [c["name"] for c in json.loads(listed.stdout)["cues"]] == ["entry-point"]
    missing = _run("cues", "show", "cue_000000000000", env=env)
    assert missing.returncode == 1 and "Cue not found" in missing.stderr
    unreachable = _run(
        "cues",
        "pause",
        cue["id"],
        env={**env, "CUEFLOW_API_URL": f"http://127.0.0.1:{free_port()}"},
    )
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
    usage = _run("cues", "create", "--name", "x", env=env)
    assert usage.returncode == 2 and "exactly one of" in usage.stderr


# db ---------------------------------------------------------------------------------------------
def _db_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database(migrated=False))
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(url))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    yield from _db_url(request.param, tmp_path)


def test_db_upgrade_and_current(empty_database: str) -> None:
    from cueflow.commands.db import head_revision

    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "--database-url", empty_database, "--json"])
    assert before.exit_code == 0, before.output
    assert json.loads(before.stdout)["revision"] is None
    upgraded = runner.invoke(app, ["db", "upgrade", "--database-url", empty_database])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"revision {head_revision()}" in upgraded.stdout and "up to date" in upgraded.stdout
    after = json.loads(
        runner.invoke(app, ["db", "current", "--database-url", empty_database, "--json"]).stdout
    )
    assert after["revision"] == head_revision() and after["up_to_date"] is True
    assert runner.invoke(app, ["db", "upgrade", "--database-url", empty_database]).exit_code == 0


def test_db_commands_hide_passwords_and_refuse_unknown_stores() -> None:
    runner = CliRunner()
    url = f"postgresql://me:s3cret@127.0.0.1:{free_port()}/nothing"
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 1, result.output
    assert "cannot migrate postgresql://me:***@" in " ".join(result.stderr.split())
    assert "s3cret" not in result.output
    unknown = runner.invoke(app, ["db", "upgrade", "--database-url", "mysql://x/y"])
    assert unknown.exit_code == 2 and "no store plugin serves 'mysql'" in unknown.stderr
