"""``GET /v1/events/stream``: the dashboard's live stream of the caller's execution and cue
changes (server-sent events), bounded by heartbeats, a time limit and the engine's drain, on
both stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

import cueflow.change_feed as change_feed
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.factories import due_execution, make_worker_cue
from tests.helpers import assert_error


def parse(chunk: bytes) -> list[tuple[str, Any]]:
    """The events of a chunk of the stream (comments as ``(":", text)``)."""
    found: list[tuple[str, Any]] = []
    for block in chunk.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith("retry:")]
        if not lines:
            continue
        if lines[0].startswith(":"):
            found.append((":", lines[0][1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        found.append((fields["event"], orjson.loads(fields["data"])))
    return found


async def collect(stream: AsyncIterator[bytes], *until: str, limit: float = 10.0) -> list[Any]:
    """The stream's events until one of each name in ``until`` came (at most ``limit``
    seconds)."""
    events: list[Any] = []

    async def read() -> None:
        async for chunk in stream:
            events.extend(parse(chunk))
            if set(until) <= {name for name, _ in events}:
                return

    await asyncio.wait_for(read(), timeout=limit)
    return events


async def never_gone() -> bool:
    return False


async def test_a_drained_server_ends_the_stream_at_once(
    client: httpx.AsyncClient, engine: Engine, auth: dict[str, str]
) -> None:
    engine.services.signals.draining.set()
    response = await asyncio.wait_for(client.get("/v1/events/stream", headers=auth), timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    names = [name for name, _ in parse(response.content)]
    assert names == ["hello", "drain"]


async def test_the_stream_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_error(await client.get("/v1/events/stream"), 401, "invalid_api_key")


async def test_a_drain_during_an_open_stream_ends_it_within_a_look(
    engine: Engine, auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].split()[1])
    stream = change_feed.stream(engine.services, user, never_gone, look_seconds=30)
    assert [name for name, _ in parse(await anext(stream))] == ["hello"]
    asyncio.get_running_loop().call_later(0.05, engine.services.signals.draining.set)
    events = await collect(stream, "drain", limit=2.0)  # well under the 30 s look
    assert events[-1][0] == "drain"


async def test_changes_of_the_accounts_executions_and_cues_are_sent(
    client: httpx.AsyncClient,
    engine: Engine,
    clock: FakeClock,
    auth: dict[str, str],
    other_auth: dict[str, str],
) -> None:
    user = await engine.principal(auth["Authorization"].split()[1])
    stream = change_feed.stream(engine.services, user, never_gone, look_seconds=0.02)
    await anext(stream)
    clock.advance(1)
    await make_worker_cue(client, other_auth)  # another account's: not sent
    execution = await due_execution(client, engine, clock, auth)
    events = await collect(stream, "executions", "cues")
    changed = [e for name, data in events if name == "executions" for e in data["executions"]]
    assert [(e["id"], e["status"]) for e in changed] == [(execution["id"], "pending")]
    assert ("cues", {"count": 1}) in events
    await stream.aclose()


async def test_a_quiet_stream_sends_heartbeats_and_ends_at_its_time_limit(
    engine: Engine, auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].split()[1])
    stream = change_feed.stream(
        engine.services,
        user,
        never_gone,
        look_seconds=0.01,
        heartbeat_seconds=0.01,
        max_seconds=2.0,  # room for a loaded machine's slow first look (a heartbeat needs one)
    )
    events = await collect(stream, "bye")
    names = [name for name, _ in events]
    assert names[0] == "hello" and names[-1] == "bye"
    assert ":" in names


async def test_a_client_that_went_away_ends_its_stream(
    engine: Engine, auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].split()[1])

    async def gone() -> bool:
        return True

    stream = change_feed.stream(engine.services, user, gone, look_seconds=0.01)
    chunks = [chunk async for chunk in stream]
    assert [name for chunk in chunks for name, _ in parse(chunk)] == ["hello"]


async def test_an_account_past_its_open_streams_gets_busy_until_one_ends(
    engine: Engine, auth: dict[str, str], other_auth: dict[str, str]
) -> None:
    user = await engine.principal(auth["Authorization"].split()[1])
    other = await engine.principal(other_auth["Authorization"].split()[1])
    slots = change_feed.StreamSlots(limit=2)

    def open_stream(who: Any) -> Any:
        return change_feed.stream(engine.services, who, never_gone, look_seconds=30, slots=slots)

    first, second = open_stream(user), open_stream(user)
    for stream in (first, second):
        assert parse(await anext(stream))[0][0] == "hello"
    assert [name for chunk in [c async for c in open_stream(user)] for name, _ in parse(chunk)] == [
        "busy"
    ]
    another = open_stream(other)  # another account's slots are its own
    assert parse(await anext(another))[0][0] == "hello"
    await first.aclose()
    third = open_stream(user)
    assert parse(await anext(third))[0][0] == "hello"
    for stream in (second, another, third):
        await stream.aclose()
