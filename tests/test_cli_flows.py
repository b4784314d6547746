"""``cueflow flows`` and ``cueflow runs`` against a real ``cueflow serve`` on each store: flows
made from JSON and YAML files, runs started and waited for while a worker (a thread speaking the
worker protocol over HTTP) finishes their steps, the DAG of a run, events, cancel, and the
errors a user meets (unknown flow, bad JSON, a definition the server refuses, naming the step).
Commands run in process through typer's ``CliRunner``; one runs as ``python -m cueflow`` to
prove the exit code scripts see."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
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
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.server import cueflow_server

BOUND = 30.0
"""Longest any worker thread or wait of these tests may take."""


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on SQLite, shared by this module's tests."""
    workdir = tmp_path_factory.mktemp("flows-cli-sqlite")
    with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir) as base:
        yield base


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on PostgreSQL (skipped when PostgreSQL is unreachable)."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        with cueflow_server(url, tmp_path_factory.mktemp("flows-cli-pg")) as base:
            yield base
    finally:
        asyncio.run(drop_pg_database(url))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest) -> str:
    """Each store's server in turn."""
    name = "pg_server" if request.param == "postgresql" else "sqlite_server"
    return str(request.getfixturevalue(name))


class Account:
    """A fresh account on a server, the CLI acting as it, and a worker thread of it."""

    def __init__(self, base: str) -> None:
        email = f"flows-cli-{uuid.uuid4().hex[:8]}@example.com"
        response = httpx.post(f"{base}/v1/auth/register", json={"email": email})
        assert response.status_code == 201, response.text
        self.base = base
        self.key = response.json()["api_key"]
        self.env = {"CUEFLOW_API_URL": base, "CUEFLOW_API_KEY": self.key, "COLUMNS": "200"}
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """Run ``cueflow ARGS`` in process with this account's URL and key."""
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return result

    def json(self, *args: str) -> Any:
        """Run a command with ``--json``; it must succeed; returns the parsed output."""
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def run(self, run_id: str) -> dict[str, Any]:
        """``GET /v1/flow-runs/{id}``."""
        response = self.http.get(f"/v1/flow-runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def worker(
        self, outcomes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], count: int
    ) -> Worker:
        """A started :class:`Worker` reporting ``count`` outcomes."""
        worker = Worker(self, outcomes, count)
        worker.start()
        return worker


class Worker(threading.Thread):
    """Claims step executions over HTTP and reports, for each, ``outcomes[task](flow)`` (the
    payload's ``flow`` key), until ``count`` outcomes are in or :data:`BOUND` passes."""

    def __init__(
        self,
        account: Account,
        outcomes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
        count: int,
    ) -> None:
        super().__init__(daemon=True)
        self.account, self.outcomes, self.count = account, outcomes, count
        self.done: list[str] = []
        self.problems: list[str] = []

    def run(self) -> None:
        """Work until done or out of time."""
        http = httpx.Client(base_url=self.account.base, headers=self.account.http.headers)
        deadline = time.monotonic() + BOUND
        with http:
            while len(self.done) < self.count and time.monotonic() < deadline:
                body = {"worker_id": "cli-test", "limit": 1}
                claimed = http.post("/v1/executions/claims", json=body).json()["claimed"]
                if not claimed:
                    time.sleep(0.05)
                    continue
                item = claimed[0]
                task = item["payload"]["task"]
                outcome = self.outcomes[task](item["payload"]["flow"])
                answer = http.post(f"/v1/executions/{item['execution_id']}/outcome", json=outcome)
                if answer.status_code != 200:
                    self.problems.append(answer.text)
                self.done.append(task)

    def finished(self) -> list[str]:
        """Wait for the thread; the tasks it worked, in order (no outcome refused)."""
        self.join(BOUND)
        assert not self.is_alive() and not self.problems, self.problems
        return self.done


def fails(result: Result, code: int, message: str) -> None:
    """The command exited with ``code`` and printed ``message`` on stderr."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert message in " ".join(result.stderr.split()), result.stderr


def step(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    """A worker step with ``payload.task`` = its id."""
    return {"id": step_id, "needs": list(needs), "payload": {"task": step_id}, **extra}


def ok(output: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An outcome: success with ``output``."""
    return lambda flow: {"success": True, "output": output}


def write_flow(path: Path, name: str, steps: list[dict[str, Any]], **extra: Any) -> Path:
    """A JSON definition file."""
    path.write_text(json.dumps({"name": name, "steps": steps, **extra}))
    return path


