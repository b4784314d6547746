"""Hostile input on every route: each answers a clear 4xx in the contract's envelope, never a
5xx, and leaves stored data as it was (DESIGN §8). Routes are read from the app itself, so a new
route is covered without editing this file. ``test_api_errors.py`` pins the exact envelope of
the common cases (malformed JSON, validation, 404/405, NUL in text); this file sweeps routes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cueflow.api.middleware import MAX_BODY_BYTES, MAX_JSON_DEPTH
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.errors import CueflowError
from tests.factories import make_worker_cue
from tests.helpers import cue_body

JSON = {"Content-Type": "application/json"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NOT_API = re.compile(r"^/(openapi\.json|docs|redoc|ui)\b")
"""The framework's documentation pages and the static dashboard, which take no input."""


def served_routes(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path template)`` of every API route the app serves, read from its router."""
    from fastapi.routing import iter_route_contexts

    routes = []
    for context in iter_route_contexts(app.routes):
        if NOT_API.match(context.path):
            continue
        routes += [(m, context.path) for m in sorted(context.methods or ()) if m != "HEAD"]
    assert len(routes) > 30, routes  # the enumeration itself must not silently go empty
    return routes


def fill(path: str, value: str | dict[str, str]) -> str:
    """``path`` with every ``{param}`` replaced by ``value`` (or ``value[param]``)."""
    return re.sub(
        r"\{(\w+)(?::\w+)?\}",
        lambda m: value if isinstance(value, str) else value.get(m.group(1), "x"),
        path,
    )


def app_of(client: httpx.AsyncClient) -> FastAPI:
    """The ASGI app behind a test client."""
    app = client._transport.app  # type: ignore[attr-defined]
    assert isinstance(app, FastAPI)
    return app


def assert_envelope(response: httpx.Response, what: Any) -> dict[str, Any]:
    """A 4xx whose body is exactly the contract's envelope; returns the ``error`` object."""
    assert 400 <= response.status_code < 500, (what, response.status_code, response.text)
    body = response.json()
    assert list(body) == ["error"], (what, body)
    error = body["error"]
    assert error["status"] == response.status_code, (what, error)
    assert isinstance(error["code"], str) and error["code"], (what, error)
    assert isinstance(error["message"], str) and error["message"], (what, error)
    return error


async def snapshot(client: httpx.AsyncClient, auth: dict[str, str]) -> Any:
    """What the caller can see: cues, executions, workers (to prove a refusal changed nothing)."""
    cues = (await client.get("/v1/cues", params={"limit": 100}, headers=auth)).json()
    runs = (await client.get("/v1/executions", params={"limit": 100}, headers=auth)).json()
    workers = (await client.get("/v1/workers", headers=auth)).json()
    return cues["cues"], runs["executions"], [w["worker_id"] for w in workers["workers"]]


def nested(depth: int) -> Any:
    """A JSON object nesting ``depth`` levels deep."""
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


UNSTORABLE_JSON = {
    "nested past the limit": json.dumps({**cue_body(), "payload": nested(MAX_JSON_DEPTH)}),
    "nested 100 000 deep": "[" * 100_000 + "]" * 100_000,
    "lone surrogate in a key": json.dumps({**cue_body(), "payload": {"k\ud800": 1}}),
    "lone surrogate in a name": json.dumps(cue_body(name="\udfff")),
    "invalid UTF-8": b'{"name": "\xff\xfe", "worker_id": "\xc3\x28"}',
    "NaN": '{"name": "x", "payload": {"n": NaN}, "success": true, "worker_id": "w"}',
    "Infinity": '{"name": "x", "payload": {"n": -Infinity}, "worker_id": "w"}',
    "a UTF-8 BOM before the body": b"\xef\xbb\xbf" + json.dumps(cue_body()).encode(),
}


