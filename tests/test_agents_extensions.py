"""The agent worker uses cueflow's batch claim (one request, long-polling for work) when the
server offers it, and falls back to poll-and-claim against a server that does not."""

from __future__ import annotations

import asyncio

import httpx
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from cueflow.agents import EngineWorkerClient, HttpWorkerClient, WorkerSession
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.agents_support import due_executions, new_user
from tests.conftest import register


def _recording(app: ASGIApp, paths: list[str], batch: bool) -> ASGIApp:
    """``app`` that records each request's method and path, and answers 404 to the batch
    claim endpoint when ``batch`` is off (an older server)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            paths.append(f"{scope['method']} {scope['path']}")
            if not batch and scope["path"] == "/v1/executions/claims":
                await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
                return
        await app(scope, receive, send)

    return wrapped


async def _http_session(
    engine: Engine, paths: list[str], batch: bool
) -> tuple[WorkerSession, HttpWorkerClient, str]:
    app = create_app(engine, manage_engine=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cueflow.test"
    ) as plain:
        key = (await register(plain))["Authorization"].removeprefix("Bearer ")
    client = HttpWorkerClient(
        "http://cueflow.test",
        key,
        worker_id="agent-x",
        transport=httpx.ASGITransport(app=_recording(app, paths, batch)),
    )
    return WorkerSession(client, max_claims=2), client, key


async def test_a_batch_claim_takes_the_oldest_in_one_request(
    engine: Engine, clock: FakeClock
) -> None:
    paths: list[str] = []
    session, client, key = await _http_session(engine, paths, batch=True)
    user = await engine.principal(key)
    ids = await due_executions(engine, clock, user, [{"task": "a", "n": 1}, {"task": "a"}])
    lease = await session.claim_next()
    assert lease is not None
    assert lease.execution_id == ids[0]
    assert session.describe(lease)["payload"] == {"task": "a", "n": 1}
    assert session.describe(lease)["attempt"] == 1
    assert paths == ["POST /v1/worker/heartbeat", "POST /v1/executions/claims"]
    execution = await engine.get_execution(user, ids[0])
    assert (execution.status, execution.claimed_by_worker) == ("delivering", "agent-x")
    await client.aclose()


async def test_an_older_server_is_polled_and_claimed_item_by_item(
    engine: Engine, clock: FakeClock
) -> None:
    paths: list[str] = []
    session, client, key = await _http_session(engine, paths, batch=False)
    user = await engine.principal(key)
    ids = await due_executions(engine, clock, user, [{"task": "a"}, {"task": "a"}])
    first = await session.claim_next()
    second = await session.claim_next()
    assert [first.execution_id, second.execution_id] == ids  # type: ignore[union-attr]
    # The extension is probed once, then the standard protocol is used.
    assert paths.count("POST /v1/executions/claims") == 1
    assert paths.count("GET /v1/executions/claimable") == 2
    await client.aclose()


async def test_the_agent_worker_long_polls_for_work(engine: Engine, clock: FakeClock) -> None:
    user = await new_user(engine)
    cue, _ = await engine.create_cue(
        user,
        {
            "name": "late",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "0 3 * * *"},
            "payload": {"task": "late"},
        },
    )
    session = WorkerSession(EngineWorkerClient(engine, user, worker_id="agent-y"))
    waiting = asyncio.create_task(session.claim_next(wait=60))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    # A manual fire creates work now, without moving the clock past the wait.
    fired = await engine.fire_cue(user, cue.id)
    lease = await asyncio.wait_for(waiting, 10)
    assert lease is not None
    assert lease.execution_id == fired.id