@pytest.fixture
def account(sqlite_server: str) -> Iterator[Account]:
    """A fresh account on the SQLite server."""
    acc = Account(sqlite_server)
    yield acc
    acc.http.close()


# a run from a file to its end -------------------------------------------------------------------
def test_a_flow_from_a_file_runs_to_its_end_with_wait_on_each_store(
    any_server: str, tmp_path: Path
) -> None:
    acc = Account(any_server)
    steps = [step("fetch"), step("pack", "fetch", for_each="fetch"), step("report", "pack")]
    definition = write_flow(tmp_path / "flow.json", "orders", steps, description="ship orders")
    created = acc("flows", "create", "-f", str(definition))
    assert created.exit_code == 0, created.output
    [flow] = acc.http.get("/v1/flows").json()["flows"]
    assert "Created flow" in created.stdout and flow["id"] in created.stdout
    assert [s["id"] for s in flow["steps"]] == ["fetch", "pack", "report"]
    assert flow["description"] == "ship orders"
    listed = acc("flows", "list")
    assert flow["id"] in listed.stdout and "orders" in listed.stdout
    assert acc.json("flows", "list")["total"] == 1

    worker = acc.worker(
        {
            "fetch": ok(["a", "b"]),
            "pack": lambda flow: {"success": True, "output": {"packed": flow["item"]}},
            "report": ok("all packed"),
        },
        count=4,
    )
    waited = acc("flows", "run", "orders", "--input", '{"order": 7}', "--wait")
    assert waited.exit_code == 0, waited.output
    assert sorted(worker.finished()) == ["fetch", "pack", "pack", "report"]
    [run] = acc.http.get("/v1/flow-runs").json()["runs"]
    assert run["id"] in waited.stdout
    full = acc.run(run["id"])
    assert full["status"] == "succeeded" and full["input"] == {"order": 7}
    assert full["steps"]["pack"]["output"] == [{"packed": "a"}, {"packed": "b"}]

    shown = acc("runs", "show", run["id"])
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines if line.strip()}
    assert "succeeded" in rows["status"] and "orders" in rows["flow"]
    for step_id in ("fetch", "pack", "report"):
        assert "succeeded" in rows[step_id], shown.stdout
    assert '["a","b"]' in rows["fetch"] and "all packed" in rows["report"]
    assert '{"packed":"a"}' in rows["[0]"] and '{"packed":"b"}' in rows["[1]"]
    assert "pack" in rows["report"].split("succeeded")[0]  # its NEEDS column
    # the DAG: each step indented under its parent; timing of each step shown
    indent = {s: next(x for x in lines if x.split()[:1] == [s]).index(s) for s in rows}
    assert indent["fetch"] < indent["pack"] < indent["report"]
    assert all(any(u in rows[s] for u in ("ms", "s ")) for s in ("fetch", "pack", "report"))
    assert acc.json("runs", "show", run["id"]) == full

    assert run["id"] in acc("runs", "list", "--flow", "orders").stdout
    by_id = acc.json("runs", "list", "--flow", flow["id"], "--status", "succeeded")
    assert [r["id"] for r in by_id["runs"]] == [run["id"]]
    assert acc.json("runs", "list", "--status", "failed")["runs"] == []


def test_wait_exits_4_when_the_run_fails_naming_the_failed_step(
    account: Account, tmp_path: Path
) -> None:
    definition = write_flow(
        tmp_path / "flow.json",
        "charge-only",
        [step("charge"), step("refund", "charge", when="failure")],
    )
    assert account("flows", "create", "-f", str(definition)).exit_code == 0
    worker = account.worker(
        {
            "charge": lambda flow: {"success": False, "error": "card declined"},
            "refund": ok({"refunded": True}),
        },
        count=2,
    )
    script = subprocess.run(
        [sys.executable, "-m", "cueflow", "flows", "run", "charge-only", "--wait", "--json"],
        env={**os.environ, **account.env},
        capture_output=True,
        text=True,
        timeout=BOUND + 30,
    )
    assert worker.finished() == ["charge", "refund"]
    assert script.returncode == 4, script.stderr
    run = json.loads(script.stdout)
    assert run["status"] == "failed" and run["steps"]["refund"]["status"] == "succeeded"
    assert f"run {run['id']} failed (steps: charge)" in script.stderr
    shown = account("runs", "show", run["id"])
    assert "reported_failure: card declined" in shown.stdout
    fails(account("runs", "wait", run["id"]), 4, f"run {run['id']} failed")


