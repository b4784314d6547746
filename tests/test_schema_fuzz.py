"""Property-based run of every operation in ``/openapi.json`` (schemathesis): valid and invalid
inputs, authenticated with a real API key, on SQLite and PostgreSQL. No answer may be a 5xx,
and every answer must match the document (declared status, content type, body schema).

The run is bounded and derandomized, so CI sees the same cases each time:
``CUEFLOW_FUZZ_EXAMPLES`` (default 25 per operation and store) raises the budget and
``CUEFLOW_FUZZ_RANDOM=1`` draws new cases, for a longer hunt by hand.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.python import asgi

from cueflow.api import create_app
from cueflow.engine import Engine
from tests.conftest import drop_pg_database, fresh_pg_database, make_settings, pg_available

MAX_EXAMPLES = int(os.environ.get("CUEFLOW_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("CUEFLOW_FUZZ_RANDOM") == "1"

NOT_APPLICABLE = [checks.positive_data_acceptance, checks.negative_data_rejection]
"""Checks the contract itself fails: valid-looking input is refused with 400 by rules no schema
states (cron syntax, ``X-Confirm-Destructive``, NUL characters, 16-character echo tokens), and
unknown query parameters are ignored as CueAPI ignores them. Every other built-in check runs."""

STATUSES: Counter[tuple[str, int]] = Counter()
"""Answers seen per store and status code (printed at the end of the module with ``-s``)."""


async def _public_dns(host: str) -> list[str]:
    """Every name resolves to a public address: generated callback URLs never reach the
    network, and the guard's ranges are tested in ``test_security_ssrf.py``."""
    return ["93.184.215.14"]


class Fuzzed:
    """The app under test, a registered caller and a few real objects to aim at."""

    def __init__(self, store: str, app: Any, engine: Engine) -> None:
        self.store = store
        self.app = app
        self.engine = engine
        self.headers: dict[str, str] = {}
        self.ids: dict[str, list[str]] = {}

    def seed(self) -> None:
        """Register a user and make one cue, one execution and one worker through the API."""
        with asgi.get_client(self.app) as client:
            email = f"fuzz-{uuid.uuid4().hex[:8]}@example.com"
            key = client.post("/v1/auth/register", json={"email": email}).json()["api_key"]
            self.headers = {"Authorization": f"Bearer {key}"}
            cue = client.post(
                "/v1/cues",
                headers=self.headers,
                json={
                    "name": "fuzz-target",
                    "transport": "worker",
                    "payload": {"task": "fuzz"},
                    "schedule": {"type": "recurring", "cron": "0 9 * * *"},
                },
            ).json()
            fired = client.post(f"/v1/cues/{cue['id']}/fire", headers=self.headers).json()
            client.post(
                "/v1/worker/heartbeat", headers=self.headers, json={"worker_id": "fuzz-worker"}
            )
        self.ids = {
            "cue_id": [cue["id"]],
            "execution_id": [fired["id"]],
            "worker_id": ["fuzz-worker"],
            "token": ["fuzz-token"],
        }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[Fuzzed]:
    """The standalone app (engine started by its lifespan in schemathesis' event loop)."""
    store = request.param
    if store == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'cueflow.db'}"
    else:
        if not pg_available():
            pytest.skip("PostgreSQL is not reachable")
        url = asyncio.run(fresh_pg_database())
    engine = Engine(make_settings(url, rate_limit_per_minute=0))
    engine.transports["webhook"].guard.resolve = _public_dns  # type: ignore[attr-defined]
    app = create_app(engine)
    target = Fuzzed(store, app, engine)
    try:
        target.seed()
        yield target
    finally:
        asgi.shutdown_lifespans()
        if store != "sqlite":
            asyncio.run(drop_pg_database(url))
        seen = {k: v for k, v in sorted(STATUSES.items()) if k[0] == store}
        print(f"\nschema fuzz answers on {store}: {seen}")


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) of the document, read from an app that is never started."""
    document = create_app(Engine(make_settings("sqlite://"))).openapi()
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


OPERATIONS = _operations()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    """The running app's own OpenAPI document."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzzed.app)


