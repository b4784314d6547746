"""The worker fast path (``cueflow.api.fastpath``) answers exactly as the FastAPI routes do: the
same requests, valid and not, sent to an app with it and to one without it (over one engine)
get the same status, the same headers (but the request id and the rate-limit reset, which are
per response) and the same body bytes (execution ids aside, when each app claims its own)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from cueflow.api.app import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.claims_support import many_due_executions
from tests.conftest import make_settings

IDS = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|cue_[a-z0-9]+|job-[0-9]+"
)
"""Execution ids, and the ids and names of their cues (each app works on executions of its own)."""
PER_RESPONSE = {b"x-request-id", b"x-ratelimit-reset", b"retry-after"}
"""Values made per response: an id, and times read from the clock at each request."""
RETRY_AFTER = re.compile(rb"Retry after [0-9]+ seconds")


@dataclass
class Sides:
    """A client on the app with the fast path, one on the app without it, and the
    executions each may change."""

    fast: httpx.AsyncClient
    slow: httpx.AsyncClient
    auth: dict[str, str]
    other_auth: dict[str, str]
    ids: dict[str, list[str]] = field(default_factory=dict)


def wire(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """What a client sees, less what differs per response (the values of the request id, the
    rate-limit reset and a refusal's wait, which must be there) and execution ids."""
    headers = []
    for name, value in response.headers.raw:
        if name.lower() in PER_RESPONSE:
            assert value
            value = b"<per response>"
        headers.append((name.lower(), value))
    body = RETRY_AFTER.sub(b"Retry after <n> seconds", response.content)
    return response.status_code, headers, IDS.sub(b"<id>", body)


async def same(
    sides: Sides, method: str, fast_path: str, slow_path: str | None = None, **kwargs: Any
) -> httpx.Response:
    """Send the request to both apps (``slow_path`` for the second when each app works on
    its own execution) and assert both answered alike; the fast path's answer."""
    fast = await sides.fast.request(method, fast_path, **kwargs)
    slow = await sides.slow.request(method, slow_path or fast_path, **kwargs)
    assert wire(fast) == wire(slow), (method, fast_path, fast.text, slow.text)
    return fast


@pytest.fixture
async def sides(engine: Engine, clock: FakeClock) -> AsyncIterator[Sides]:
    fast_app = create_app(engine, manage_engine=False)
    slow_app = create_app(engine, manage_engine=False, fast_path=False)
    base = "http://cueflow.test"
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=fast_app), base_url=base) as fast,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=slow_app), base_url=base) as slow,
    ):
        # registered in the engine: neither app's budgets counted anything yet
        keys = [
            (await engine.register(email))["api_key"]
            for email in ("fast@example.com", "other@example.com")
        ]
        user = await engine.principal(keys[0])
        ids = sorted(await many_due_executions(engine, clock, user, 12))
        yield Sides(
            fast,
            slow,
            {"Authorization": f"Bearer {keys[0]}"},
            {"Authorization": f"Bearer {keys[1]}"},
            {"fast": ids[:6], "slow": ids[6:]},
        )