# waits, events, cancel --------------------------------------------------------------------------
def test_events_resume_a_wait_step_and_cancel_ends_a_run_on_each_store(
    any_server: str, tmp_path: Path
) -> None:
    acc = Account(any_server)
    steps = [
        {"id": "approval", "type": "wait", "event": "approved", "timeout_seconds": 3600},
        step("ship", "approval"),
    ]
    assert (
        acc("flows", "create", "-f", str(write_flow(tmp_path / "f.json", "ship", steps))).exit_code
        == 0
    )
    first = acc.json("flows", "run", "ship", "--input", "[1, 2]")
    assert first["status"] == "waiting" and first["input"] == [1, 2]
    waiting = acc("runs", "show", first["id"])
    assert "waiting" in next(x for x in waiting.stdout.splitlines() if "approval" in x)

    resumed = acc("runs", "event", first["id"], "approved", "--data", '{"by": "ana"}')
    assert resumed.exit_code == 0, resumed.output
    assert f"Event approved resumed approval of run {first['id']}" in resumed.stdout
    again = acc("runs", "event", first["id"], "approved")
    assert again.exit_code == 0 and "no step of run" in again.stderr
    worker = acc.worker({"ship": lambda flow: {"success": True, "output": flow["parents"]}}, 1)
    ended = acc("runs", "wait", first["id"])
    assert ended.exit_code == 0, ended.output
    assert worker.finished() == ["ship"]
    assert acc.run(first["id"])["steps"]["ship"]["output"] == {"approval": {"by": "ana"}}

    # --wait is bounded: a run still waiting after --timeout exits 5
    still = acc("flows", "run", "ship", "--wait", "--timeout", "0.5")
    fails(still, 5, "is still waiting after 0.5s")
    second = acc.json("runs", "list", "--status", "waiting")["runs"][0]["id"]
    cancelled = acc("runs", "cancel", second)
    assert cancelled.exit_code == 0, cancelled.output
    assert f"Cancelled run {second}: cancelled approval" in cancelled.stdout
    assert acc.run(second)["status"] == "cancelled"
    fails(acc("runs", "cancel", second), 1, "(409 flow_run_finished)")
    fails(acc("runs", "event", second, "approved"), 1, "(409 flow_run_finished)")

    # a run cancelled while --wait waits for it: exit 4
    def cancel_when_waiting() -> None:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            runs = acc.http.get("/v1/flow-runs", params={"status": "waiting"}).json()["runs"]
            if runs:
                acc.http.post(f"/v1/flow-runs/{runs[0]['id']}/cancel")
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_when_waiting, daemon=True)
    canceller.start()
    third = acc("flows", "run", "ship", "--wait", "--timeout", str(BOUND))
    canceller.join(BOUND)
    fails(third, 4, "cancelled (steps: approval")


# definitions: YAML, stdin, show, update, delete, idempotency ------------------------------------
FLOW_YAML = """\
name: review
description: first draft
input_schema: {type: object, required: [doc]}
steps:
  - id: draft
    payload: {task: draft}
  - id: approve
    needs: [draft]
    type: wait
    event: approved
    timeout_seconds: 600
"""


def test_yaml_definitions_show_update_and_delete(account: Account, tmp_path: Path) -> None:
    (tmp_path / "review.yaml").write_text(FLOW_YAML)
    created = account("flows", "create", "-f", str(tmp_path / "review.yaml"))
    assert created.exit_code == 0, created.output
    flow = account.json("flows", "show", "review")
    assert flow["input_schema"] == {"type": "object", "required": ["doc"]}
    assert [s["id"] for s in flow["steps"]] == ["draft", "approve"]
    assert account.json("flows", "show", flow["id"]) == flow
    shown = account("flows", "show", "review")
    assert "wait for approved (600s)" in shown.stdout and "worker task=draft" in shown.stdout

    changed = FLOW_YAML.replace("first draft", "second draft")
    updated = account("flows", "update", "review", "-f", "-", input=changed)
    assert updated.exit_code == 0, updated.output
    assert account.json("flows", "show", "review")["description"] == "second draft"
    from_stdin = account("flows", "create", "-f", "-", input=changed.replace("review", "other"))
    assert from_stdin.exit_code == 0, from_stdin.output

    keyed = ("flows", "run", "review", "--input", '{"doc": 1}', "--idempotency-key", "k1")
    run = account.json(*keyed)
    assert account.json(*keyed)["id"] == run["id"]
    assert "defined now" not in account("runs", "show", run["id"]).stdout
    unchained = FLOW_YAML.replace("    needs: [draft]\n", "")
    assert account("flows", "update", "review", "-f", "-", input=unchained).exit_code == 0
    # the run keeps the needs it started with, whatever the flow says now
    assert "defined now" not in account("runs", "show", run["id"]).stdout
    assert account.json("runs", "show", run["id"])["steps"]["approve"]["needs"] == ["draft"]
    fails(account("flows", "delete", "review", "--yes"), 1, "(409 flow_has_open_runs)")
    assert account("runs", "cancel", run["id"]).exit_code == 0
    refused = account("flows", "delete", "review", input="n\n")
    assert refused.exit_code == 1 and account.json("flows", "show", "review")["id"] == flow["id"]
    deleted = account("flows", "delete", "review", "--yes")
    assert deleted.exit_code == 0 and f"Deleted flow {flow['id']}" in deleted.stdout
    assert [f["name"] for f in account.json("flows", "list")["flows"]] == ["other"]


