"""Scoped API keys (``docs/operations.md``, "Scoped keys"): every route of the app, called with
a key of each scope, is allowed or refused with 403 ``insufficient_scope`` exactly as
:data:`EXPECTED` declares. Routes are read from the app itself, so a new route fails here until
it is declared both in :data:`cueflow.scopes.ROUTE_SCOPES` and below (the policy is written
twice on purpose: widening a scope takes two edits, one of them in a security test).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from cueflow.engine import Engine
from cueflow.scopes import PUBLIC_ROUTES, ROUTE_SCOPES, Scope, route_key
from tests.helpers import assert_error
from tests.test_hostile_input import app_of

F, W, R = "full", "worker", "read"
PUBLIC = "public"

EXPECTED: dict[str, tuple[str, ...]] = {
    # no key at all
    "GET /openapi.json": (PUBLIC,),
    "GET /docs": (PUBLIC,),
    "GET /docs/oauth2-redirect": (PUBLIC,),
    "GET /redoc": (PUBLIC,),
    "GET /health": (PUBLIC,),
    "GET /status": (PUBLIC,),
    "GET /metrics": (PUBLIC,),
    "GET /v1/info": (PUBLIC,),
    "POST /v1/auth/register": (PUBLIC,),
    "POST /v1/echo/{token}": (PUBLIC,),
    "GET /ui": (PUBLIC,),
    "GET /ui/": (PUBLIC,),
    "GET /ui/{name:path}": (PUBLIC,),
    # the worker protocol
    "GET /v1/executions/claimable": (F, W, R),
    "POST /v1/executions/claims": (F, W),
    "POST /v1/executions/claim": (F, W),
    "POST /v1/executions/{execution_id}/claim": (F, W),
    "POST /v1/executions/{execution_id}/heartbeat": (F, W),
    "POST /v1/executions/{execution_id}/outcome": (F, W),
    "POST /v1/executions/outcomes": (F, W),
    "POST /v1/executions/{execution_id}/release": (F, W),
    "GET /v1/executions/{execution_id}": (F, W, R),
    "POST /v1/worker/heartbeat": (F, W),
    "GET /v1/workers": (F, W, R),
    "DELETE /v1/workers/{worker_id}": (F,),
    # executions
    "GET /v1/executions": (F, R),
    "POST /v1/executions/{execution_id}/replay": (F,),
    "POST /v1/executions/{execution_id}/verify": (F,),
    "POST /v1/executions/{execution_id}/verification-pending": (F,),
    "PATCH /v1/executions/{execution_id}/evidence": (F,),
    # cues
    "POST /v1/cues": (F,),
    "GET /v1/cues": (F, R),
    "GET /v1/cues/{cue_id}": (F, R),
    "PATCH /v1/cues/{cue_id}": (F,),
    "DELETE /v1/cues/{cue_id}": (F,),
    "POST /v1/cues/{cue_id}/fire": (F,),
    "POST /v1/cues/{cue_id}/backfill": (F,),
    # flows
    "POST /v1/flows": (F,),
    "GET /v1/flows": (F, R),
    "GET /v1/flows/{flow_id}": (F, R),
    "PATCH /v1/flows/{flow_id}": (F,),
    "DELETE /v1/flows/{flow_id}": (F,),
    "POST /v1/flows/{flow_id}/runs": (F,),
    "GET /v1/flow-runs": (F, R),
    "GET /v1/flow-runs/{run_id}": (F, R),
    "POST /v1/flow-runs/{run_id}/cancel": (F,),
    "POST /v1/flow-runs/{run_id}/events/{name}": (F,),
    # the account, keys and secrets
    "GET /v1/auth/me": (F, R),
    "PATCH /v1/auth/me": (F,),
    "GET /v1/auth/key": (F, R),
    "POST /v1/auth/key/regenerate": (F,),
    "GET /v1/auth/keys": (F, R),
    "POST /v1/auth/keys": (F,),
    "DELETE /v1/auth/keys/{key_id}": (F,),
    "GET /v1/auth/webhook-secret": (F,),
    "POST /v1/auth/webhook-secret/regenerate": (F,),
    "GET /v1/auth/alert-webhook-secret": (F,),
    "POST /v1/auth/alert-webhook-secret/regenerate": (F,),
    # the rest
    "GET /v1/alerts": (F, R),
    "GET /v1/usage": (F, R),
    "GET /v1/stats/overview": (F, R),
    "GET /v1/events/stream": (F, R),
    "GET /v1/echo/{token}": (F, R),
}
"""Which scopes may call each route (``public``: no key needed)."""


def app_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route of the app (iterating ``app.routes``)."""
    from fastapi.routing import iter_route_contexts

    found = []
    for context in iter_route_contexts(app_of(client).routes):
        path = context.original_route.path
        found += [(m, path) for m in sorted(context.methods or ()) if m != "HEAD"]
    assert len(found) > 50, found  # the enumeration itself must not silently go empty
    return found


