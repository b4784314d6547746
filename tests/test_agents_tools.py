"""The langchain-core tools (``CueflowToolkit``) against a live engine, embedded and over HTTP:
JSON object results, refusals as recoverable tool errors, no lease or key in what the model
sees, management tools only when asked for."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cueflow.agents import CueflowToolkit, HttpWorkerClient, WorkerSession
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state
from tests.conftest import register

WORKER_TOOLS = [
    "poll_executions",
    "claim_execution",
    "report_outcome",
    "release_execution",
    "get_execution",
]

FLOW_TOOLS = {"list_flows", "start_flow_run", "get_flow_run", "send_flow_event"}
"""The flow tools: management tools, so only with ``include_management``."""


class Kit:
    """A toolkit's tools by name, called the way a model's tool calls are."""

    def __init__(self, toolkit: CueflowToolkit) -> None:
        self.toolkit = toolkit
        self.tools: dict[str, BaseTool] = {t.name: t for t in toolkit.get_tools()}

    async def call(self, tool: str, /, **args: Any) -> ToolMessage:
        call = {"name": tool, "args": args, "id": f"call-{uuid.uuid4().hex[:6]}"}
        reply = await self.tools[tool].ainvoke({**call, "type": "tool_call"})
        assert isinstance(reply, ToolMessage)
        return reply

    async def ok(self, tool: str, /, **args: Any) -> dict[str, Any]:
        reply = await self.call(tool, **args)
        assert reply.status == "success", reply.content
        result = json.loads(reply.text)
        assert isinstance(result, dict)
        return result

    async def error(self, tool: str, /, **args: Any) -> str:
        reply = await self.call(tool, **args)
        assert reply.status == "error", reply.content
        return reply.text


@pytest.fixture
async def kit(engine: Engine) -> AsyncIterator[Kit]:
    user = await new_user(engine)
    toolkit = CueflowToolkit.for_engine(engine, user, worker_id="agent-1")
    async with toolkit:
        yield Kit(toolkit)


async def test_worker_tools_poll_claim_and_report_with_evidence(
    engine: Engine, clock: FakeClock, kit: Kit
) -> None:
    user = kit.toolkit.session.client.user  # type: ignore[attr-defined]
    ids = await due_executions(engine, clock, user, [{"task": "a", "n": 1}, {"task": "b"}])
    assert sorted(kit.tools) == sorted(WORKER_TOOLS)
    polled = await kit.ok("poll_executions", limit=1)
    assert polled["count"] == 1
    assert polled["executions"][0]["execution_id"] == ids[0]
    claimed = await kit.ok("claim_execution")
    assert claimed == {
        "claimed": True,
        "already_held": False,
        "execution_id": ids[0],
        "cue_id": claimed["cue_id"],
        "cue_name": claimed["cue_name"],
        "task": "a",
        "attempt": 1,
        "scheduled_for": polled["executions"][0]["scheduled_for"],
        "payload": {"task": "a", "n": 1},
    }
    assert (await kit.ok("claim_execution", execution_id=ids[0]))["already_held"] is True
    assert "report an outcome for (or release)" in await kit.error("claim_execution")
    report = {"success": True, "result": "done", "external_id": "PR-7",
              "result_url": "https://example.com/pr/7", "summary": "opened PR"}  # fmt: skip
    recorded = await kit.ok("report_outcome", execution_id=ids[0], **report)
    assert recorded == {
        "execution_id": ids[0],
        "recorded": True,
        "duplicate": False,
        "outcome_state": "reported_success",
    }
    assert (await kit.ok("report_outcome", execution_id=ids[0], **report))["duplicate"] is True
    changed = await kit.error("report_outcome", execution_id=ids[0], success=False)
    assert "already reported" in changed
    row = await state(engine, user, ids[0])
    assert row["status"] == "success"
    assert row["evidence"]["external_id"] == "PR-7"
    assert row["evidence"]["result_url"] == "https://example.com/pr/7"
    execution = await kit.ok("get_execution", execution_id=ids[0])
    assert execution["status"] == "success"
    assert execution["outcome"]["result"] == "done"


async def test_refusals_come_back_as_tool_errors_the_model_can_act_on(
    engine: Engine, clock: FakeClock, kit: Kit
) -> None:
    user = kit.toolkit.session.client.user  # type: ignore[attr-defined]
    [execution_id] = await due_executions(engine, clock, user, [{"task": "a"}])
    unknown = str(uuid.uuid4())
    assert "claim_failed" in await kit.error("claim_execution", execution_id=unknown)
    assert "execution_not_found" in await kit.error("get_execution", execution_id=unknown)
    assert "claim it first" in await kit.error(
        "report_outcome", execution_id=execution_id, success=True
    )
    assert "claim it first" in await kit.error(
        "release_execution", execution_id=execution_id, reason="busy"
    )
    invalid = await kit.error("poll_executions", limit=5000)
    assert invalid.startswith("invalid arguments: limit:")
    assert "5000" not in invalid
    secret_url = "not-a-url-SECRET"
    invalid = await kit.error(
        "report_outcome", execution_id=execution_id, success=True, result_url=secret_url
    )
    assert "result_url" in invalid
    assert "SECRET" not in invalid
    assert "bogus" in await kit.error("poll_executions", bogus=1)


async def test_another_workers_claim_cannot_be_taken_or_reported(
    engine: Engine, clock: FakeClock, kit: Kit
) -> None:
    user = kit.toolkit.session.client.user  # type: ignore[attr-defined]
    [execution_id] = await due_executions(engine, clock, user, [{"task": "a"}])
    await engine.claim(user, "someone-else", execution_id)
    assert "no executions are available" in await kit.error("claim_execution")
    assert "claim_failed" in await kit.error("claim_execution", execution_id=execution_id)
    assert "claim it first" in await kit.error(
        "report_outcome", execution_id=execution_id, success=True
    )
    assert (await state(engine, user, execution_id))["claimed_by_worker"] == "someone-else"


async def test_agents_keep_to_a_concurrency_limit_through_the_same_claims(
    engine: Engine, clock: FakeClock, kit: Kit
) -> None:
    user = kit.toolkit.session.client.user  # type: ignore[attr-defined]
    shared = {"concurrency": {"limit": 1, "key": "llm-provider"}}
    first, second = await due_executions(engine, clock, user, [{"n": 1}, {"n": 2}], **shared)
    other = CueflowToolkit.for_engine(engine, user, worker_id="agent-2")
    async with other:
        rival = Kit(other)
        assert (await kit.ok("claim_execution"))["execution_id"] == first
        # the key is full: the other agent finds nothing to poll or claim, and a claim by id
        # says why, as a tool error the model can act on
        assert (await rival.ok("poll_executions"))["count"] == 0
        assert "no executions are available" in await rival.error("claim_execution")
        assert "concurrency_limited" in await rival.error("claim_execution", execution_id=second)
        assert (await state(engine, user, second))["status"] == "pending"

        await kit.ok("report_outcome", execution_id=first, success=True)

        assert (await rival.ok("claim_execution"))["execution_id"] == second


async def test_release_tool_gives_the_claim_back(
    engine: Engine, clock: FakeClock, kit: Kit
) -> None:
    user = kit.toolkit.session.client.user  # type: ignore[attr-defined]
    [execution_id] = await due_executions(engine, clock, user, [{"task": "a"}])
    await kit.ok("claim_execution", execution_id=execution_id)
    released = await kit.ok("release_execution", execution_id=execution_id, reason="need a human")
    assert released == {
        "execution_id": execution_id,
        "released": True,
        "status": "pending",
        "next_attempt_at": "2026-01-05T12:02:00Z",  # the cue's backoff: a minute
    }
    row = await state(engine, user, execution_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)


async def test_claims_still_held_are_released_when_the_toolkit_closes(
    engine: Engine, clock: FakeClock
) -> None:
    user = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, user, [{"task": "a"}])
    async with CueflowToolkit.for_engine(engine, user) as toolkit:
        await Kit(toolkit).ok("claim_execution")
        assert (await state(engine, user, execution_id))["status"] == "delivering"
    row = await state(engine, user, execution_id)
    assert row["status"] == "pending"
    assert "worker stopped" in row["error_message"]


async def test_management_tools_are_opt_in_and_delete_needs_the_destructive_flag(
    engine: Engine,
) -> None:
    user = await new_user(engine)
    managing = Kit(CueflowToolkit.for_engine(engine, user, include_management=True))
    assert "create_cue" in managing.tools and "delete_cue" not in managing.tools
    assert set(managing.tools) >= FLOW_TOOLS
    assert not FLOW_TOOLS & set(Kit(CueflowToolkit.for_engine(engine, user)).tools)
    assert (
        "delete_cue"
        not in Kit(CueflowToolkit.for_engine(engine, user, allow_destructive=True)).tools
    )
    admin = Kit(
        CueflowToolkit.for_engine(engine, user, include_management=True, allow_destructive=True)
    )
    assert "delete_cue" in admin.tools
    both = await admin.error("create_cue", name="x", cron="0 9 * * *", interval_seconds=60)
    assert "exactly one of cron, at or interval_seconds" in both
    cue = await admin.ok("create_cue", name="daily", cron="0 9 * * *",
                         timezone="Europe/Paris", payload={"task": "report"})  # fmt: skip
    assert cue["schedule"] == {"type": "recurring", "cron": "0 9 * * *", "timezone": "Europe/Paris"}
    assert "duplicate" in (await admin.error("create_cue", name="daily", cron="0 9 * * *")).lower()
    assert (await admin.ok("pause_cue", cue_id=cue["id"]))["status"] == "paused"
    assert (await admin.ok("list_cues", status="paused"))["total"] == 1
    assert (await admin.ok("resume_cue", cue_id=cue["id"]))["status"] == "active"
    assert (await admin.ok("list_executions", cue_id=cue["id"]))["total"] == 0
    assert await admin.ok("delete_cue", cue_id=cue["id"]) == {"cue_id": cue["id"], "deleted": True}
    assert "not found" in (await admin.error("get_cue", cue_id=cue["id"])).lower()


async def test_callback_header_values_never_reach_the_model(engine: Engine) -> None:
    user = await new_user(engine)
    callback = {"url": "https://93.184.216.34/hook", "headers": {"Authorization": "Bearer s3cr3t"}}
    schedule = {"type": "recurring", "cron": "0 9 * * *"}
    spec = {"name": "hook", "transport": "webhook", "schedule": schedule, "callback": callback}
    await engine.create_cue(user, spec)
    kit = Kit(CueflowToolkit.for_engine(engine, user, include_management=True))
    listed = await kit.call("list_cues")
    assert "s3cr3t" not in listed.text
    assert json.loads(listed.text)["cues"][0]["callback"]["headers"] == {"Authorization": "***"}


def _without_release(app: ASGIApp) -> ASGIApp:
    """``app`` as a server without the release extension (CueAPI) looks."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/release"):
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