# errors -----------------------------------------------------------------------------------------
def test_errors_are_clear_messages_with_their_exit_codes(account: Account, tmp_path: Path) -> None:
    unknown_step = write_flow(tmp_path / "bad.json", "bad", [step("a"), step("b", "nowhere")])
    refused = account("flows", "create", "-f", str(unknown_step))
    fails(refused, 1, "Step 'b' needs 'nowhere', which is not a step (400 invalid_flow)")
    assert refused.stdout == ""
    cycle = write_flow(tmp_path / "cycle.json", "cycle", [step("a", "b"), step("b", "a")])
    fails(account("flows", "create", "-f", str(cycle)), 1, "Step 'a' is part of a cycle")
    hook = write_flow(tmp_path / "hook.yaml", "hook", [step("a"), step("b", transport="webhook")])
    fails(account("flows", "create", "-f", str(hook)), 1, "Step 'b': ")
    fails(account("flows", "create", "-f", str(hook)), 1, "callback.url is required")
    assert account.json("flows", "list")["flows"] == []

    (tmp_path / "broken.json").write_text('{"name": "x", "steps": [')
    fails(account("flows", "create", "-f", str(tmp_path / "broken.json")), 2, "is not valid JSON")
    (tmp_path / "broken.yaml").write_text("name: x\nsteps: [a\n")
    fails(
        account("flows", "create", "-f", str(tmp_path / "broken.yaml")),
        2,
        "is not valid YAML: expected ',' or ']'",
    )
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    fails(account("flows", "create", "-f", str(tmp_path / "list.yaml")), 2, "must hold an object")
    fails(account("flows", "create", "-f", str(tmp_path / "none.json")), 2, "cannot read")

    fails(account("flows", "run", "nope"), 1, "no flow is named 'nope'")
    fails(account("flows", "show", "flw_000000000000"), 1, "no flow is named 'flw_000000000000'")
    fails(account("runs", "list", "--flow", "nope"), 1, "no flow is named 'nope'")
    fails(account("runs", "show", "run_000000000000"), 1, "(404")
    fails(account("runs", "cancel", "run_000000000000"), 1, "(404")
    fails(account("runs", "show", "../flows"), 1, "(404")  # an id is one path segment

    schema = {"type": "object", "required": ["order"]}
    good = write_flow(tmp_path / "good.json", "good", [step("a")], input_schema=schema)
    assert account("flows", "create", "-f", str(good)).exit_code == 0
    fails(account("flows", "run", "good", "--input", "{oops"), 2, "not valid JSON")
    fails(account("flows", "run", "good", "--input", '{"x": 1}'), 1, "'order' is a required")
    fails(account("runs", "event", "run_000000000000", "go", "--data", "[1,"), 2, "not valid JSON")
    fails(account("runs", "list", "--status", "done"), 2, "'done' is not one of")
    (tmp_path / "input.json").write_text('{"order": 3}')
    from_file = account.json("flows", "run", "good", "--input", f"@{tmp_path / 'input.json'}")
    assert from_file["input"] == {"order": 3}
    assert account.json("runs", "list", "--flow", "good")["total"] == 1
    no_key = CliRunner().invoke(app, ["flows", "list"], env={"CUEFLOW_API_KEY": ""})
    assert no_key.exit_code == 2 and "no API key" in no_key.stderr
