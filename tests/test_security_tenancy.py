"""Tenant isolation over REST, on every route the app serves (read from its router, so a new
route is probed without editing this file): user B, holding only B's key, can never see, claim,
change or infer A's cues, executions, workers or secrets.

For each route B calls with A's ids, the answer must be a 4xx identical to the answer for an id
that exists nowhere (no existence oracle); no answer to B may carry A's names, payloads, email,
key or secrets; and A's whole view of the account is the same afterwards.
``test_tenancy.py`` checks the same rules one engine call at a time.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import register
from tests.factories import make_worker_cue
from tests.helpers import claim, report, worker_heartbeat
from tests.test_hostile_input import app_of, fill, served_routes

CONFIRM = {"X-Confirm-Destructive": "true"}
SHARED_WORKER = "shared-worker"
"""A's worker id; B names a worker the same way (worker ids are per user)."""


async def a_account(client: httpx.AsyncClient, clock: FakeClock) -> dict[str, Any]:
    """User A with a worker, a cue, and executions pending, claimed and finished."""
    auth = await register(client, "tenant-a@example.com")
    await worker_heartbeat(client, auth, SHARED_WORKER, handlers=["job"])
    cue = await make_worker_cue(
        client, auth, name="a-private-name", payload={"task": "job", "marker": "a-payload-marker"}
    )
    fired = []
    for _ in range(3):
        clock.advance(seconds=1)
        response = await client.post(f"/v1/cues/{cue['id']}/fire", headers=auth)
        assert response.status_code == 200, response.text
        fired.append(response.json()["id"])
    pending, claimed, finished = fired
    for execution_id in (finished, claimed):  # one claim at a time per cue
        response = await claim(client, auth, execution_id, SHARED_WORKER)
        assert response.status_code == 200, response.text
        if execution_id == finished:
            done = await report(client, auth, finished, success=True, result="a-result-text")
            assert done.status_code == 200, done.text
    steps = [{"id": "only", "payload": {"task": "job"}}]
    response = await client.post(
        "/v1/flows", json={"name": "a-private-flow", "steps": steps}, headers=auth
    )
    assert response.status_code == 201, response.text
    flow_id = response.json()["id"]
    response = await client.post(
        f"/v1/flows/{flow_id}/runs", json={"input": {"m": "a-flow-input-marker"}}, headers=auth
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    response = await client.post(
        "/v1/auth/keys", json={"scope": "worker", "name": "a-private-key-name"}, headers=auth
    )
    assert response.status_code == 201, response.text
    scoped_key = response.json()
    secrets = {
        "key": auth["Authorization"].removeprefix("Bearer "),
        "webhook": (await client.get("/v1/auth/webhook-secret", headers=auth)).json(),
        "alert": (await client.get("/v1/auth/alert-webhook-secret", headers=auth)).json(),
    }
    return {
        "auth": auth,
        "ids": {
            "cue_id": [cue["id"]],
            "execution_id": [pending, claimed, finished],
            "worker_id": [SHARED_WORKER],
            "flow_id": [flow_id],
            "run_id": [run_id],
            "key_id": [scoped_key["id"]],
        },
        "private": [
            "tenant-a@example.com",
            "a-private-name",
            "a-private-flow",
            "a-flow-input-marker",
            "a-payload-marker",
            "a-result-text",
            secrets["key"],
            scoped_key["api_key"],
            "a-private-key-name",
            secrets["webhook"]["webhook_secret"],
            secrets["alert"]["alert_webhook_secret"],
        ],
    }


UNKNOWN = {
    "cue_id": "cue_" + "q7" * 6,
    "execution_id": str(uuid.UUID(int=12345, version=4)),
    "worker_id": "nobody-by-this-name",
    "flow_id": "flw_" + "q7" * 6,
    "run_id": "run_" + "q7" * 6,
    "key_id": "key_" + "q7" * 6,
}
NOT_IDS = {"name": "approved"}
"""Path parameters that name no one's object (an event's name): filled, never probed."""


async def a_view(client: httpx.AsyncClient, a: dict[str, Any]) -> list[Any]:
    """Everything A can read about A's account."""
    auth = a["auth"]
    paths = [
        "/v1/cues",
        *(f"/v1/cues/{i}" for i in a["ids"]["cue_id"]),
        "/v1/executions?limit=100",
        *(f"/v1/executions/{i}" for i in a["ids"]["execution_id"]),
        "/v1/executions/claimable",
        "/v1/workers",
        "/v1/auth/me",
        "/v1/auth/keys",
        "/v1/auth/webhook-secret",
        "/v1/auth/alert-webhook-secret",
        "/v1/alerts",
        "/v1/flows",
        *(f"/v1/flows/{i}" for i in a["ids"]["flow_id"]),
        "/v1/flow-runs",
        *(f"/v1/flow-runs/{i}" for i in a["ids"]["run_id"]),
    ]
    return [(p, (await client.get(p, headers=auth)).json()) for p in paths]


def body_for(a: dict[str, Any]) -> dict[str, Any]:
    """One body every POST/PATCH route can read, naming A's objects wherever ids go."""
    executions = a["ids"]["execution_id"]
    return {
        "worker_id": "b-own-worker",  # B may register workers; A's name is probed in paths
        "success": False,
        "error": "b-was-here",
        "name": "renamed-by-b",
        "status": "paused",
        "valid": False,
        "reason": "b-was-here",
        "evidence_url": "https://b.example/evidence",
        "handlers": ["job"],
        "execution_ids": executions,
        "outcomes": [{"execution_id": i, "success": False} for i in executions],
        "email": f"b-{uuid.uuid4().hex[:6]}@example.com",
    }


def without(text: str, values: list[str]) -> str:
    """``text`` with each of ``values`` blanked (what B sent may come back to B)."""
    for value in values:
        text = text.replace(value, "<sent>")
    return text


async def test_user_b_can_neither_reach_nor_infer_user_a_through_any_route(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    a = await a_account(client, clock)
    b = await register(client, "tenant-b@example.com")
    before = await a_view(client, a)
    routes = served_routes(app_of(client))
    probed_with_a_ids = 0

    for method, path in routes:
        names = [n for n in re.findall(r"\{(\w+)\}", path) if n not in NOT_IDS]
        for param, value in NOT_IDS.items():
            path = path.replace(f"{{{param}}}", value)
        if path.startswith("/v1/echo/"):
            continue  # echo tokens name shared test mailboxes, not anyone's data
        unknown_names = [n for n in names if n not in UNKNOWN]
        assert not unknown_names, f"{method} {path}: teach this test the id kind {unknown_names}"
        body = body_for(a) if method in ("POST", "PATCH", "PUT") else None
        params = {"cue_id": a["ids"]["cue_id"][0], "worker_id": SHARED_WORKER, "task": "job"}
        variants = [dict.fromkeys(names, None)]
        if names:
            variants = (
                [{n: v for n in names} for v in a["ids"][names[0]]] if len(names) == 1 else []
            )
            assert variants, f"{method} {path}: more than one id in a path is not probed yet"
        for a_ids in variants:
            concrete = fill(path, {k: v for k, v in a_ids.items() if v is not None})
            # The in-process transport reads a whole answer: the event stream must end, as it
            # does at once on a draining engine (tests/test_api_event_stream.py shows that a
            # stream carries only its own account's changes).
            draining = engine.services.signals.draining
            if path == "/v1/events/stream":
                draining.set()
            try:
                response = await client.request(
                    method, concrete, json=body, params=params, headers={**b, **CONFIRM}
                )
            finally:
                draining.clear()
            sent = [*(v for v in a_ids.values() if v), *a["ids"]["execution_id"]]
            for private in a["private"]:
                assert private not in without(response.text, sent), (method, concrete, private)
            if path == "/v1/auth/key/regenerate" and response.status_code == 200:
                b = {"Authorization": f"Bearer {response.json()['api_key']}"}
            if not names:
                continue
            probed_with_a_ids += 1
            assert 400 <= response.status_code < 500, (method, concrete, response.text)
            nowhere = fill(path, UNKNOWN)
            control = await client.request(
                method, nowhere, json=body, params=params, headers={**b, **CONFIRM}
            )
            assert (response.status_code, without(response.text, sent)) == (
                control.status_code,
                without(control.text, list(UNKNOWN.values())),
            ), (method, concrete)

    assert probed_with_a_ids >= 20
    assert await a_view(client, a) == before


async def test_b_sees_nothing_of_a_in_lists_filtered_by_a_s_ids(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    a = await a_account(client, clock)
    b = await register(client, "tenant-b@example.com")
    [cue_id] = a["ids"]["cue_id"]

    cues = await client.get("/v1/cues", params={"status": "active"}, headers=b)
    runs = [
        await client.get("/v1/executions", params=filters, headers=b)
        for filters in (
            {"cue_id": cue_id},
            {"worker_id": SHARED_WORKER},
            {"status__in": "pending,delivering,success"},
            {"outcome_state": "reported_success"},
        )
    ]
    claimable = await client.get("/v1/executions/claimable", params={"task": "job"}, headers=b)
    workers = await client.get("/v1/workers", headers=b)

    assert cues.json()["cues"] == [] and cues.json()["total"] == 0
    for page in runs:
        assert page.json()["executions"] == [] and page.json()["total"] == 0, page.text
        assert page.json()["oldest_claimed_at"] is None
    assert claimable.json()["executions"] == []
    assert workers.json()["workers"] == []


async def test_b_cannot_claim_or_report_on_a_s_executions_in_a_batch(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    a = await a_account(client, clock)
    b = await register(client, "tenant-b@example.com")
    before = await a_view(client, a)
    pending = a["ids"]["execution_id"][0]

    claims = await client.post(
        "/v1/executions/claims",
        json={"worker_id": SHARED_WORKER, "execution_ids": a["ids"]["execution_id"]},
        headers=b,
    )
    next_one = await client.post(
        "/v1/executions/claim", json={"worker_id": SHARED_WORKER}, headers=b
    )
    single = await claim(client, b, pending, SHARED_WORKER)

    assert claims.status_code == 200, claims.text
    assert claims.json()["claimed"] == []
    assert sorted(f["execution_id"] for f in claims.json()["failed"]) == sorted(
        a["ids"]["execution_id"]
    )
    assert (next_one.status_code, next_one.json()["error"]["code"]) == (409, "claim_failed")
    assert (single.status_code, single.json()["error"]["code"]) == (409, "claim_failed")
    assert await a_view(client, a) == before
