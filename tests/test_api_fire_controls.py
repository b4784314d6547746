"""The fuller manual fire (issue 17), on both stores: ``payload_override`` merged over the cue's
payload (the default) or replacing it, ``idempotency_key`` (one execution per key and cue for
24 h, even when fires race), the cue's ``required_payload_keys`` checked on the payload a fire
carries, the ``payload`` an execution shows, the Python API and ``cueflow cues fire``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cueflow.cli import app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import drop_pg_database, fresh_pg_database, pg_available
from tests.factories import make_worker_cue
from tests.helpers import (
    assert_error,
    assert_validation_error,
    claimable,
    executions_of,
    get_execution,
)
from tests.server import cueflow_server

PAYLOAD = {"task": "report", "lang": "en", "options": {"format": "pdf", "pages": 3}}


async def fire(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, **body: Any
) -> httpx.Response:
    """``POST /v1/cues/{id}/fire`` with ``body``."""
    return await client.post(f"/v1/cues/{cue_id}/fire", json=body, headers=auth)


async def fired(
    client: httpx.AsyncClient, auth: dict[str, str], cue_id: str, status: int = 200, **body: Any
) -> dict[str, Any]:
    """A fire that must answer ``status``; its body."""
    response = await fire(client, auth, cue_id, **body)
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def carried(client: httpx.AsyncClient, auth: dict[str, str], execution_id: str) -> Any:
    """The payload a worker claiming ``execution_id`` receives."""
    items = {item["execution_id"]: item for item in await claimable(client, auth)}
    return items[execution_id]["payload"]


# payload_override ------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", [None, "merge"], ids=["default", "merge"])
async def test_an_override_is_merged_over_the_cue_payload_by_default(
    client: httpx.AsyncClient, auth: dict[str, str], strategy: str | None
) -> None:
    cue = await make_worker_cue(client, auth, payload=PAYLOAD)
    body: dict[str, Any] = {"payload_override": {"lang": "fr", "options": {"pages": 9}}}
    if strategy is not None:
        body["merge_strategy"] = strategy
    run = await fired(client, auth, cue["id"], **body)
    # top-level keys are merged; a nested object is replaced whole, not deep-merged
    expected = {"task": "report", "lang": "fr", "options": {"pages": 9}}
    assert run["payload"] == expected
    assert (await get_execution(client, auth, run["id"]))["payload"] == expected
    assert await carried(client, auth, run["id"]) == expected
    assert (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()["payload"] == PAYLOAD


async def test_replace_makes_the_override_the_whole_payload(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload=PAYLOAD)
    override = {"task": "report", "only": True}
    run = await fired(client, auth, cue["id"], payload_override=override, merge_strategy="replace")
    assert run["payload"] == override
    assert (await get_execution(client, auth, run["id"]))["payload"] == override
    assert await carried(client, auth, run["id"]) == override


async def test_a_fire_without_override_shows_the_cue_payload(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload=PAYLOAD)
    run = await fired(client, auth, cue["id"], merge_strategy="replace")  # nothing to replace
    assert run["payload"] == PAYLOAD
    assert (await get_execution(client, auth, run["id"]))["payload"] == PAYLOAD
    assert await carried(client, auth, run["id"]) == PAYLOAD


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload_override": {"a": 1}, "merge_strategy": "deep"}, "body.merge_strategy"),
        ({"merge_strategy": 3}, "body.merge_strategy"),
        ({"idempotency_key": ""}, "body.idempotency_key"),
        ({"idempotency_key": "k" * 256}, "body.idempotency_key"),
        ({"payload_override": [1, 2]}, "body.payload_override"),
    ],
    ids=["unknown-strategy", "strategy-not-a-string", "empty-key", "long-key", "list-override"],
)
async def test_bad_fire_bodies_are_refused_and_create_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    cue = await make_worker_cue(client, auth)
    assert_validation_error(await fire(client, auth, cue["id"], **body), field)
    assert await executions_of(client, auth, cue["id"]) == []


# required_payload_keys -------------------------------------------------------------------------
async def test_a_fire_whose_payload_lacks_a_required_key_is_refused(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(
        client, auth, payload={"task": "report", "user": "u1"}, required_payload_keys=["user"]
    )
    replaced = await fire(
        client, auth, cue["id"], payload_override={"task": "report"}, merge_strategy="replace"
    )
    error = assert_error(replaced, 400, "missing_payload_keys")
    assert "user" in error["message"]
    keyed = await fire(
        client,
        auth,
        cue["id"],
        payload_override={"task": "x"},
        merge_strategy="replace",
        idempotency_key="k-refused",
    )
    assert_error(keyed, 400, "missing_payload_keys")
    assert await executions_of(client, auth, cue["id"]) == []
    # merged over the cue's payload the key is there; the refused key was not kept
    run = await fired(client, auth, cue["id"], 201, payload_override={"x": 1}, idempotency_key="k")
    assert run["payload"] == {"task": "report", "user": "u1", "x": 1}
    again = await fired(
        client,
        auth,
        cue["id"],
        201,
        payload_override={"task": "report", "user": "u2"},
        merge_strategy="replace",
        idempotency_key="k-refused",
    )
    assert again["payload"] == {"task": "report", "user": "u2"}


# idempotency_key -------------------------------------------------------------------------------
async def test_a_repeated_key_answers_the_first_execution_and_creates_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload=PAYLOAD)
    other = await make_worker_cue(client, auth)
    first = await fired(client, auth, cue["id"], 201, idempotency_key="nightly-1")
    repeat = await fired(
        client, auth, cue["id"], 200, idempotency_key="nightly-1", payload_override={"lang": "de"}
    )
    assert repeat == first  # the first fire's execution and payload, not the repeat's
    assert repeat["payload"] == PAYLOAD
    assert [e["id"] for e in await executions_of(client, auth, cue["id"])] == [first["id"]]

    another_key = await fired(client, auth, cue["id"], 201, idempotency_key="nightly-2")
    another_cue = await fired(client, auth, other["id"], 201, idempotency_key="nightly-1")
    keyless = await fired(client, auth, cue["id"], 200)
    ids = {first["id"], another_key["id"], another_cue["id"], keyless["id"]}
    assert len(ids) == 4
    assert len(await executions_of(client, auth, cue["id"])) == 3


async def test_a_key_is_forgotten_after_24_hours(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    first = await fired(client, auth, cue["id"], 201, idempotency_key="k")
    clock.advance(hours=24, seconds=-1)
    assert (await fired(client, auth, cue["id"], 200, idempotency_key="k"))["id"] == first["id"]
    clock.advance(2)
    later = await fired(client, auth, cue["id"], 201, idempotency_key="k")
    assert later["id"] != first["id"]
    assert (await fired(client, auth, cue["id"], 200, idempotency_key="k"))["id"] == later["id"]
    assert len(await executions_of(client, auth, cue["id"])) == 2


async def test_concurrent_fires_with_one_key_create_one_execution(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    async with asyncio.timeout(60):
        answers = await asyncio.gather(
            *(fire(client, auth, cue["id"], idempotency_key="once") for _ in range(8))
        )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(await executions_of(client, auth, cue["id"])) == 1


async def test_keys_are_per_account(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth)
    await fired(client, auth, cue["id"], 201, idempotency_key="k")
    assert_error(
        await fire(client, other_auth, cue["id"], idempotency_key="k"), 404, "cue_not_found"
    )


async def test_send_at_still_delays_a_keyed_fire(
    client: httpx.AsyncClient, auth: dict[str, str], clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    later = clock.now() + timedelta(minutes=10)
    run = await fired(client, auth, cue["id"], 201, send_at=later.isoformat(), idempotency_key="k")
    assert run["scheduled_for"] == later.isoformat()
    assert await claimable(client, auth) == []


# the Python API --------------------------------------------------------------------------------
async def test_the_python_api_says_whether_a_fire_was_a_repeat(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine
) -> None:
    cue = await make_worker_cue(client, auth, payload=PAYLOAD)
    user = await engine.principal(auth["Authorization"].removeprefix("Bearer "))
    first = await engine.fire_cue(
        user, cue["id"], payload_override={"lang": "fr"}, idempotency_key="py"
    )
    assert (first.repeated, first.triggered_by) == (False, "manual_fire")
    assert first.fire_payload == {**PAYLOAD, "lang": "fr"}
    again = await engine.fire_cue(user, cue["id"], idempotency_key="py")
    assert (again.repeated, again.id) == (True, first.id)
    replaced = await engine.fire_cue(
        user, cue["id"], payload_override={"task": "t"}, merge_strategy="replace"
    )
    assert (replaced.repeated, replaced.fire_payload) == (False, {"task": "t"})
    execution, payload = await engine.get_execution_with_payload(user, replaced.id)
    assert (execution.id, payload) == (replaced.id, {"task": "t"})
    with pytest.raises(Exception, match="merge_strategy") as refused:
        await engine.fire_cue(user, cue["id"], payload_override={}, merge_strategy="deep")
    assert getattr(refused.value, "status", None) == 422


# the CLI ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def cli_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real ``cueflow serve`` on each store, shared by the CLI tests."""
    workdir: Path = tmp_path_factory.mktemp(f"fire-cli-{request.param}")
    if request.param == "sqlite":
        with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir) as base:
            yield base
        return
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable")
    url = asyncio.run(fresh_pg_database())
    try:
        with cueflow_server(url, workdir) as base:
            yield base
    finally:
        asyncio.run(drop_pg_database(url))


