"""Flow definitions over HTTP: a definition that is not a valid DAG of valid steps is refused
with 400 ``invalid_flow`` naming the step; flows are listed, read, changed and deleted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.flows_support import create_flow, start, task, work
from tests.helpers import assert_error

INVALID = [
    ([task("a"), task("a")], "Step 'a' is defined twice"),
    ([task("a", "ghost")], "Step 'a' needs 'ghost', which is not a step"),
    ([task("a", "a")], "Step 'a' needs itself"),
    ([task("a", "c"), task("b", "a"), task("c", "b")], "is part of a cycle"),
    ([task("a"), task("b"), task("c", "a", for_each="b")], "Step 'c' runs for_each 'b'"),
    ([{"id": "w", "type": "wait", "event": "approved"}], "Wait step 'w' needs an event"),
    ([{"id": "w", "type": "wait", "timeout_seconds": 60}], "Wait step 'w' needs an event"),
    ([task("a", output_schema={"type": "no-such-type"})], "Step 'a' output_schema"),
    ([task("a", transport="no-such-transport")], "Step 'a':"),
    ([{"id": "h", "transport": "webhook", "payload": {}}], "Step 'h':"),
]


@pytest.mark.parametrize(("steps", "message"), INVALID)
async def test_an_invalid_definition_is_refused_naming_the_step(
    client: httpx.AsyncClient, auth: dict[str, str], steps: list[dict[str, Any]], message: str
) -> None:
    response = await client.post("/v1/flows", json={"name": "f", "steps": steps}, headers=auth)
    error = assert_error(response, 400, "invalid_flow")
    assert message in error["message"]


async def test_an_input_schema_that_is_not_a_schema_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {"name": "f", "steps": [task("a")], "input_schema": {"type": 12}}
    error = assert_error(
        await client.post("/v1/flows", json=body, headers=auth), 400, "invalid_flow"
    )
    assert error["message"].startswith("input_schema is not a valid JSON Schema")


async def test_a_cycle_is_named_by_its_path(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [task("a"), task("b", "a", "d"), task("c", "b"), task("d", "c")]
    response = await client.post("/v1/flows", json={"name": "f", "steps": steps}, headers=auth)
    message = assert_error(response, 400, "invalid_flow")["message"]
    assert (
        "b -> d -> c -> b" in message
        or "d -> c -> b -> d" in message
        or "c -> b -> d -> c" in message
    )


async def test_a_step_field_of_the_wrong_shape_is_a_422(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    steps = [{**task("a"), "when": "sometimes"}]
    response = await client.post("/v1/flows", json={"name": "f", "steps": steps}, headers=auth)
    assert_error(response, 422, "validation_error")


async def test_a_flow_is_created_read_listed_and_changed(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a")], description="two")
    assert flow["id"].startswith("flw_")
    assert [s["id"] for s in flow["steps"]] == ["a", "b"]
    assert flow["steps"][1]["needs"] == ["a"]
    assert flow["steps"][1]["when"] == "success"
    read = await client.get(f"/v1/flows/{flow['id']}", headers=auth)
    assert read.json() == flow
    listed = await client.get("/v1/flows", headers=auth)
    assert [f["id"] for f in listed.json()["flows"]] == [flow["id"]]
    changed = await client.patch(
        f"/v1/flows/{flow['id']}", json={"name": "renamed", "steps": [task("only")]}, headers=auth
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "renamed"
    assert [s["id"] for s in changed.json()["steps"]] == ["only"]


async def test_a_run_keeps_the_definition_it_started_with(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    run = await start(client, auth, flow["id"])
    await client.patch(f"/v1/flows/{flow['id']}", json={"steps": [task("x")]}, headers=auth)
    await work(client, auth, "a")
    await work(client, auth, "b")
    shown = await client.get(f"/v1/flow-runs/{run['id']}", headers=auth)
    assert shown.json()["status"] == "succeeded"
    assert set(shown.json()["steps"]) == {"a", "b"}


async def test_flow_names_are_unique_per_account(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await create_flow(client, auth, [task("a")], name="same")
    again = await client.post(
        "/v1/flows", json={"name": "same", "steps": [task("a")]}, headers=auth
    )
    assert_error(again, 409, "flow_name_taken")


async def test_delete_is_refused_while_a_run_is_open_then_takes_its_runs(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    run = await start(client, auth, flow["id"])
    refused = await client.delete(f"/v1/flows/{flow['id']}", headers=auth)
    assert_error(refused, 409, "flow_has_open_runs")
    await work(client, auth, "a")
    deleted = await client.delete(f"/v1/flows/{flow['id']}", headers=auth)
    assert deleted.status_code == 204
    assert_error(await client.get(f"/v1/flows/{flow['id']}", headers=auth), 404, "flow_not_found")
    gone = await client.get(f"/v1/flow-runs/{run['id']}", headers=auth)
    assert_error(gone, 404, "flow_run_not_found")
    assert (await client.get("/v1/executions", headers=auth)).json()["total"] == 0


async def test_another_accounts_flow_is_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    for response in (
        await client.get(f"/v1/flows/{flow['id']}", headers=other_auth),
        await client.patch(f"/v1/flows/{flow['id']}", json={"name": "x"}, headers=other_auth),
        await client.delete(f"/v1/flows/{flow['id']}", headers=other_auth),
    ):
        assert_error(response, 404, "flow_not_found")


async def test_a_steps_hidden_cue_cannot_be_read_changed_or_deleted_as_a_cue(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    flow = await create_flow(client, auth, [task("a")])
    await start(client, auth, flow["id"])
    [execution] = (await client.get("/v1/executions", headers=auth)).json()["executions"]
    path = f"/v1/cues/{execution['cue_id']}"
    assert_error(await client.get(path, headers=auth), 404, "cue_not_found")
    patch = await client.patch(path, json={"status": "active"}, headers=auth)
    assert_error(patch, 409, "flow_step_cue")
    assert_error(await client.delete(path, headers=auth), 409, "flow_step_cue")
    assert (await client.get("/v1/executions", headers=auth)).json()["total"] == 1