def fill(path: str) -> str:
    """A concrete path for a template: every parameter a value nothing owns."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", "nothing-here-0123456789", path)


async def new_key(client: httpx.AsyncClient, auth: dict[str, str], scope: str) -> dict[str, str]:
    """Auth headers of a new key of ``scope`` of the account behind ``auth``."""
    response = await client.post("/v1/auth/keys", json={"scope": scope}, headers=auth)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['api_key']}"}


async def test_every_route_of_the_app_has_a_declared_scope(client: httpx.AsyncClient) -> None:
    served = {route_key(method, path) for method, path in app_routes(client)}
    assert served == set(EXPECTED), (
        f"declare these routes in EXPECTED: {sorted(served - set(EXPECTED))}; "
        f"these are declared but not served: {sorted(set(EXPECTED) - served)}"
    )
    assert served == set(ROUTE_SCOPES) | PUBLIC_ROUTES
    assert not set(ROUTE_SCOPES) & PUBLIC_ROUTES
    for route, allowed in EXPECTED.items():
        if allowed == (PUBLIC,):
            assert route in PUBLIC_ROUTES, route
        else:
            assert ROUTE_SCOPES[route] == {Scope(s) for s in allowed}, route


@pytest.mark.parametrize("scope", [F, W, R])
async def test_a_key_of_each_scope_reaches_exactly_its_routes(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str], scope: str
) -> None:
    key = await new_key(client, auth, scope)
    checked = 0
    for method, path in app_routes(client):
        route = route_key(method, path)
        allowed = EXPECTED[route]
        if allowed == (PUBLIC,):
            response = await client.request(method, fill(path), json={})
            assert response.status_code != 401, (route, response.text)
            continue
        # The in-process transport reads a whole answer: the event stream must end, as it
        # does at once on a draining engine.
        draining = engine.services.signals.draining
        if route == "GET /v1/events/stream":
            draining.set()
        try:
            response = await client.request(method, fill(path), json={}, headers=key)
        finally:
            draining.clear()
        if scope in allowed:
            refused = response.status_code == 403 and "insufficient_scope" in response.text
            assert not refused, (scope, route, response.text)
        else:
            error = assert_error(response, 403, "insufficient_scope")
            assert f"'{scope}' scope" in error["message"] and route in error["message"]
        checked += 1
    assert checked == len(ROUTE_SCOPES)


def test_the_agents_engine_client_checks_only_declared_routes() -> None:
    """Every route the in-process agent client checks a key against is one the app declares
    (a misspelt one would refuse every key but a full one)."""
    import cueflow.agents.engine_client as engine_client

    source = Path(engine_client.__file__).read_text(encoding="utf-8")
    checked = re.findall(r'_may\(self\.user, "([^"]+)"\)', source)
    assert len(checked) >= 15, checked
    assert set(checked) <= set(ROUTE_SCOPES), set(checked) - set(ROUTE_SCOPES)