async def test_valid_worker_cycles_answer_alike(sides: Sides) -> None:
    auth = sides.auth
    fast_ids, slow_ids = sides.ids["fast"], sides.ids["slow"]
    worker = {**auth, "X-Worker-Id": "w1"}
    assert (await same(sides, "GET", "/v1/executions/claimable", headers=auth)).status_code == 200
    await same(sides, "GET", "/v1/executions/claimable?limit=3&task=job&wait=0", headers=worker)
    await same(sides, "GET", "/v1/executions/claimable?task=", headers=auth)

    def pair(template: str, index: int) -> dict[str, str]:
        return {
            "fast_path": template.format(fast_ids[index]),
            "slow_path": template.format(slow_ids[index]),
        }

    claimed = await same(
        sides, "POST", **pair("/v1/executions/{}/claim", 0), headers=auth, json={"worker_id": "w1"}
    )
    assert claimed.status_code == 200
    await same(sides, "POST", **pair("/v1/executions/{}/heartbeat", 0), headers=worker)
    await same(sides, "POST", **pair("/v1/executions/{}/heartbeat", 0), headers=auth, json={})
    done = await same(
        sides,
        "POST",
        **pair("/v1/executions/{}/outcome", 0),
        headers=worker,
        json={"success": True, "result": "ok", "metadata": {"n": 1}, "extra": "ignored"},
    )
    assert done.status_code == 200
    await same(  # reported already
        sides, "POST", **pair("/v1/executions/{}/outcome", 0), headers=auth, json={"success": True}
    )
    await same(sides, "POST", **pair("/v1/executions/{}/heartbeat", 0), headers=worker)
    await same(
        sides,
        "POST",
        **pair("/v1/executions/{}/claim", 1),
        headers={**auth, "Content-Type": "application/json; charset=utf-8"},
        content=b'{"worker_id": "w2"}',
    )
    await same(  # another worker's claim
        sides,
        "POST",
        **pair("/v1/executions/{}/outcome", 1),
        headers=worker,
        json={"success": False},
    )
    for side, name in ((sides.fast, "fast"), (sides.slow, "slow")):
        response = await side.post(
            "/v1/executions/claims",
            headers=auth,
            json={"worker_id": "w3", "execution_ids": [sides.ids[name][2], sides.ids[name][1]]},
        )
        assert response.status_code == 200
    fast_batch = await sides.fast.post(
        "/v1/executions/claims",
        headers=auth,
        json={"worker_id": "w3", "execution_ids": fast_ids[3:4]},
    )
    slow_batch = await sides.slow.post(
        "/v1/executions/claims",
        headers=auth,
        json={"worker_id": "w3", "execution_ids": slow_ids[3:4]},
    )
    assert wire(fast_batch) == wire(slow_batch)
    fast_report = await sides.fast.post(
        "/v1/executions/outcomes",
        headers=auth,
        json={"outcomes": [{"execution_id": i, "success": True} for i in fast_ids[2:5]]},
    )
    slow_report = await sides.slow.post(
        "/v1/executions/outcomes",
        headers=auth,
        json={"outcomes": [{"execution_id": i, "success": True} for i in slow_ids[2:5]]},
    )
    assert wire(fast_report) == wire(slow_report)
    assert fast_report.status_code == 200
    next_claim = await same(
        sides, "POST", "/v1/executions/claim", headers=auth, json={"worker_id": "w"}
    )
    assert next_claim.status_code == 200


ROUTES = [
    ("POST", "/v1/executions/claim"),
    ("POST", "/v1/executions/{id}/claim"),
    ("POST", "/v1/executions/{id}/heartbeat"),
    ("POST", "/v1/executions/{id}/outcome"),
    ("POST", "/v1/executions/claims"),
    ("POST", "/v1/executions/outcomes"),
    ("GET", "/v1/executions/claimable"),
]

BAD_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("bad json", {"content": b'{"worker_id": ', "headers": {"Content-Type": "application/json"}}),
    ("missing worker_id", {"json": {}}),
    ("json list", {"json": [{"worker_id": "w"}]}),
    ("too long worker_id", {"json": {"worker_id": "w" * 256, "success": True}}),
    ("wrong types", {"json": {"worker_id": 7, "success": "maybe", "outcomes": "x"}}),
    ("text body", {"content": b'{"worker_id": "w"}', "headers": {"Content-Type": "text/plain"}}),
    ("form body", {"data": {"worker_id": "w"}}),
    ("no content type", {"content": b'{"worker_id": "w", "success": true}'}),
    ("empty body", {"content": b"", "headers": {"Content-Type": "application/json"}}),
    ("oversized", {"json": {"worker_id": "w", "result": "x" * 1_100_000}}),
    (
        "too deep",
        {"content": b"[" * 70 + b"]" * 70, "headers": {"Content-Type": "application/json"}},
    ),
    ("NaN", {"content": b'{"worker_id": NaN}', "headers": {"Content-Type": "application/json"}}),
    ("no auth", {"json": {"worker_id": "w", "success": True}, "auth": None}),
    ("wrong key", {"json": {"worker_id": "w"}, "auth": {"Authorization": "Bearer cue_sk_nope"}}),
    ("lowercase bearer", {"json": {"worker_id": "w"}, "auth": "lower"}),
    ("wrong owner", {"json": {"worker_id": "w", "success": True}, "auth": "other"}),
    # served (to a caller with nothing to claim) by the stack behind the fast path
    (
        "verify echo",
        {
            "json": {"worker_id": "w", "success": True},
            "auth": "other",
            "headers": {"X-CueAPI-Verify-Echo": "true"},
        },
    ),
    (
        "cors",
        {
            "json": {"worker_id": "w", "success": True},
            "auth": "other",
            "headers": {"Origin": "https://x.example"},
        },
    ),
    (
        "empty worker header",
        {"json": {"worker_id": "w"}, "auth": "other", "headers": {"X-Worker-Id": ""}},
    ),
    (
        "long worker header",
        {"json": {"worker_id": "w"}, "auth": "other", "headers": {"X-Worker-Id": "w" * 256}},
    ),
    ("bad query", {"params": {"limit": "0", "wait": "x"}}),
    ("huge limit", {"params": {"limit": "100000"}}),
    ("NUL in query", {"params": {"task": "a\x00b"}}),
]


