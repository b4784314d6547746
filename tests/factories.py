"""Factories for the REST API tests: each builds one piece of state through the API (a cue, an
execution at a given point of its life) and returns it, so a test's set-up is one line that
names what it needs.

A factory checks that its own requests succeed; what a test asserts stays in the test.
Times are those of the ``clock`` fixture (see :mod:`tests.helpers`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.helpers import (
    claim,
    create_cue,
    executions_of,
    get_execution,
    patched_cue,
    report,
)


def once_schedule(clock: FakeClock, in_seconds: int = 60) -> dict[str, str]:
    """A one-time schedule due ``in_seconds`` from the fake now."""
    return {"type": "once", "at": (clock.now() + timedelta(seconds=in_seconds)).isoformat()}


async def make_worker_cue(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """Create a worker cue (every five minutes unless overridden); returns the response body."""
    response = await create_cue(client, auth, **overrides)
    assert response.status_code == 201, response.text
    return response.json()


async def make_once_cue(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    clock: FakeClock,
    in_seconds: int = 60,
    **overrides: Any,
) -> dict[str, Any]:
    """Create a one-time worker cue due ``in_seconds`` from the fake now."""
    return await make_worker_cue(
        client, auth, schedule=once_schedule(clock, in_seconds), **overrides
    )


async def make_paused_cue(
    client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any
) -> dict[str, Any]:
    """Create a worker cue and pause it; returns the cue as the pause answered it."""
    cue = await make_worker_cue(client, auth, **overrides)
    return await patched_cue(client, auth, cue["id"], {"status": "paused"})


async def fire(engine: Engine, clock: FakeClock, seconds: float) -> int:
    """Advance the fake clock by ``seconds`` and fire whatever is due."""
    clock.advance(seconds)
    return await engine.fire_due()


async def manual_run(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, **body: Any
) -> dict[str, Any]:
    """``POST /v1/cues/{id}/fire`` (a run started by hand) that must succeed; returns the run."""
    response = await client.post(f"/v1/cues/{cue_id}/fire", json=body, headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def due_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """Create a worker cue firing every five minutes, let it fire once (at 12:05 on a fresh
    clock) and return its pending execution."""
    cue = await make_worker_cue(client, auth, **overrides)
    clock.set(datetime.fromisoformat(cue["next_run"].replace("Z", "+00:00")))
    assert await engine.fire_due() >= 1
    [execution] = await executions_of(client, auth, cue["id"])
    assert execution["status"] == "pending"
    return execution


async def claimed_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    worker_id: str = "w1",
    **overrides: Any,
) -> dict[str, Any]:
    """A due execution claimed by ``worker_id``; returns the execution as it was before."""
    execution = await due_execution(client, engine, clock, auth, **overrides)
    response = await claim(client, auth, execution["id"], worker_id)
    assert response.status_code == 200, response.text
    return execution


async def reported_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    outcome: dict[str, Any] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """A claimed execution whose worker reported ``outcome`` (``{"success": True}`` unless
    given); returns the execution as it is after the report."""
    execution = await claimed_execution(client, engine, clock, auth, **overrides)
    response = await report(client, auth, execution["id"], **(outcome or {"success": True}))
    assert response.status_code == 200, response.text
    return await get_execution(client, auth, execution["id"])


async def missed_execution(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    **overrides: Any,
) -> dict[str, Any]:
    """A due execution no worker claimed in time, swept to ``missed``; returns it as it is
    then."""
    execution = await due_execution(client, engine, clock, auth, **overrides)
    clock.advance(engine.settings.worker_unclaimed_timeout_seconds + 1)
    await engine.sweep()
    missed = await get_execution(client, auth, execution["id"])
    assert missed["status"] == "missed"
    return missed
