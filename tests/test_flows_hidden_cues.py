"""The hidden cues of flow steps, on both stores: no cue of their owner's (GET answers 404;
fire, replay, PATCH and DELETE answer 409 ``flow_step_cue`` and create nothing), kept across a
change of the flow for steps whose delivery did not change, and deleted by a change once
neither the definition nor a run refers to them."""

from __future__ import annotations

import httpx

from cueflow.authentication import Principal
from cueflow.engine import Engine
from tests.conftest import register
from tests.flows_support import create_flow, run_of, start, task, work
from tests.helpers import assert_error


async def _existing_cues(engine: Engine, user: Principal, cue_ids: list[str]) -> set[str]:
    async with engine.services.store.tx() as tx:
        return {c for c in cue_ids if await tx.get_cue(user.user_id, c) is not None}


async def _executions(client: httpx.AsyncClient, auth: dict[str, str]) -> int:
    response = await client.get("/v1/executions", params={"limit": 1}, headers=auth)
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


async def test_a_step_cue_cannot_be_fired_replayed_changed_or_deleted_and_reads_as_not_found(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    auth = await register(client, "hidden@example.com")
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    run = await start(client, auth, flow["id"])
    item = await work(client, auth, "a", output=1)
    shown = await client.get(f"/v1/executions/{item['execution_id']}", headers=auth)
    cue_id = shown.json()["cue_id"]
    before = await _executions(client, auth)

    answers = [
        await client.post(f"/v1/cues/{cue_id}/fire", json={}, headers=auth),
        await client.post(f"/v1/executions/{item['execution_id']}/replay", headers=auth),
        await client.patch(f"/v1/cues/{cue_id}", json={"name": "mine now"}, headers=auth),
        await client.patch(f"/v1/cues/{cue_id}", json={"status": "paused"}, headers=auth),
        await client.delete(f"/v1/cues/{cue_id}", headers=auth),
    ]
    for answer in answers:
        assert_error(answer, 409, "flow_step_cue")
        assert flow["id"] in answer.json()["error"]["message"]
    assert_error(await client.get(f"/v1/cues/{cue_id}", headers=auth), 404, "cue_not_found")

    assert await _executions(client, auth) == before, "a stray execution was created"
    user = await engine.account("hidden@example.com")
    assert await _existing_cues(engine, user, [cue_id]) == {cue_id}
    await work(client, auth, "b")
    assert (await run_of(client, auth, run["id"]))["status"] == "succeeded"


async def test_another_accounts_step_cue_is_not_found(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    await create_flow(client, auth, [task("a")])
    flow = await create_flow(client, other_auth, [task("a")])
    await start(client, other_auth, flow["id"])
    item = await work(client, other_auth, "a")
    cue_id = (
        await client.get(f"/v1/executions/{item['execution_id']}", headers=other_auth)
    ).json()["cue_id"]
    assert_error(await client.post(f"/v1/cues/{cue_id}/fire", headers=auth), 404, "cue_not_found")
    assert_error(await client.delete(f"/v1/cues/{cue_id}", headers=auth), 404, "cue_not_found")


async def test_a_change_keeps_unchanged_steps_cues_and_deletes_those_nothing_refers_to(
    engine: Engine,
) -> None:
    user = await engine.account("change@example.com")
    first = await engine.create_flow(user, {"name": "f", "steps": [task("a"), task("b", "a")]})
    b_changed = {**task("b", "a"), "payload": {"task": "b", "v": 2}}
    second = await engine.update_flow(user, first.id, {"steps": [task("a"), b_changed, task("c")]})
    assert second.step_cues["a"] == first.step_cues["a"]
    assert second.step_cues["b"] != first.step_cues["b"]
    assert await _existing_cues(engine, user, [first.step_cues["b"]]) == set()
    renamed = await engine.update_flow(user, first.id, {"name": "g"})
    assert renamed.step_cues == second.step_cues
    assert await _existing_cues(engine, user, list(second.step_cues.values())) == set(
        second.step_cues.values()
    )


async def test_a_replaced_steps_cue_stays_while_a_run_refers_to_it(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    auth = await register(client, "runs@example.com")
    user = await engine.account("runs@example.com")
    flow = await create_flow(client, auth, [task("a"), task("b", "a")])
    first = await engine.get_flow(user, flow["id"])
    run = await start(client, auth, flow["id"])
    changed = [{**task("a"), "payload": {"task": "a", "v": 2}}]
    response = await client.patch(f"/v1/flows/{flow['id']}", json={"steps": changed}, headers=auth)
    assert response.status_code == 200, response.text
    second = await engine.get_flow(user, flow["id"])
    old = list(first.step_cues.values())
    assert await _existing_cues(engine, user, old) == set(old)

    await work(client, auth, "a", output=1)
    await work(client, auth, "b")
    done = await run_of(client, auth, run["id"])
    assert done["status"] == "succeeded"
    assert done["steps"]["b"]["status"] == "succeeded"

    again = [{**task("a"), "payload": {"task": "a", "v": 3}}]
    response = await client.patch(f"/v1/flows/{flow['id']}", json={"steps": again}, headers=auth)
    assert response.status_code == 200, response.text
    assert await _existing_cues(engine, user, [second.step_cues["a"]]) == set(), (
        "the cue of a definition no run used stayed behind"
    )
    assert await _existing_cues(engine, user, old) == set(old), "a run's history went"
    listed = await client.get("/v1/executions", params={"flow_run_id": run["id"]}, headers=auth)
    assert listed.json()["total"] == 2
