"""``cueflow.Client`` and ``cueflow.AsyncClient`` against the real app: one method per operation
of ``/openapi.json``, typed answers, the contract's errors as exceptions, pagination helpers and
retries that honour ``Retry-After``."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cueflow
from cueflow.api.app import create_app
from cueflow.client import (
    ApiError,
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    NotFound,
    RateLimited,
    Retries,
    ServiceUnavailable,
    Unauthorized,
    Unreachable,
    ValidationFailed,
    models,
)
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.http_client import ApiError as LegacyApiError
from cueflow.http_client import Unreachable as LegacyUnreachable
from tests.conftest import make_settings
from tests.helpers import cue_body
from tests.server import cueflow_server, free_port

BASE = "http://cueflow.test"


def _operations() -> list[tuple[str, str, str, dict[str, Any]]]:
    document = create_app().openapi()
    return [
        (operation["operationId"], method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


@pytest.mark.parametrize("kind", [Client, AsyncClient])
def test_every_operation_of_the_openapi_document_has_a_client_method(kind: type[Any]) -> None:
    client = kind(BASE)
    missing = []
    for operation_id, method, path, operation in _operations():
        resource, _, action = operation_id.partition(".")
        found = getattr(getattr(client, resource, None), action, None)
        if found is None:
            missing.append(operation_id)
            continue
        assert inspect.iscoroutinefunction(found) is (kind is AsyncClient), operation_id
        path_params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        positional = [
            name
            for name, parameter in inspect.signature(found).parameters.items()
            if parameter.kind is inspect.Parameter.POSITIONAL_ONLY
        ]
        assert positional == path_params, operation_id
        assert f"``{method} {path}``" in (found.__doc__ or ""), operation_id
    assert missing == []


def test_client_and_async_client_are_exported_lazily_from_cueflow() -> None:
    assert cueflow.Client is Client
    assert cueflow.AsyncClient is AsyncClient


def test_every_refusal_is_still_the_api_error_the_cli_catches() -> None:
    assert LegacyApiError is ApiError and LegacyUnreachable is Unreachable
    for kind in (BadRequest, Unauthorized, NotFound, Conflict, RateLimited, ServiceUnavailable):
        assert issubclass(kind, ApiError)
    assert issubclass(Unreachable, ServiceUnavailable)


def test_answer_models_keep_keys_the_client_does_not_know() -> None:
    claimed = models.Claimed.model_validate(
        {
            "claimed": True,
            "execution_id": "exec_1",
            "lease_seconds": 900,
            "id": "exec_1",
            "status": "claimed",
            "claimed_at": "2026-01-01T00:00:00Z",
            "region": "eu-west",  # a key a newer server might add
        }
    )
    assert claimed.execution_id == "exec_1" and claimed.status == "claimed"
    assert claimed.model_extra == {"region": "eu-west"}


@pytest.fixture
async def app_client(engine: Engine) -> AsyncIterator[AsyncClient]:
    """An :class:`AsyncClient` of a fresh account on the app, in process."""
    transport = httpx.ASGITransport(app=create_app(engine, manage_engine=False))
    async with AsyncClient(BASE, transport=transport) as anonymous:
        account = await anonymous.account.register({"email": "client@example.com"})
    async with AsyncClient(BASE, account.api_key, transport=transport) as client:
        yield client


async def test_async_client_drives_a_worker_cue_from_creation_to_outcome(
    app_client: AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    cue = await app_client.cues.create(cue_body(name="nightly"))
    assert isinstance(cue, models.Cue)
    assert (cue.name, cue.transport, cue.status) == ("nightly", "worker", "active")

    updated = await app_client.cues.update(cue.id, {"description": "every night"})
    assert updated.description == "every night"
    assert (await app_client.cues.get(cue.id)).description == "every night"

    run = await app_client.cues.fire(cue.id, {"payload": {"task": "now"}})
    claim = await app_client.executions.claim_next({"worker_id": "w1"})
    assert isinstance(claim, models.Claimed)
    assert claim.execution_id == run.id
    beat = await app_client.executions.heartbeat(claim.execution_id, x_worker_id="w1")
    assert beat.acknowledged is True
    recorded = await app_client.executions.report_outcome(
        claim.execution_id, {"success": True, "result": "done"}, x_worker_id="w1"
    )
    assert recorded.outcome_recorded is True
    execution = await app_client.executions.get(claim.execution_id)
    assert execution.status == "success"

    with pytest.raises(Conflict) as refused:
        await app_client.executions.claim(claim.execution_id, {"worker_id": "w2"})
    assert refused.value.status == 409

    await app_client.cues.delete(cue.id)
    with pytest.raises(NotFound) as missing:
        await app_client.cues.get(cue.id)
    assert (missing.value.status, missing.value.code) == (404, "cue_not_found")


async def test_iterate_walks_every_page_of_cues_and_executions(app_client: AsyncClient) -> None:
    names = {f"paged-{n}" for n in range(5)}
    for name in sorted(names):
        await app_client.cues.create(cue_body(name=name))
    seen = [cue.name async for cue in app_client.cues.iterate(page_size=2)]
    assert sorted(seen) == sorted(names)

    cue = await app_client.cues.create(cue_body(name="fired"))
    fired = {(await app_client.cues.fire(cue.id)).id for _ in range(3)}
    executions = [e.id async for e in app_client.executions.iterate(cue_id=cue.id, page_size=2)]
    assert sorted(executions) == sorted(fired)


async def test_refusals_are_typed_with_the_envelope_code_and_message(
    app_client: AsyncClient,
) -> None:
    with pytest.raises(BadRequest) as bad:
        await app_client.cues.create(cue_body(schedule={"type": "recurring", "cron": "nope"}))
    assert bad.value.code == "invalid_schedule"
    assert bad.value.message
    with pytest.raises((ValidationFailed, BadRequest)):
        await app_client.cues.create({"name": 5})
    anonymous = AsyncClient(BASE, "cue_sk_wrong", transport=app_client.transport.http._transport)
    with pytest.raises(Unauthorized) as unknown:
        await anonymous.cues.list()
    assert unknown.value.status == 401
    await anonymous.aclose()


async def test_the_server_s_429_is_retried_after_its_retry_after_then_raised(
    database_url: str, clock: FakeClock
) -> None:
    engine = Engine(make_settings(database_url, rate_limit_per_minute=2), clock=clock)
    await engine.open()
    try:
        app = create_app(engine, manage_engine=False)
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient(BASE, transport=transport) as anonymous:
            account = await anonymous.account.register({"email": "limited@example.com"})
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        retries = Retries(attempts=2, max_wait=120)
        async with AsyncClient(
            BASE, account.api_key, transport=transport, retries=retries, sleep=sleep
        ) as client:
            await client.cues.list()
            await client.cues.list()
            with pytest.raises(RateLimited) as limited:
                await client.cues.list()
        assert limited.value.code == "rate_limit_exceeded"
        assert limited.value.retry_after is not None and limited.value.retry_after >= 1
        assert len(waits) == 2
        assert all(1 <= wait <= 60 for wait in waits)
    finally:
        await engine.close()


def _flaky(statuses: list[int], retry_after: str | None) -> httpx.MockTransport:
    """A server answering each of ``statuses`` in turn (with ``Retry-After``), then 200."""
    answers = iter(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        if status == 200:
            return httpx.Response(200, json={"status": "ok"})
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = {"error": {"code": "busy", "message": "come back later", "status": status}}
        return httpx.Response(status, json=body, headers=headers)

    return httpx.MockTransport(handle)


def test_a_429_then_a_503_are_retried_after_the_seconds_the_server_asked() -> None:
    waits: list[float] = []
    with Client(BASE, transport=_flaky([429, 503], "2"), sleep=waits.append) as client:
        assert client.request("GET", "/v1/info") == {"status": "ok"}
    assert waits == [2.0, 2.0]


def test_without_retry_after_the_client_backs_off_and_gives_up_when_told() -> None:
    waits: list[float] = []
    retries = Retries(attempts=2, backoff=0.25)
    transport = _flaky([503, 503, 503], None)
    client = Client(BASE, transport=transport, retries=retries, sleep=waits.append)
    with client, pytest.raises(ServiceUnavailable) as refused:
        client.request("GET", "/v1/info")
    assert waits == [0.25, 0.5]
    assert refused.value.retry_after is None


def test_a_wait_longer_than_max_wait_is_not_waited_for() -> None:
    waits: list[float] = []
    retries = Retries(max_wait=5)
    client = Client(BASE, transport=_flaky([429], "30"), retries=retries, sleep=waits.append)
    with client, pytest.raises(RateLimited) as limited:
        client.request("GET", "/v1/info")
    assert (waits, limited.value.retry_after) == ([], 30.0)


def test_other_refusals_are_never_retried() -> None:
    waits: list[float] = []
    client = Client(BASE, transport=_flaky([404], "1"), sleep=waits.append)
    with client, pytest.raises(NotFound):
        client.request("GET", "/v1/info")
    assert waits == []


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` on SQLite."""
    workdir: Path = tmp_path_factory.mktemp("client-serve")
    with cueflow_server(f"sqlite:///{workdir / 'cueflow.db'}", workdir) as base:
        yield base


