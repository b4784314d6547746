"""Helpers of the flow tests: create a flow, start a run, work a step through the worker
protocol (claim next, outcome) over HTTP."""

from __future__ import annotations

from typing import Any

import httpx


def task(step_id: str, *needs: str, **extra: Any) -> dict[str, Any]:
    """A worker step with ``payload.task`` = its id."""
    return {
        "id": step_id,
        "needs": list(needs),
        "transport": "worker",
        "payload": {"task": step_id},
        **extra,
    }


async def create_flow(
    client: httpx.AsyncClient, auth: dict[str, str], steps: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    """``POST /v1/flows``; asserts 201."""
    body = {"name": extra.pop("name", "flow"), "steps": steps, **extra}
    response = await client.post("/v1/flows", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def start(
    client: httpx.AsyncClient, auth: dict[str, str], flow_id: str, **body: Any
) -> dict[str, Any]:
    """``POST /v1/flows/{id}/runs``; asserts 201."""
    response = await client.post(f"/v1/flows/{flow_id}/runs", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


async def run_of(client: httpx.AsyncClient, auth: dict[str, str], run_id: str) -> dict[str, Any]:
    """``GET /v1/flow-runs/{id}``."""
    response = await client.get(f"/v1/flow-runs/{run_id}", headers=auth)
    assert response.status_code == 200, response.text
    return response.json()


async def claim_next(
    client: httpx.AsyncClient, auth: dict[str, str], task: str | None = None
) -> dict[str, Any] | None:
    """Claim the oldest due execution (of ``task``) as worker ``w1`` through the batch claim;
    returns it with its payload, or ``None``."""
    body: dict[str, Any] = {"worker_id": "w1", "limit": 1}
    if task is not None:
        body["task"] = task
    response = await client.post("/v1/executions/claims", json=body, headers=auth)
    assert response.status_code == 200, response.text
    claimed = response.json()["claimed"]
    return claimed[0] if claimed else None


async def finish(
    client: httpx.AsyncClient, auth: dict[str, str], execution_id: str, **body: Any
) -> httpx.Response:
    """Report an outcome (``success`` defaults to true)."""
    body.setdefault("success", True)
    return await client.post(f"/v1/executions/{execution_id}/outcome", json=body, headers=auth)


async def work(
    client: httpx.AsyncClient, auth: dict[str, str], step: str, **outcome: Any
) -> dict[str, Any]:
    """Claim the pending execution of ``step`` and report ``outcome``; returns the claimed
    item (with its payload)."""
    item = await claim_next(client, auth, step)
    assert item is not None, f"nothing to claim for {step}"
    response = await finish(client, auth, item["execution_id"], **outcome)
    assert response.status_code == 200, response.text
    return item