async def test_json_no_store_can_hold_is_400_invalid_json_on_every_body_route(
    client: httpx.AsyncClient, auth: dict[str, str], engine: Engine, clock: FakeClock
) -> None:
    cue = await make_worker_cue(client, auth)
    ids = {"cue_id": cue["id"], "worker_id": "w", "token": "t" * 20, "execution_id": "x"}
    before = await snapshot(client, auth)
    routes = [(m, p) for m, p in served_routes(app_of(client)) if m in ("POST", "PATCH", "PUT")]

    for method, path in routes:
        for name, body in UNSTORABLE_JSON.items():
            response = await client.request(
                method, fill(path, ids), content=body, headers={**auth, **JSON}
            )
            error = assert_envelope(response, (method, path, name))
            assert (response.status_code, error["code"]) == (400, "invalid_json"), (path, name)

    assert await snapshot(client, auth) == before


async def test_nesting_up_to_the_limit_and_escaped_surrogate_pairs_are_kept_intact(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    payload = {"deep": nested(MAX_JSON_DEPTH - 3), "emoji": "😀 \U0001f680", "nul-free": "é"}
    body = json.dumps(cue_body(payload=payload))  # ensure_ascii: emoji as \ud83d\ude00 pairs

    created = await client.post("/v1/cues", content=body, headers={**auth, **JSON})

    assert created.status_code == 201, created.text
    read = await client.get(f"/v1/cues/{created.json()['id']}", headers=auth)
    assert read.json()["payload"] == payload


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", json.dumps(cue_body())),
        ("application/x-www-form-urlencoded", "name=x&transport=worker"),
        ("multipart/form-data; boundary=b", '--b\r\nContent-Disposition: form-data; name="name"'),
        ("application/xml", "<cue><name>x</name></cue>"),
        ("application/json; charset=latin-1", '{"name": "caf\xe9"}'),
    ],
)
async def test_bodies_that_are_not_json_are_a_4xx_and_create_nothing(
    client: httpx.AsyncClient, auth: dict[str, str], content_type: str, content: str
) -> None:
    response = await client.post(
        "/v1/cues",
        content=content.encode("latin-1"),
        headers={**auth, "Content-Type": content_type},
    )

    assert_envelope(response, content_type)
    assert (await client.get("/v1/cues", headers=auth)).json()["total"] == 0