def test_cli_fires_with_a_payload_override_and_an_idempotency_key(cli_server: str) -> None:
    email = f"fire-cli-{uuid.uuid4().hex[:8]}@example.com"
    key = httpx.post(f"{cli_server}/v1/auth/register", json={"email": email}).json()["api_key"]
    http = httpx.Client(base_url=cli_server, headers={"Authorization": f"Bearer {key}"})
    cue = http.post(
        "/v1/cues",
        json={
            "name": "cli-fire",
            "transport": "worker",
            "schedule": {"type": "recurring", "cron": "0 0 1 1 *"},
            "payload": PAYLOAD,
        },
    ).json()
    env = {"CUEFLOW_API_URL": cli_server, "CUEFLOW_API_KEY": key, "COLUMNS": "200"}

    def cli(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(app, ["cues", "fire", cue["id"], *args], env=env)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if "--json" in args else result.output

    merged = cli("--payload", '{"lang": "fr"}', "--idempotency-key", "cli-1", "--json")
    assert merged["payload"] == {**PAYLOAD, "lang": "fr"}
    assert cli("--idempotency-key", "cli-1", "--json")["id"] == merged["id"]
    assert http.get(f"/v1/executions/{merged['id']}").json()["payload"] == merged["payload"]
    replaced = cli("--payload", '{"task": "other"}', "--replace", "--json")
    assert replaced["payload"] == {"task": "other"} and replaced["id"] != merged["id"]
    explicit = cli("--payload", '{"lang": "de"}', "--merge", "--json")
    assert explicit["payload"] == {**PAYLOAD, "lang": "de"}
    assert "execution" in cli("--idempotency-key", "cli-1")
    assert "JSON" in cli("--payload", "{not json", code=2)
    assert http.get("/v1/executions", params={"cue_id": cue["id"]}).json()["total"] == 3