@pytest.mark.parametrize("release_endpoint", [True, False], ids=["cueflow", "no-release"])
async def test_the_same_tools_work_over_http(
    engine: Engine, clock: FakeClock, release_endpoint: bool
) -> None:
    app = create_app(engine, manage_engine=False)
    asgi = app if release_endpoint else _without_release(app)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
    ) as plain:
        key = (await register(plain))["Authorization"].removeprefix("Bearer ")
    user = await engine.principal(key)
    ids = await due_executions(engine, clock, user, [{"task": "a"}, {"task": "b"}])
    client = HttpWorkerClient(
        "http://cueflow.test", key, worker_id="http-agent", transport=httpx.ASGITransport(app=asgi)
    )
    assert key not in repr(client)
    async with CueflowToolkit(session=WorkerSession(client)) as toolkit:
        kit = Kit(toolkit)
        assert [e["execution_id"] for e in (await kit.ok("poll_executions"))["executions"]] == ids
        await kit.ok("claim_execution", execution_id=ids[0])
        await kit.ok("report_outcome", execution_id=ids[0], success=True, result="ok")
        assert "claim_failed" in await kit.error("claim_execution", execution_id=str(uuid.uuid4()))
        await kit.ok("claim_execution", execution_id=ids[1])
        released = await kit.ok("release_execution", execution_id=ids[1], reason="later")
    await client.aclose()
    assert (await state(engine, user, ids[0]))["status"] == "success"
    second = await state(engine, user, ids[1])
    if release_endpoint:
        assert released["released"] is True
        assert second["status"] == "pending"
    else:
        assert released["released"] is False
        assert "recorded as a failure" in released["note"]
        assert (second["status"], second["outcome_error"]) == (
            "failed",
            "released by worker: later",
        )


def test_the_core_package_imports_neither_langchain_nor_mcp() -> None:
    code = (
        "import sys, cueflow, cueflow.cli, cueflow.api, cueflow.agents, cueflow.agents.tools\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'mcp')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