def test_blocking_client_against_a_real_cueflow_serve(served: str) -> None:
    with Client(served) as anonymous:
        account = anonymous.account.register({"email": "sync@example.com"})
        assert anonymous.server.health().status in ("ok", "healthy")
        assert "cueflow" in anonymous.server.metrics() or anonymous.server.metrics() == ""
    with Client(served, account.api_key) as client:
        cue = client.cues.create(cue_body(name="sync-cue"))
        assert [c.id for c in client.cues.iterate()] == [cue.id]
        assert client.account.get().email == "sync@example.com"
        keys = client.keys.create({"name": "reader", "scope": "read"})
        with Client(served, keys.api_key) as reader:
            assert reader.cues.get(cue.id).name == "sync-cue"
            with pytest.raises(ApiError) as refused:
                reader.cues.delete(cue.id)
            assert (refused.value.status, refused.value.code) == (403, "insufficient_scope")


def test_an_unreachable_server_is_unreachable_not_retried() -> None:
    waits: list[float] = []
    client = Client(f"http://127.0.0.1:{free_port()}", sleep=waits.append)
    with client, pytest.raises(Unreachable):
        client.server.health()
    assert waits == []


def test_the_generated_client_matches_the_server_s_openapi_document() -> None:
    """The models and methods are generated from ``/openapi.json``: a change to a route or a
    schema without ``python scripts/generate_client.py`` fails here (the client drifted)."""
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location(
        "generate_client", root / "scripts/generate_client.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    for name, source in generator.generated(create_app().openapi()).items():
        written = (root / "cueflow" / "client" / name).read_text()
        # compared as syntax trees: another ruff version may lay the same code out differently
        assert ast.dump(ast.parse(written)) == ast.dump(ast.parse(source)), (
            f"cueflow/client/{name} is stale: run python scripts/generate_client.py"
        )


def test_a_long_poll_may_outlast_the_client_s_timeout_by_the_wait_it_asked(served: str) -> None:
    with Client(served) as anonymous:
        key = anonymous.account.register({"email": "poller@example.com"}).api_key
    with Client(served, key, timeout=0.5) as client:
        started = time.monotonic()
        batch = client.executions.claim_batch({"worker_id": "w1", "wait": 1.5})
        assert batch.claimed == [] and time.monotonic() - started >= 1.0
        assert client.executions.claimable(wait=1.5).executions == []


async def test_a_model_body_sends_only_its_set_fields_and_wire_is_the_answer_as_sent(
    app_client: AsyncClient,
) -> None:
    body = models.CueCreate(
        name="typed-body",
        schedule=models.ScheduleIn(type="recurring", cron="*/5 * * * *"),
        transport="worker",
        payload={"task": "typed"},
    )
    cue = await app_client.cues.create(body)
    assert (cue.schedule.cron, cue.payload) == ("*/5 * * * *", {"task": "typed"})
    fetched = await app_client.cues.get(cue.id)
    assert fetched.wire() == await app_client.request("GET", f"/v1/cues/{cue.id}")
    assert isinstance(fetched.wire()["created_at"], str)