@pytest.mark.parametrize(("method", "route"), ROUTES)
async def test_refused_requests_answer_alike(sides: Sides, method: str, route: str) -> None:
    unknown = "5f0c1c6e-7d1a-4b8e-9c3a-2f6d8e1b4a70"
    for name, case in BAD_REQUESTS:
        kwargs = dict(case)
        auth = kwargs.pop("auth", sides.auth)
        if auth == "other":
            auth = sides.other_auth
        elif auth == "lower":
            auth = {"Authorization": sides.auth["Authorization"].replace("Bearer", "bearer")}
        headers = {**(auth or {}), **kwargs.pop("headers", {})}
        if method == "GET":
            kwargs.pop("json", None), kwargs.pop("data", None)
        # an id of the caller's that neither app changes: "wrong owner" reads it as another's
        path = route.format(id=sides.ids["fast"][5] if name == "wrong owner" else unknown)
        response = await same(sides, method, path, headers=headers, **kwargs)
        assert response.status_code < 500, (name, route, response.text)


async def test_the_fast_path_serves_valid_worker_requests_with_metrics(
    sides: Sides, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Unreachable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"FastAPI's route served a valid worker request ({name})")

    # the FastAPI routes can no longer answer: what succeeds was served by the fast path
    monkeypatch.setattr("cueflow.api.routes.executions.answers", Unreachable())
    auth = {**sides.auth, "X-Worker-Id": "w1"}
    execution_id = sides.ids["fast"][0]
    assert (await sides.fast.get("/v1/executions/claimable", headers=auth)).status_code == 200
    claimed = await sides.fast.post(
        f"/v1/executions/{execution_id}/claim", headers=auth, json={"worker_id": "w1"}
    )
    assert claimed.status_code == 200
    heartbeat = await sides.fast.post(f"/v1/executions/{execution_id}/heartbeat", headers=auth)
    assert heartbeat.status_code == 200
    unknown = await sides.fast.post(
        "/v1/executions/5f0c1c6e-7d1a-4b8e-9c3a-2f6d8e1b4a70/outcome",
        headers=auth,
        json={"success": True},
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "execution_not_found"
    counts = {
        (s.labels["method"], s.labels["route"], s.labels["status"]): s.value
        for family in engine.metrics.http_duration.collect()
        for s in family.samples
        if s.name.endswith("_count")
    }
    assert counts[("GET", "/v1/executions/claimable", "200")] == 1
    assert counts[("POST", "/v1/executions/{execution_id}/claim", "200")] == 1
    assert counts[("POST", "/v1/executions/{execution_id}/heartbeat", "200")] == 1
    assert counts[("POST", "/v1/executions/{execution_id}/outcome", "404")] == 1


async def test_rate_limit_refusals_answer_alike(database_url: str, clock: FakeClock) -> None:
    engine = Engine(make_settings(database_url, rate_limit_per_minute=3), clock=clock)
    await engine.open()
    try:
        key = (await engine.register("limited@example.com"))["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        base = "http://cueflow.test"
        fast_app = create_app(engine, manage_engine=False)
        slow_app = create_app(engine, manage_engine=False, fast_path=False)
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=fast_app), base_url=base) as fast,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=slow_app), base_url=base) as slow,
        ):
            sides = Sides(fast, slow, auth, auth)
            statuses = [
                (await same(sides, "GET", "/v1/executions/claimable", headers=auth)).status_code
                for _ in range(4)
            ]
            refused = await same(
                sides, "POST", "/v1/executions/claim", headers=auth, json={"worker_id": "w"}
            )
    finally:
        await engine.close()
    assert statuses == [200, 200, 200, 429]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"].isdigit()
