"""The SSRF guard against what attackers actually send: redirects to private and metadata
addresses, DNS answers that turn private, and IP literals in their odd spellings (decimal,
octal, hex, short, IPv4-mapped/compatible/translated IPv6). ``test_webhook_ssrf.py`` pins the
guard's ranges and messages; this file attacks them. Nothing leaves 127.0.0.1: numeric
spellings are resolved by the system resolver, which parses them without asking DNS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from cueflow_webhook.guard import DELIVERY_BLOCKED, BlockedUrl, UrlGuard

from cueflow.clock import FakeClock
from tests.webhook_support import (
    Receiver,
    api,
    create_cue,
    executions_of,
    fire,
    new_user,
    open_engine,
    webhook,
)

PUBLIC = "93.184.215.14"

LOOPBACK_SPELLINGS = [
    "http://2130706433/",  # decimal
    "http://0177.0.0.1/",  # octal
    "http://0x7f.0.0.1/",  # hex
    "http://0x7f000001/",
    "http://017700000001/",
    "http://127.1/",  # short form
    "http://LocalHost/",
    "http://[::ffff:7f00:1]/",  # IPv4-mapped
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:0:7f00:1]/",  # IPv4-translated
]
METADATA_SPELLINGS = [
    "http://169.254.169.254./latest/meta-data/",
    "http://2852039166/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    "http://[2002:a9fe:a9fe::1]/",  # 6to4
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[fe80::1%25eth0]/",
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS + METADATA_SPELLINGS)
async def test_every_spelling_of_loopback_and_metadata_is_refused_at_creation_and_send(
    url: str,
) -> None:
    guard = UrlGuard()  # the real system resolver: numeric forms never reach DNS
    with pytest.raises(BlockedUrl):
        await guard.check(url)
    with pytest.raises(BlockedUrl) as refused:
        await guard.check_send(url)
    assert refused.value.message == DELIVERY_BLOCKED


@pytest.mark.parametrize("url", METADATA_SPELLINGS)
async def test_metadata_spellings_stay_refused_when_private_webhooks_are_allowed(
    url: str,
) -> None:
    guard = UrlGuard(allow_private=True)
    with pytest.raises(BlockedUrl):
        await guard.check_send(url)


@pytest.mark.parametrize(
    "answer",
    [
        ["169.254.169.254"],
        ["::ffff:169.254.169.254"],
        ["::169.254.169.254"],
        [PUBLIC, "169.254.169.254"],
        ["fe80::1"],
        ["0.0.0.0"],
        ["not-an-address"],
        [],
    ],
)
async def test_dns_answers_pointing_at_metadata_are_refused_even_when_private_is_allowed(
    answer: list[str],
) -> None:
    async def resolve(host: str) -> list[str]:
        return answer

    guard = UrlGuard(allow_private=True, resolve=resolve)
    with pytest.raises(BlockedUrl):
        await guard.check("https://hooks.example.test/x")
    with pytest.raises(BlockedUrl):
        await guard.check_send("https://hooks.example.test/x")


@asynccontextmanager
async def redirecting(location: str) -> AsyncIterator[tuple[int, list[bytes]]]:
    """A server on 127.0.0.1 answering every request ``302 Location: location``; yields its
    port and the request heads it got."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: " + location.encode() + b"\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], heads
    finally:
        server.close()
        await server.wait_closed()


async def test_a_redirect_to_a_private_address_is_not_followed(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as inside,
        redirecting(inside.url("/internal-admin")) as (port, heads),
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        cue = await create_cue(
            client, auth, clock, f"http://127.0.0.1:{port}/hook", retry={"max_attempts": 1}
        )

        await fire(engine, clock)

        [execution] = await executions_of(client, auth, cue["id"])
    assert len(heads) == 1  # the first hop was sent ...
    assert inside.requests == []  # ... and the redirect was not followed
    assert (execution["status"], execution["http_status"]) == ("failed", 302)


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:a9fe:a9fe]/",
        "file:///etc/passwd",
    ],
)
async def test_a_redirect_to_metadata_fails_the_attempt_without_a_second_request(
    database_url: str, clock: FakeClock, location: str
) -> None:
    async with (
        redirecting(location) as (port, heads),
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        cue = await create_cue(
            client, auth, clock, f"http://127.0.0.1:{port}/hook", retry={"max_attempts": 1}
        )

        await fire(engine, clock)

        [execution] = await executions_of(client, auth, cue["id"])
    assert len(heads) == 1
    assert (execution["status"], execution["http_status"]) == ("failed", 302)


async def test_a_name_rebound_to_metadata_after_creation_gets_no_request(
    database_url: str, clock: FakeClock
) -> None:
    dns = {"hooks.example.test": ["127.0.0.1"]}

    async def resolve(host: str) -> list[str]:
        return dns[host]

    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,  # private allowed: the receiver is local
        api(engine) as client,
    ):
        webhook(engine).guard.resolve = resolve
        auth = await new_user(client)
        url = receiver.url(host="hooks.example.test")
        cue = await create_cue(client, auth, clock, url, retry={"max_attempts": 1})
        dns["hooks.example.test"] = ["::ffff:169.254.169.254"]

        await fire(engine, clock)

        [execution] = await executions_of(client, auth, cue["id"])
    assert receiver.requests == []
    assert execution["status"] == "failed"
    assert execution["error_message"] == DELIVERY_BLOCKED
