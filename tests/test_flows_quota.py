"""Flow steps and the monthly execution limit, on both stores: step executions count in usage
like any execution, and a step whose executions would pass the limit fails at once (type
``execution_limit``, not retried), ending its run ``failed`` instead of leaving it waiting,
while a compensation step that fits still runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cueflow.clock import FakeClock
from tests.conftest import register
from tests.flows_support import claim_next, create_flow, finish, run_of, start, task, work
from tests.webhook_support import api, open_engine


@pytest.fixture
async def limited(database_url: str, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an engine with a monthly execution limit of 3."""
    async with (
        open_engine(database_url, clock, monthly_execution_limit=3) as engine,
        api(engine) as client,
    ):
        yield client


async def _used(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await client.get("/v1/usage", headers=auth)
    assert response.status_code == 200, response.text
    used: int = response.json()["executions"]["used"]
    return used


async def test_step_executions_count_and_the_step_past_the_limit_fails_its_run(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    steps = [task("a"), task("b", "a"), task("c", "b"), task("d", "c")]
    flow = await create_flow(limited, auth, steps)
    run = await start(limited, auth, flow["id"])
    assert await _used(limited, auth) == 1
    for step in ("a", "b", "c"):
        await work(limited, auth, step, output=step)
    assert await _used(limited, auth) == 3
    done = await run_of(limited, auth, run["id"])
    assert done["status"] == "failed"
    error = done["steps"]["d"]["error"]
    assert error["type"] == "execution_limit"
    assert error["reason"] == "Monthly execution limit reached (3 executions this month)"
    assert done["steps"]["d"]["execution_ids"] == []
    assert await claim_next(limited, auth) is None
    assert await _used(limited, auth) == 3


async def test_a_for_each_that_would_pass_the_limit_fails_before_creating_any_item(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    flow = await create_flow(
        limited,
        auth,
        [task("list"), task("each", "list", for_each="list"), task("undo", "each", when="failure")],
    )
    run = await start(limited, auth, flow["id"])
    await work(limited, auth, "list", output=[1, 2, 3])
    refused = await run_of(limited, auth, run["id"])
    assert refused["steps"]["each"]["status"] == "failed"
    assert refused["steps"]["each"]["error"]["type"] == "execution_limit"
    assert refused["steps"]["each"]["items"] == []
    assert refused["steps"]["undo"]["status"] == "running", "the compensation step fits"
    assert await _used(limited, auth) == 2
    await work(limited, auth, "undo")
    done = await run_of(limited, auth, run["id"])
    assert done["status"] == "failed"
    assert done["steps"]["undo"]["status"] == "succeeded"


async def test_a_retry_past_the_limit_is_not_made_and_the_step_fails_saying_why(
    limited: httpx.AsyncClient,
) -> None:
    auth = await register(limited)
    flaky = task("a", retry={"max_attempts": 5, "backoff_minutes": [0]})
    flow = await create_flow(limited, auth, [flaky])
    run = await start(limited, auth, flow["id"])
    for _ in range(3):
        item = await claim_next(limited, auth, "a")
        assert item is not None
        response = await finish(limited, auth, item["execution_id"], success=False, error="boom")
        assert response.status_code == 200, response.text
    done = await run_of(limited, auth, run["id"])
    assert done["status"] == "failed"
    step = done["steps"]["a"]
    assert step["attempts"] == 3
    assert step["error"]["type"] == "execution_limit"
    assert step["error"]["reason"].endswith("attempt 3 failed: boom")
    assert await claim_next(limited, auth) is None
