"""Batches of outcomes over the same flow's steps, sent at once by two workers.

A batch bumps the run count of each step's hidden cue. Two batches holding executions of steps
``a`` and ``b`` in different numbers (one ``a`` and two ``b``, against one ``b`` and two ``a``)
used to update the two cue rows in opposite orders, and PostgreSQL answered one of them with a
deadlock: a 500, the outcomes lost to the worker (seen by ``python -m benchmarks --scenarios
flows``). The test widens the window between the two updates so that the two transactions
overlap on every round; every outcome must be recorded and every run must move on.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from cueflow.sql.cue_queries import CueQueries
from tests.flows_support import create_flow, run_of, start, task

ROUNDS = 3


@pytest.fixture
def slow_cue_bumps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each bump of cue run counts waits a little first, so concurrent batches interleave."""
    bump = CueQueries.bump_cues

    async def slow(self: CueQueries, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.05)
        return await bump(self, *args, **kwargs)

    monkeypatch.setattr(CueQueries, "bump_cues", slow)


async def claim(client: httpx.AsyncClient, auth: dict[str, str], step: str, n: int) -> list[Any]:
    """Claim ``n`` executions of ``step``."""
    body = {"worker_id": "w", "limit": n, "task": step}
    response = await client.post("/v1/executions/claims", json=body, headers=auth)
    assert response.status_code == 200, response.text
    claimed = response.json()["claimed"]
    assert len(claimed) == n
    return list(claimed)


def batch(items: list[Any]) -> dict[str, Any]:
    """A batch of successful outcomes for ``items``."""
    return {"outcomes": [{"execution_id": i["execution_id"], "success": True} for i in items]}


async def test_two_batches_over_the_same_steps_at_once_both_record_every_outcome(
    client: httpx.AsyncClient, auth: dict[str, str], slow_cue_bumps: None
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    run_ids: list[str] = []
    for _ in range(ROUNDS):
        run_ids += [(await start(client, auth, flow["id"]))["id"] for _ in range(6)]
        a = await claim(client, auth, "a", 6)
        response = await client.post("/v1/executions/outcomes", json=batch(a[:3]), headers=auth)
        assert response.status_code == 200, response.text
        b = await claim(client, auth, "b", 3)
        answers = await asyncio.gather(
            client.post("/v1/executions/outcomes", json=batch([a[3], b[0], b[1]]), headers=auth),
            client.post("/v1/executions/outcomes", json=batch([b[2], a[4], a[5]]), headers=auth),
        )
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert all(r["outcome_recorded"] for r in answer.json()["results"]), answer.text
        rest = await claim(client, auth, "b", 3)
        response = await client.post("/v1/executions/outcomes", json=batch(rest), headers=auth)
        assert response.status_code == 200, response.text
    runs = [await run_of(client, auth, run_id) for run_id in run_ids]
    assert {r["status"] for r in runs} == {"succeeded"}