async def test_bodies_over_the_limit_are_413_on_every_route_that_takes_one(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    oversized = b"{" + b" " * MAX_BODY_BYTES + b"}"
    routes = [(m, p) for m, p in served_routes(app_of(client)) if m in ("POST", "PATCH", "PUT")]

    for method, path in [*routes, ("POST", "/v1/not-a-route")]:
        response = await client.request(
            method, fill(path, "x" * 20), content=oversized, headers={**auth, **JSON}
        )
        error = assert_envelope(response, (method, path))
        assert (response.status_code, error["code"]) == (413, "request_too_large"), path


MALFORMED_IDS = [
    "not-a-uuid",
    "00000000-0000-0000-0000-000000000000",
    "cue_000000000000",
    "x" * 5000,
    "' OR '1'='1",
    "1; DROP TABLE cues",
    "%25%32%65%25%32%65",
    "..%2F..%2Fetc%2Fpasswd",
    "%F0%9F%98%80",
    "%FF%FE",
    "%E2%80%AE",
    "-1",
    "9" * 40,
]


async def test_malformed_ids_are_a_4xx_on_every_id_route_and_change_nothing(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await make_worker_cue(client, auth)
    await client.post("/v1/worker/heartbeat", json={"worker_id": "w"}, headers=auth)
    before = await snapshot(client, auth)
    routes = [(m, p) for m, p in served_routes(app_of(client)) if "{" in p]
    assert len(routes) >= 15, routes

    for method, path in routes:
        for bad in MALFORMED_IDS:
            body = {"worker_id": "w", "success": True} if method in ("POST", "PATCH") else None
            response = await client.request(method, fill(path, bad), json=body, headers=auth)
            if path.startswith("/v1/echo/") and response.status_code < 300:
                continue  # echo tokens are free text: any 16+ characters name a mailbox
            assert_envelope(response, (method, path, bad))

    assert await snapshot(client, auth) == before


LIMIT_LIKE = re.compile(r"(^|_)(limit|offset|wait)$")


async def test_out_of_range_paging_values_are_422_naming_the_parameter(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    app = app_of(client)
    document = app.openapi()
    cue = await make_worker_cue(client, auth)
    checked = 0
    for path, operations in document["paths"].items():
        if NOT_API.match(path):
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                if parameter["in"] != "query" or not LIMIT_LIKE.search(name):
                    continue
                for bad in ("-1", "10" + "0" * 30, "1e400", "abc", "", "0x10", "NaN", "∞"):
                    response = await client.request(
                        method.upper(),
                        fill(path, {"cue_id": cue["id"]}),
                        params={name: bad},
                        headers=auth,
                    )
                    error = assert_envelope(response, (path, name, bad))
                    assert response.status_code == 422, (path, name, bad, response.text)
                    assert error["details"][0]["field"] == f"query.{name}", error
                    checked += 1
    assert checked >= 8 * 8  # every list's limit and offset, claimable's limit and wait


async def test_wrong_methods_are_405_in_the_envelope_on_every_path(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    served: dict[str, set[str]] = {}
    for method, path in served_routes(app_of(client)):
        served.setdefault(path, set()).add(method)

    def served_elsewhere(method: str, concrete: str) -> bool:
        """Whether another route template serves ``method`` on ``concrete``
        (``GET /v1/executions/claims`` is the execution with id ``claims``)."""
        return any(
            method in methods and re.fullmatch(fill(template, "[^/]+"), concrete)
            for template, methods in served.items()
        )

    for path, methods in served.items():
        for method in sorted(set(METHODS) - methods):
            if served_elsewhere(method, fill(path, "x" * 20)):
                continue
            response = await client.request(method, fill(path, "x" * 20), headers=auth)
            error = assert_envelope(response, (method, path))
            assert (response.status_code, error["code"]) == (405, "http_error"), (method, path)
            # Starlette names the methods of the first route matching the path only
            assert set(response.headers["allow"].replace(" ", "").split(",")) <= methods


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer " + "x" * 65_536,
        "Bearer cue_sk_" + "0" * 65_536,
        "Bearer cue_sk_" + "f" * 32 + "\t",
        "Basic dXNlcjpwYXNz",
        "bearer cue_sk_" + "0" * 32,
        "Bearer",
        "Bearer  ",
        "Bearer cue_sk_caf\xe9",
        "Bearer cue_sk_" + "%00" * 4,
    ],
)
async def test_abusive_authorization_headers_are_401(
    client: httpx.AsyncClient, authorization: str
) -> None:
    headers = {"Authorization": authorization.encode("latin-1")}  # type: ignore[dict-item]

    response = await client.get("/v1/cues", headers=headers)

    error = assert_envelope(response, authorization[:40])
    assert (response.status_code, error["code"]) == (401, "invalid_api_key")


async def test_huge_or_odd_worker_and_confirm_headers_are_a_4xx(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    probes = [
        ("POST", "/v1/executions/x/heartbeat", {"X-Worker-Id": "w" * 65_536}),
        ("POST", "/v1/executions/x/outcome", {"X-Worker-Id": "w" * 65_536}),
        ("POST", "/v1/auth/webhook-secret/regenerate", {"X-Confirm-Destructive": "t" * 65_536}),
        ("POST", "/v1/auth/key/regenerate", {"X-Confirm-Destructive": "TRUE"}),
        ("POST", "/v1/auth/key/regenerate", {"X-Confirm-Destructive": " true"}),
    ]
    for method, path, headers in probes:
        response = await client.request(
            method, path, json={"success": True}, headers={**auth, **headers}
        )
        assert_envelope(response, (path, list(headers)))
    assert (await client.get("/v1/cues", headers=auth)).status_code == 200  # key still works


@pytest.mark.parametrize(
    "payload", [nested(300), {"k\ud800": 1}, {"v": "\udfff"}], ids=["deep", "key", "value"]
)
async def test_the_engine_refuses_payloads_json_cannot_hold_without_the_http_guard(
    engine: Engine, payload: dict[str, Any]
) -> None:
    """Embedding code and apps that mount cueflow's router have no request guard: the engine
    answers its own 400 instead of failing in the store."""
    user = await engine.account("embedded@example.com")

    with pytest.raises(CueflowError) as refused:
        await engine.create_cue(user, {**cue_body(), "payload": payload})

    assert (refused.value.status, refused.value.code) == (400, "invalid_payload")
    assert (await engine.list_cues(user))[1] == 0