def _cases(operation: Any, ids: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    """Valid and invalid requests; path ids sometimes name the seeded objects."""
    strategies = [operation.as_strategy(mode) for mode in GenerationMode]
    names = [p.name for p in operation.path_parameters]
    if names and all(n in ids for n in names):
        real = {n: ids[n][0] for n in names}
        strategies += [operation.as_strategy(mode, path_parameters=real) for mode in GenerationMode]
    return st.one_of(strategies).map(_short_waits)


def _short_waits(case: Any) -> Any:
    """Long-poll ``wait`` values cut to a hundredth of a second: the run stays bounded, and a
    value the schema refuses stays refused."""
    for part in (case.query, case.body):
        wait = part.get("wait") if isinstance(part, dict) else None
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0.01:
            part["wait"] = 0.01
    return case


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_schema_and_never_5xx(
    method: str, path: str, fuzzed: Fuzzed, api_schema: Any
) -> None:
    operation = api_schema[path][method]

    @hypothesis.given(case=_cases(operation, fuzzed.ids))
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        derandomize=not RANDOM,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def run(case: Any) -> None:
        response = case.call(headers=fuzzed.headers)
        STATUSES[(fuzzed.store, response.status_code)] += 1
        if path == "/v1/auth/key/regenerate" and response.status_code == 200:
            fuzzed.headers = {"Authorization": f"Bearer {response.json()['api_key']}"}
        assert response.status_code < 500, f"{case.as_curl_command()}\n{response.text}"
        case.validate_response(response, headers=fuzzed.headers, excluded_checks=NOT_APPLICABLE)

    run()


def test_every_route_declares_the_shape_of_its_answer() -> None:
    from fastapi.routing import APIRoute, iter_route_contexts

    app = create_app(Engine(make_settings("sqlite://")))
    undeclared = [
        (sorted(context.methods or ()), context.path)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and context.original_route.include_in_schema
        and context.original_route.status_code != 204
        and context.original_route.response_model is None
        and context.path not in ("/metrics",)  # Prometheus text, not JSON
    ]
    assert undeclared == []


async def test_a_happy_path_through_every_operation_matches_the_document(
    client: Any, clock: Any
) -> None:
    """Every operation answers a 2xx at least once here, and each answer matches
    ``/openapi.json``: the fuzz above rarely reaches the successful answers of deep flows."""
    document = schemathesis.openapi.from_dict(
        create_app(Engine(make_settings("sqlite://"))).openapi()
    )
    answered: set[tuple[str, str]] = set()

    async def call(method: str, template: str, path: str | None = None, **kwargs: Any) -> Any:
        response = await client.request(method, path or template, **kwargs)
        assert response.status_code < 300, (method, path or template, response.text)
        document[template][method].validate_response(response)
        answered.add((method, template))
        is_json = response.headers.get("content-type", "").startswith("application/json")
        return response.json() if is_json else None

    key = await call("POST", "/v1/auth/register", json={"email": "happy@example.com"})
    auth = {"Authorization": f"Bearer {key['api_key']}"}
    confirm = {**auth, "X-Confirm-Destructive": "true"}
    a = {"headers": auth}
    await call("POST", "/v1/worker/heartbeat", json={"worker_id": "w", "handlers": ["t"]}, **a)
    body = {"name": "h", "payload": {"task": "t"}, "transport": "worker"}
    cue = await call(
        "POST",
        "/v1/cues",
        json={**body, "schedule": {"type": "interval", "interval_seconds": 60}},
        **a,
    )
    c = cue["id"]
    await call("GET", "/v1/cues", **a)
    await call("PATCH", "/v1/cues/{cue_id}", f"/v1/cues/{c}", json={"description": "d"}, **a)
    e = (await call("POST", "/v1/cues/{cue_id}/fire", f"/v1/cues/{c}/fire", **a))["id"]
    await call("GET", "/v1/executions/claimable", **a)
    x = f"/v1/executions/{e}"
    await call(
        "POST", "/v1/executions/{execution_id}/claim", f"{x}/claim", json={"worker_id": "w"}, **a
    )
    await call("POST", "/v1/executions/{execution_id}/heartbeat", f"{x}/heartbeat", **a)
    outcome = {"success": True, "result": "r", "metadata": {"k": 1}}
    await call("POST", "/v1/executions/{execution_id}/outcome", f"{x}/outcome", json=outcome, **a)
    await call(
        "POST",
        "/v1/executions/{execution_id}/verification-pending",
        f"{x}/verification-pending",
        **a,
    )
    await call(
        "PATCH", "/v1/executions/{execution_id}/evidence", f"{x}/evidence", json={"url": "u"}, **a
    )
    await call(
        "POST", "/v1/executions/{execution_id}/verify", f"{x}/verify", json={"valid": True}, **a
    )
    await call("POST", "/v1/executions/{execution_id}/replay", f"{x}/replay", **a)
    await call("GET", "/v1/executions/{execution_id}", x, **a)
    await call("GET", "/v1/executions", **a)
    await call("GET", "/v1/cues/{cue_id}", f"/v1/cues/{c}", **a)
    clock.advance(seconds=1)
    r = (await call("POST", "/v1/executions/claim", json={"worker_id": "w"}, **a))["execution_id"]
    await call(
        "POST", "/v1/executions/{execution_id}/release", f"/v1/executions/{r}/release",
        json={"worker_id": "w", "retry_after_seconds": 0}, **a,
    )  # fmt: skip
    batch = await call("POST", "/v1/executions/claims", json={"worker_id": "w"}, **a)
    outcomes = [{"execution_id": i["execution_id"], "success": True} for i in batch["claimed"]]
    await call(
        "POST", "/v1/executions/outcomes", json={"worker_id": "w", "outcomes": outcomes}, **a
    )
    window = {"start": "2026-01-05T11:00:00Z", "end": "2026-01-05T11:05:00Z"}
    await call("POST", "/v1/cues/{cue_id}/backfill", f"/v1/cues/{c}/backfill", json=window, **a)
    await call("GET", "/v1/workers", **a)
    k = (await call("POST", "/v1/auth/keys", json={"scope": "worker", "name": "n"}, **a))["id"]
    await call("GET", "/v1/auth/keys", **a)
    await call("DELETE", "/v1/auth/keys/{key_id}", f"/v1/auth/keys/{k}", **a)
    await call("GET", "/v1/auth/me", **a)
    await call("PATCH", "/v1/auth/me", json={"email": "happy2@example.com"}, **a)
    await call("GET", "/v1/auth/key", **a)
    for secret in ("/v1/auth/webhook-secret", "/v1/auth/alert-webhook-secret"):
        await call("GET", secret, **a)
        await call("POST", f"{secret}/regenerate", headers=confirm)
    await call("GET", "/v1/alerts", **a)
    await call("GET", "/v1/usage", **a)
    for window in ("1h", "24h"):
        await call("GET", "/v1/stats/overview", params={"window": window}, **a)
    for probe in ("/v1/info", "/health", "/status", "/metrics"):
        await call("GET", probe)
    token = "/v1/echo/happy-path-token-0001"
    await call("GET", "/v1/echo/{token}", token, **a)
    await call("POST", "/v1/echo/{token}", token, json={"hello": "world"})
    await call("GET", "/v1/echo/{token}", token, **a)
    steps = [
        {"id": "fetch", "payload": {"task": "t"}},
        {"id": "approve", "needs": ["fetch"], "type": "wait", "event": "ok", "timeout_seconds": 60},
    ]
    flow = await call("POST", "/v1/flows", json={"name": "f", "steps": steps}, **a)
    fl = f"/v1/flows/{flow['id']}"
    await call("GET", "/v1/flows", **a)
    await call("GET", "/v1/flows/{flow_id}", fl, **a)
    hourly = {"type": "interval", "interval_seconds": 3600}
    patch = {"description": "d", "schedule": hourly}
    await call("PATCH", "/v1/flows/{flow_id}", fl, json=patch, **a)
    run = await call("POST", "/v1/flows/{flow_id}/runs", f"{fl}/runs", json={"input": {}}, **a)
    ru = f"/v1/flow-runs/{run['id']}"
    await call("GET", "/v1/flow-runs", **a)
    await call("GET", "/v1/flow-runs/{run_id}", ru, **a)
    await call(
        "POST", "/v1/flow-runs/{run_id}/events/{name}", f"{ru}/events/ok", json={"data": 1}, **a
    )
    await call("POST", "/v1/flow-runs/{run_id}/cancel", f"{ru}/cancel", **a)
    await call("DELETE", "/v1/flows/{flow_id}", fl, **a)
    await call("DELETE", "/v1/workers/{worker_id}", "/v1/workers/w", **a)
    await call("DELETE", "/v1/cues/{cue_id}", f"/v1/cues/{c}", **a)
    await call("POST", "/v1/auth/key/regenerate", headers=confirm)

    documented = {(m.upper(), p) for p, ops in document.raw_schema["paths"].items() for m in ops}
    assert documented - answered == set()
