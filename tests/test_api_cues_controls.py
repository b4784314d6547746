"""Run controls as cue fields (cueflow extension, :mod:`cueflow.run_controls`): what GET shows,
what POST and PATCH set and clear, the 400/422 answers to bad controls, and the restamping of
unfinished executions when a cue's controls change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import due_execution, make_worker_cue
from tests.helpers import (
    assert_error,
    assert_validation_error,
    create_cue,
    get_cue,
    patch_cue,
    patched_cue,
)

CONTROLS = {
    "overlap_policy": "buffer_one",
    "priority": 7,
    "concurrency": {"limit": 2, "key": "llm-provider"},
    "rate_limit": {"limit": 60, "period_seconds": 60, "key": None},
    "required_payload_keys": ["task"],
}


async def test_a_new_cue_shows_the_default_controls(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth)

    shown = await get_cue(client, auth, cue["id"])

    assert {key: shown[key] for key in CONTROLS} == {
        "overlap_policy": "allow",
        "priority": 0,
        "concurrency": None,
        "rate_limit": None,
        "required_payload_keys": [],
    }


async def test_controls_set_on_create_are_shown_by_get_and_list(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, payload={"task": "summarize"}, **CONTROLS)

    assert {key: cue[key] for key in CONTROLS} == CONTROLS
    shown = await get_cue(client, auth, cue["id"])
    assert {key: shown[key] for key in CONTROLS} == CONTROLS
    listed = (await client.get("/v1/cues", headers=auth)).json()["cues"]
    assert {key: listed[0][key] for key in CONTROLS} == CONTROLS


async def test_patch_changes_only_the_controls_it_sends_and_clears_with_empty_objects(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    cue = await make_worker_cue(client, auth, payload={"task": "t"}, **CONTROLS)

    changed = await patched_cue(client, auth, cue["id"], {"priority": -3})
    assert changed["priority"] == -3
    assert changed["concurrency"] == CONTROLS["concurrency"]

    cleared = await patched_cue(
        client,
        auth,
        cue["id"],
        {
            "concurrency": {},
            "rate_limit": {},
            "required_payload_keys": [],
            "overlap_policy": "allow",
        },
    )
    assert cleared["concurrency"] is None
    assert cleared["rate_limit"] is None
    assert cleared["required_payload_keys"] == []
    assert cleared["overlap_policy"] == "allow"
    assert cleared["priority"] == -3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"overlap_policy": "queue"}, "body.overlap_policy"),
        ({"priority": 1001}, "body.priority"),
        ({"priority": "high"}, "body.priority"),
        ({"concurrency": {"limit": 0}}, "body.concurrency.limit"),
        ({"concurrency": {"key": "shared"}}, "body.concurrency"),
        ({"concurrency": {"limit": 2, "colour": "blue"}}, "body.concurrency.colour"),
        ({"rate_limit": {"limit": 10}}, "body.rate_limit"),
        ({"rate_limit": {"limit": 10, "period_seconds": 86_401}}, "body.rate_limit.period_seconds"),
        ({"required_payload_keys": [""]}, "body.required_payload_keys.0"),
        ({"required_payload_keys": "task"}, "body.required_payload_keys"),
    ],
)
async def test_bad_controls_are_refused_with_422_on_create_and_patch(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str
):
    assert_validation_error(await create_cue(client, auth, **body), field)
    cue = await make_worker_cue(client, auth)
    assert_validation_error(await patch_cue(client, auth, cue["id"], body), field)
    assert (await get_cue(client, auth, cue["id"]))["priority"] == 0


async def test_a_cue_whose_payload_lacks_a_required_key_is_refused_with_400(
    client: httpx.AsyncClient, auth: dict[str, str]
):
    response = await create_cue(
        client, auth, payload={"task": "t"}, required_payload_keys=["task", "user", "lang"]
    )
    error = assert_error(response, 400, "missing_payload_keys")
    assert error["message"] == "Payload lacks required key(s): user, lang"

    cue = await make_worker_cue(client, auth, payload={"user": 1})
    refused = await patch_cue(client, auth, cue["id"], {"required_payload_keys": ["lang"]})
    assert_error(refused, 400, "missing_payload_keys")
    keyed = await patch_cue(client, auth, cue["id"], {"required_payload_keys": ["user"]})
    assert keyed.status_code == 200, keyed.text
    dropped = await patch_cue(client, auth, cue["id"], {"payload": {"other": 2}})
    assert_error(dropped, 400, "missing_payload_keys")


async def test_changing_a_cues_priority_restamps_its_waiting_executions(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
):
    execution = await due_execution(client, engine, clock, auth)
    assert execution["priority"] == 0

    await patched_cue(client, auth, execution["cue_id"], {"priority": 5})

    shown = (await client.get(f"/v1/executions/{execution['id']}", headers=auth)).json()
    assert shown["priority"] == 5
