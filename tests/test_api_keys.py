"""``/v1/auth/keys``: scoped API keys, created, listed and revoked by a full key; a worker key
runs the worker protocol and cannot touch cues; a read key reads. Both stores."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

import cueflow.api_keys as api_keys
import cueflow.ids as ids
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import make_worker_cue, manual_run
from tests.helpers import assert_error, assert_validation_error

CONFIRM = {"X-Confirm-Destructive": "true"}
KEY_FIELDS = {"id", "name", "scope", "prefix", "created_at", "last_used_at"}


async def create_key(
    client: httpx.AsyncClient, auth: dict[str, str], scope: str, name: str | None = None
) -> dict[str, Any]:
    """``POST /v1/auth/keys`` that must succeed; the body (with the secret)."""
    body = {"scope": scope} | ({"name": name} if name else {})
    response = await client.post("/v1/auth/keys", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['api_key']}"}


async def listed(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/v1/auth/keys", headers=auth)
    assert response.status_code == 200, response.text
    return dict(response.json())


# create, list ----------------------------------------------------------------------------------
async def test_a_new_key_shows_its_secret_once_and_is_stored_hashed(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str]
) -> None:
    key = await create_key(client, auth, "worker", "build-host-1")
    assert set(key) == KEY_FIELDS | {"api_key"}
    assert key["api_key"].startswith("cue_sk_") and len(key["api_key"]) == 39
    assert key["id"].startswith("key_")
    assert key["prefix"] == key["api_key"][:12]
    assert (key["name"], key["scope"], key["last_used_at"]) == ("build-host-1", "worker", None)

    keys = await listed(client, auth)
    assert [set(k) for k in keys["keys"]] == [KEY_FIELDS]  # no secret, no hash
    assert keys["keys"][0]["id"] == key["id"]
    me = (await client.get("/v1/auth/me", headers=auth)).json()
    assert keys["account_key"] == {"prefix": me["api_key_prefix"], "scope": "full"}

    async with engine.store.tx() as tx:
        stored = await tx.api_key_by_hash(ids.hash_api_key(key["api_key"]))
    assert stored is not None and stored.id == key["id"]
    assert key["api_key"] not in repr(stored) and stored.key_hash != key["api_key"]


async def test_keys_are_listed_oldest_first_per_account(
    client: httpx.AsyncClient, clock: FakeClock, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    first = await create_key(client, auth, "read", "dash")
    clock.advance(1)
    second = await create_key(client, auth, "full")
    await create_key(client, other_auth, "worker")
    keys = await listed(client, auth)
    assert [(k["id"], k["scope"], k["name"]) for k in keys["keys"]] == [
        (first["id"], "read", "dash"),
        (second["id"], "full", None),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.scope"),
        ({"scope": "admin"}, "body.scope"),
        ({"scope": "worker", "extra": 1}, "body.extra"),
        ({"scope": "read", "name": ""}, "body.name"),
        ({"scope": "read", "name": "x" * 101}, "body.name"),
        ({"scope": "read", "name": "a\u0000b"}, "body.name"),
    ],
)
async def test_a_bad_key_request_is_a_validation_error(
    client: httpx.AsyncClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/auth/keys", json=body, headers=auth)
    assert_validation_error(response, field)
    assert (await listed(client, auth))["keys"] == []


async def test_an_account_holds_a_bounded_number_of_keys(
    client: httpx.AsyncClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_keys, "MAX_KEYS", 2)
    first = await create_key(client, auth, "read")
    await create_key(client, auth, "read")
    response = await client.post("/v1/auth/keys", json={"scope": "read"}, headers=auth)
    assert_error(response, 409, "too_many_keys")
    await client.delete(f"/v1/auth/keys/{first['id']}", headers=auth)
    await create_key(client, auth, "read")


# what each scope may do ------------------------------------------------------------------------
async def test_a_worker_key_runs_the_worker_protocol_but_cannot_touch_cues(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload={"task": "build"})
    run = await manual_run(client, auth, cue["id"])
    worker = bearer(await create_key(client, auth, "worker"))

    registered = await client.post(
        "/v1/worker/heartbeat", json={"worker_id": "w1", "handlers": ["build"]}, headers=worker
    )
    assert registered.status_code == 200, registered.text
    claimable = (await client.get("/v1/executions/claimable", headers=worker)).json()
    assert [e["execution_id"] for e in claimable["executions"]] == [run["id"]]
    claim = await client.post(
        f"/v1/executions/{run['id']}/claim", json={"worker_id": "w1"}, headers=worker
    )
    assert claim.status_code == 200, claim.text
    beat = await client.post(
        f"/v1/executions/{run['id']}/heartbeat", headers=worker | {"X-Worker-Id": "w1"}
    )
    assert beat.status_code == 200, beat.text
    outcome = await client.post(
        f"/v1/executions/{run['id']}/outcome", json={"success": True}, headers=worker
    )
    assert outcome.status_code == 200, outcome.text
    got = await client.get(f"/v1/executions/{run['id']}", headers=worker)
    assert got.json()["status"] == "success"

    for method, path in [
        ("DELETE", f"/v1/cues/{cue['id']}"),
        ("PATCH", f"/v1/cues/{cue['id']}"),
        ("POST", f"/v1/cues/{cue['id']}/fire"),
        ("GET", "/v1/cues"),
        ("POST", "/v1/auth/keys"),
        ("GET", "/v1/auth/webhook-secret"),
    ]:
        response = await client.request(method, path, json={"status": "paused"}, headers=worker)
        assert_error(response, 403, "insufficient_scope")
    assert (await client.get(f"/v1/cues/{cue['id']}", headers=auth)).json()["status"] == "active"


async def test_a_read_key_reads_and_changes_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    cue = await make_worker_cue(client, auth, payload={"task": "build"})
    run = await manual_run(client, auth, cue["id"])
    reader = bearer(await create_key(client, auth, "read"))
    for path in (
        "/v1/cues",
        f"/v1/cues/{cue['id']}",
        "/v1/executions",
        "/v1/auth/me",
        "/v1/usage",
        "/v1/auth/keys",
        "/v1/executions/claimable",
    ):
        response = await client.get(path, headers=reader)
        assert response.status_code == 200, (path, response.text)
    refused = [
        await client.post(
            f"/v1/executions/{run['id']}/claim", json={"worker_id": "r"}, headers=reader
        ),
        await client.patch(f"/v1/cues/{cue['id']}", json={"status": "paused"}, headers=reader),
        await client.get("/v1/auth/webhook-secret", headers=reader),
        await client.post("/v1/auth/key/regenerate", headers=reader | CONFIRM),
    ]
    for response in refused:
        assert_error(response, 403, "insufficient_scope")
    runs = (await client.get("/v1/executions", headers=auth)).json()["executions"]
    assert [r["status"] for r in runs] == ["pending"]


async def test_only_a_full_key_creates_revokes_keys_and_rotates_secrets(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    full = bearer(await create_key(client, auth, "full"))
    victim = await create_key(client, auth, "read")
    for scope in ("worker", "read"):
        limited = bearer(await create_key(client, auth, scope))
        assert_error(
            await client.post("/v1/auth/keys", json={"scope": "full"}, headers=limited),
            403,
            "insufficient_scope",
        )
        assert_error(
            await client.delete(f"/v1/auth/keys/{victim['id']}", headers=limited),
            403,
            "insufficient_scope",
        )
        assert_error(
            await client.post("/v1/auth/webhook-secret/regenerate", headers=limited | CONFIRM),
            403,
            "insufficient_scope",
        )
    # a created full key may do all of it, as the account's own key does
    assert (
        await client.post("/v1/auth/keys", json={"scope": "read"}, headers=full)
    ).status_code == 201
    assert (await client.delete(f"/v1/auth/keys/{victim['id']}", headers=full)).status_code == 204
    rotated = await client.post("/v1/auth/webhook-secret/regenerate", headers=full | CONFIRM)
    assert rotated.status_code == 200, rotated.text


# revoke, last used -----------------------------------------------------------------------------
async def test_a_revoked_key_answers_key_revoked_and_leaves_the_list(
    client: httpx.AsyncClient, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    key = await create_key(client, auth, "worker")
    worker = bearer(key)
    assert (await client.get("/v1/executions/claimable", headers=worker)).status_code == 200
    assert_error(
        await client.delete(f"/v1/auth/keys/{key['id']}", headers=other_auth), 404, "key_not_found"
    )
    response = await client.delete(f"/v1/auth/keys/{key['id']}", headers=auth)
    assert response.status_code == 204 and response.content == b""
    assert_error(
        await client.get("/v1/executions/claimable", headers=worker),
        401,
        "key_revoked",
        "This API key has been revoked.",
    )
    assert (await listed(client, auth))["keys"] == []
    assert_error(
        await client.delete(f"/v1/auth/keys/{key['id']}", headers=auth), 404, "key_not_found"
    )
    assert_error(
        await client.delete("/v1/auth/keys/key_unknown", headers=auth), 404, "key_not_found"
    )


async def test_the_account_key_stays_full_and_regenerating_it_keeps_scoped_keys(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    worker = bearer(await create_key(client, auth, "worker"))
    new = await client.post("/v1/auth/key/regenerate", headers=auth | CONFIRM)
    assert new.status_code == 200, new.text
    new_auth = {"Authorization": f"Bearer {new.json()['api_key']}"}
    assert (await client.get("/v1/executions/claimable", headers=worker)).status_code == 200
    assert (
        await client.post("/v1/auth/keys", json={"scope": "read"}, headers=new_auth)
    ).status_code == 201


async def test_last_used_is_kept_to_the_minute_without_a_write_per_request(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, auth: dict[str, str]
) -> None:
    key = await create_key(client, auth, "read")
    reader = bearer(key)
    start = clock.now()
    await client.get("/v1/cues", headers=reader)
    used = (await listed(client, auth))["keys"][0]["last_used_at"]
    assert used is not None

    async def last_used() -> Any:
        async with engine.store.tx() as tx:
            rows = await tx.list_api_keys((await engine.principal(key["api_key"])).user_id)
        return rows[0].last_used_at

    assert await last_used() == start
    clock.advance(30)
    engine.auth.forget()
    await client.get("/v1/cues", headers=reader)
    assert await last_used() == start  # within the minute: not written again
    clock.advance(31)
    engine.auth.forget()
    await client.get("/v1/cues", headers=reader)
    assert await last_used() == start + timedelta(seconds=61)
