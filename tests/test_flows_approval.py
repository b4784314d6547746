"""Approvals over HTTP, on both stores: a wait step's event data is checked against its
``output_schema``, so Approve (``{"approved": true}``) resumes the run and Reject
(``{"approved": false}``) fails the wait step and the run, while a ``when: "failure"`` step
still runs."""

from __future__ import annotations

from typing import Any

import httpx

from tests.flows_support import claim_next, create_flow, run_of, start, task, work

APPROVED_ONLY = {
    "type": "object",
    "required": ["approved"],
    "properties": {"approved": {"const": True}},
}


def approval(**extra: Any) -> dict[str, Any]:
    """A wait step ``review`` after ``draft`` waiting for the event ``reviewed``."""
    return {
        "id": "review",
        "needs": ["draft"],
        "type": "wait",
        "event": "reviewed",
        "timeout_seconds": 3600,
        **extra,
    }


async def decide(
    client: httpx.AsyncClient, auth: dict[str, str], run_id: str, approved: bool
) -> dict[str, Any]:
    """Send the dashboard's approval event; asserts 200."""
    response = await client.post(
        f"/v1/flow-runs/{run_id}/events/reviewed",
        json={"data": {"approved": approved}},
        headers=auth,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_approve_resumes_the_run_and_hands_the_decision_to_the_next_step(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [task("draft"), approval(output_schema=APPROVED_ONLY), task("publish", "review")]
    flow = await create_flow(client, auth, steps)
    run = await start(client, auth, flow["id"])
    await work(client, auth, "draft", output={"text": "hello"})
    assert (await run_of(client, auth, run["id"]))["status"] == "waiting"

    answer = await decide(client, auth, run["id"], True)
    assert answer["resumed"] == ["review"]
    published = await work(client, auth, "publish")
    assert published["payload"]["flow"]["parents"] == {"review": {"approved": True}}
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    assert done["steps"]["review"]["output"] == {"approved": True}


async def test_reject_breaks_the_wait_steps_contract_and_fails_the_run(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [
        task("draft"),
        approval(output_schema=APPROVED_ONLY),
        task("publish", "review"),
        task("discard", "review", when="failure"),
    ]
    flow = await create_flow(client, auth, steps)
    run = await start(client, auth, flow["id"])
    await work(client, auth, "draft")

    answer = await decide(client, auth, run["id"], False)
    assert answer["resumed"] == ["review"]
    state = await run_of(client, auth, run["id"])
    review = state["steps"]["review"]
    assert review["status"] == "failed"
    assert review["error"]["type"] == "output_contract"
    assert review["error"]["output"] == {"approved": False}
    assert state["steps"]["publish"]["status"] == "skipped"
    assert await claim_next(client, auth, "publish") is None
    await work(client, auth, "discard")
    assert (await run_of(client, auth, run["id"]))["status"] == "failed"


async def test_without_a_schema_a_rejection_is_just_the_wait_steps_output(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("draft"), approval(), task("publish", "review")])
    run = await start(client, auth, flow["id"])
    await work(client, auth, "draft")
    await decide(client, auth, run["id"], False)
    published = await work(client, auth, "publish")
    assert published["payload"]["flow"]["parents"] == {"review": {"approved": False}}
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"
