"""``DELETE /v1/cues/{id}`` (contract §2.2.7), and another user's cue, which ``GET``, ``PATCH``
and ``DELETE`` all answer as not found."""

from __future__ import annotations

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import fire, make_worker_cue
from tests.helpers import assert_error, create_cue, get_cue


async def test_delete_returns_204_with_empty_body_then_404(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    deleted = await client.delete(f"/v1/cues/{cue['id']}", headers=auth)
    again = await client.delete(f"/v1/cues/{cue['id']}", headers=auth)
    read = await client.get(f"/v1/cues/{cue['id']}", headers=auth)

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(again, 404, "cue_not_found", "Cue not found")
    assert_error(read, 404, "cue_not_found", "Cue not found")


async def test_delete_removes_the_cues_executions(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    cue = await make_worker_cue(client, auth)
    await fire(engine, clock, 300)
    [execution] = (await client.get("/v1/executions", headers=auth)).json()["executions"]

    await client.delete(f"/v1/cues/{cue['id']}", headers=auth)

    listed = (await client.get("/v1/executions", headers=auth)).json()
    assert listed["total"] == 0
    gone = await client.get(f"/v1/executions/{execution['id']}", headers=auth)
    assert_error(gone, 404, "execution_not_found")


async def test_deleted_name_can_be_reused(client: httpx.AsyncClient, auth: dict[str, str]):
    cue = await make_worker_cue(client, auth, name="again")
    await client.delete(f"/v1/cues/{cue['id']}", headers=auth)

    response = await create_cue(client, auth, name="again")

    assert response.status_code == 201, response.text


# another user's cue ---------------------------------------------------------------------------
async def test_another_users_cue_is_404_for_get_patch_and_delete(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)
    path = f"/v1/cues/{cue['id']}"

    got = await client.get(path, headers=other_auth)
    changed = await client.patch(path, json={"status": "paused"}, headers=other_auth)
    deleted = await client.delete(path, headers=other_auth)

    for response in (got, changed, deleted):
        assert_error(response, 404, "cue_not_found", "Cue not found")
    still = await get_cue(client, auth, cue["id"])
    assert still["status"] == "active"
