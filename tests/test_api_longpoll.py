"""Long-polls load the server in proportion to work, not to waiters: a key's waits share one
look per wake-up, a key may hold only so many waits, and waiting costs rate limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from cueflow.sql.store import SqlTx
from tests.conftest import eventually, make_settings, register
from tests.factories import make_once_cue

CAP = 6


@pytest.fixture
async def engine(database_url: str, clock: FakeClock) -> AsyncIterator[Engine]:
    """An engine whose accounts may hold 6 waits at once, 100 requests a minute."""
    settings = make_settings(
        database_url, max_waits_per_key=CAP, rate_limit_per_minute=100, rate_limit_wait_seconds=10
    )
    eng = Engine(settings, clock=clock)
    await eng.open()
    try:
        yield eng
    finally:
        await eng.close()


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(engine, manage_engine=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://cueflow.test") as c:
        yield c


@pytest.fixture
def looks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every claimable query the stores run, by account."""
    seen: list[str] = []
    original = SqlTx.claimable

    async def counting(self: SqlTx, user_id: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(user_id)
        return await original(self, user_id, *args, **kwargs)

    monkeypatch.setattr(SqlTx, "claimable", counting)
    return seen


def poll(client: httpx.AsyncClient, auth: dict[str, str], wait: int = 60) -> asyncio.Task[Any]:
    return asyncio.create_task(client.get(f"/v1/executions/claimable?wait={wait}", headers=auth))


async def settled() -> None:
    """Let the requests that were started reach their wait (nothing here moves the clock)."""
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_waits_beyond_the_per_key_cap_answer_at_once(
    client: httpx.AsyncClient, clock: FakeClock, looks: list[str]
) -> None:
    auth, other = await register(client), await register(client)
    polls = [poll(client, auth) for _ in range(CAP + 4)]
    await eventually(lambda: _async(sum(p.done() for p in polls) >= 4))
    await settled()
    answered = [p for p in polls if p.done()]
    assert len(answered) == 4  # the ones past the cap, at once
    for response in answered:
        assert response.result().status_code == 200
        assert response.result().json() == {"executions": []}
    # another account's waits are not affected
    theirs = poll(client, other)
    await settled()
    assert not theirs.done()
    clock.advance(61)
    for response in await asyncio.gather(*polls, theirs):
        assert response.json() == {"executions": []}


async def test_a_fire_wakes_every_waiter_with_one_look(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, looks: list[str]
) -> None:
    auth = await register(client)
    cue = await make_once_cue(client, auth, clock, in_seconds=3600)
    user = await engine.authenticate(auth["Authorization"])
    polls = [poll(client, auth)]
    await eventually(lambda: _async(engine.long_polls.waiting(user.user_id) == 1))
    polls += [poll(client, auth) for _ in range(CAP - 1)]
    await eventually(lambda: _async(engine.long_polls.waiting(user.user_id) == CAP))
    assert len(looks) == 1  # the first looked; the others joined its watch without a look
    assert not any(p.done() for p in polls)
    looks.clear()
    # a manual fire creates work now (the clock stands still: no fallback look is due)
    fired = await client.post(f"/v1/cues/{cue['id']}/fire", headers=auth)
    assert fired.status_code == 200, fired.text
    responses = await asyncio.wait_for(asyncio.gather(*polls), 10)
    ids = {tuple(i["execution_id"] for i in r.json()["executions"]) for r in responses}
    assert len(ids) == 1 and len(next(iter(ids))) == 1  # every waiter got the execution
    assert len(looks) == 1  # found by one look for all of them


async def test_waiters_of_two_tasks_are_woken_with_their_own_work(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock, looks: list[str]
) -> None:
    auth = await register(client)
    cue = await make_once_cue(client, auth, clock, in_seconds=3600, payload={"task": "a"})
    user = await engine.authenticate(auth["Authorization"])
    a = [asyncio.create_task(client.get("/v1/executions/claimable?task=a&wait=60", headers=auth))]
    b = [asyncio.create_task(client.get("/v1/executions/claimable?task=b&wait=60", headers=auth))]
    await eventually(lambda: _async(engine.long_polls.waiting(user.user_id) == 2))
    assert (await client.post(f"/v1/cues/{cue['id']}/fire", headers=auth)).status_code == 200
    got = await asyncio.wait_for(a[0], 10)
    assert len(got.json()["executions"]) == 1
    await settled()
    assert not b[0].done()  # nothing for task b: it keeps waiting
    clock.advance(61)
    assert (await asyncio.wait_for(b[0], 10)).json() == {"executions": []}


async def test_a_wait_is_charged_against_the_rate_limit_by_its_duration(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    auth = await register(client)
    first = await client.get("/v1/executions/claimable", headers=auth)
    assert first.headers["X-RateLimit-Remaining"] == "99"
    waiting = poll(client, auth, wait=30)
    await settled()
    clock.advance(30)
    assert (await asyncio.wait_for(waiting, 10)).headers["X-RateLimit-Remaining"] == "98"
    after = await client.get("/v1/executions/claimable", headers=auth)
    # 30 s of waiting cost 3 more requests (one per 10 s)
    assert after.headers["X-RateLimit-Remaining"] == "94"


async def _async(value: Any) -> Any:
    return value


async def test_a_wait_refused_for_the_cap_is_charged_the_wait_it_asked_for(
    client: httpx.AsyncClient, engine: Engine, clock: FakeClock
) -> None:
    auth = await register(client)
    user = await engine.authenticate(auth["Authorization"])
    held = [poll(client, auth) for _ in range(CAP)]
    await eventually(lambda: _async(engine.long_polls.waiting(user.user_id) == CAP))
    refused = await asyncio.wait_for(poll(client, auth, wait=60), 10)  # answered at once
    assert refused.json() == {"executions": []}
    after = await client.get("/v1/cues", headers=auth)
    # 6 held waits (1 each so far) + the refused one (1, and 60 s / 10 s = 6 more) + this one
    assert after.headers["X-RateLimit-Remaining"] == str(100 - CAP - 7 - 1)
    clock.advance(61)
    await asyncio.gather(*held)
