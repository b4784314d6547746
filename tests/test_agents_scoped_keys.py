"""The agent toolkit and ``cueflow mcp`` with a worker-scoped key (``docs/operations.md``,
"Scoped keys"): an agent session polls, claims and reports with it, over REST and on an
embedded engine, and the management tools it is not allowed are refused with the REST API's
``insufficient_scope``, never carried out."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from cueflow.agents import WorkerSession
from cueflow.agents.engine_client import EngineWorkerClient
from cueflow.agents.http_client import HttpWorkerClient
from cueflow.agents.mcp_server import build_mcp_server
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user, state
from tests.factories import make_worker_cue, manual_run
from tests.mcp_support import in_process, over_http
from tests.server import cueflow_server
from tests.test_agents_mcp_http import mcp_http
from tests.test_hostile_input import app_of


async def worker_key(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    response = await client.post("/v1/auth/keys", json={"scope": "worker"}, headers=auth)
    assert response.status_code == 201, response.text
    return str(response.json()["api_key"])


async def test_an_agent_session_claims_and_reports_with_a_worker_key_over_rest(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload={"task": "triage"})
    run = await manual_run(client, auth, cue["id"])
    key = await worker_key(client, auth)
    transport = httpx.ASGITransport(app=app_of(client))
    worker = HttpWorkerClient("http://cueflow.test", key, transport=transport)
    async with WorkerSession(worker, task="triage") as session:
        [item] = await session.poll()
        lease, _ = await session.claim(item["execution_id"])
        assert lease.execution_id == run["id"]
        await session.report(run["id"], {"success": True, "result": "done"})
        assert (await session.get(run["id"]))["status"] == "success"
    await worker.aclose()
    workers = (await client.get("/v1/workers", headers=auth)).json()["workers"]
    assert [w["worker_id"] for w in workers] == [worker.worker_id]


async def test_mcp_tools_on_an_engine_do_what_a_worker_key_allows_and_no_more(
    engine: Engine, clock: FakeClock
) -> None:
    owner = await new_user(engine)
    [execution_id] = await due_executions(engine, clock, owner, [{"task": "t"}])
    created = await engine.create_api_key(owner, "worker", "agent")
    user = await engine.principal(created["api_key"])
    client = EngineWorkerClient(engine, user)
    server = build_mcp_server(client, include_management=True, allow_destructive=True)
    async with in_process(server) as mcp:
        [item] = (await mcp.ok("poll_executions"))["executions"]
        await mcp.ok("claim_execution", execution_id=item["execution_id"])
        await mcp.ok("report_outcome", execution_id=execution_id, success=True)
        assert (await mcp.ok("get_execution", execution_id=execution_id))["status"] == "success"
        cue_id = (await state(engine, owner, execution_id))["cue_id"]
        for tool, args in [
            ("delete_cue", {"cue_id": cue_id}),
            ("pause_cue", {"cue_id": cue_id}),
            ("list_cues", {}),
            ("create_cue", {"name": "x", "cron": "0 0 1 1 *"}),
        ]:
            assert "insufficient_scope" in await mcp.error(tool, **args), tool
    cue = await engine.get_cue(owner, cue_id)
    assert cue.id == cue_id  # still there, not paused either
    assert str(cue.status) != "paused"


async def test_cueflow_mcp_in_front_of_a_server_accepts_a_worker_key(tmp_path: Path) -> None:
    with cueflow_server(f"sqlite:///{tmp_path / 'rest.db'}", tmp_path) as base:
        email = f"scoped-{uuid.uuid4().hex[:6]}@example.com"
        owner = httpx.post(f"{base}/v1/auth/register", json={"email": email}).json()["api_key"]
        auth = {"Authorization": f"Bearer {owner}"}
        cue = httpx.post(
            f"{base}/v1/cues",
            json={
                "name": "scoped",
                "transport": "worker",
                "schedule": {"type": "recurring", "cron": "0 0 1 1 *"},
                "payload": {"task": "t"},
            },
            headers=auth,
        ).json()
        fired = httpx.post(f"{base}/v1/cues/{cue['id']}/fire", json={}, headers=auth).json()
        created = httpx.post(f"{base}/v1/auth/keys", json={"scope": "worker"}, headers=auth)
        key = created.json()["api_key"]
        with mcp_http(tmp_path, "--url", base, "--manage", "--tool-names", "cueapi") as url:
            async with asyncio.timeout(30), over_http(url, key) as mcp:
                await mcp.ok("cueapi_claim_execution", execution_id=fired["id"])
                await mcp.ok("cueapi_report_outcome", execution_id=fired["id"], success=True)
                refused = await mcp.error("cueapi_create_cue", name="r", cron="0 0 1 1 *")
                assert "insufficient_scope" in refused
        execution = httpx.get(f"{base}/v1/executions/{fired['id']}", headers=auth).json()
        assert execution["status"] == "success"
        assert [c["id"] for c in httpx.get(f"{base}/v1/cues", headers=auth).json()["cues"]] == [
            cue["id"]
        ]
