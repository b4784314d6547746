"""The SSRF guard: refused at creation with the contract's 400 and again at send time after a
fresh DNS resolution. DNS is faked through the guard's injectable resolver; no test sends a
request anywhere but 127.0.0.1."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

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


def resolver(table: dict[str, list[str]]) -> Callable[[str], Awaitable[list[str]]]:
    """A fake DNS: names in ``table`` resolve to its addresses, others fail."""

    async def resolve(host: str) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


FAKE_DNS = resolver(
    {
        "public.example.test": [PUBLIC],
        "private.example.test": ["10.0.0.5"],
        "mixed.example.test": [PUBLIC, "192.168.1.20"],
        "mapped.example.test": ["::ffff:10.1.2.3"],
    }
)

REFUSED_AT_CREATION = [
    ("http://10.0.0.1/hook", "Callback URL resolves to blocked address range"),
    ("http://172.16.0.1/hook", "Callback URL resolves to blocked address range"),
    ("https://172.31.255.254/hook", "Callback URL resolves to blocked address range"),
    ("http://192.168.1.1/hook", "Callback URL resolves to blocked address range"),
    ("http://127.0.0.1:8080/hook", "Callback URL resolves to blocked address range"),
    ("http://127.9.9.9/hook", "Callback URL resolves to blocked address range"),
    ("http://localhost/hook", "Blocked hostname: localhost"),
    ("http://LOCALHOST./hook", "Blocked hostname: localhost"),
    ("http://[::1]/hook", "Callback URL resolves to blocked address range"),
    ("http://[::ffff:127.0.0.1]/hook", "Callback URL resolves to blocked address range"),
    ("http://[fd00::1]/hook", "Callback URL resolves to blocked address range"),
    ("http://[fe80::1]/hook", "Callback URL resolves to blocked address range"),
    ("http://169.254.169.254/latest/meta-data", "Callback URL resolves to blocked address range"),
    ("http://metadata.google.internal/x", "Blocked hostname: metadata.google.internal"),
    ("http://0.0.0.0/hook", "Callback URL resolves to blocked address range"),
    ("http://100.64.0.1/hook", "Callback URL resolves to blocked address range"),
    ("http://224.0.0.1/hook", "Callback URL resolves to blocked address range"),
    ("http://255.255.255.255/hook", "Callback URL resolves to blocked address range"),
    ("http://private.example.test/hook", "Callback URL resolves to blocked address range"),
    ("http://mixed.example.test/hook", "Callback URL resolves to blocked address range"),
    ("http://mapped.example.test/hook", "Callback URL resolves to blocked address range"),
    ("http://nowhere.example.test/hook", "Cannot resolve hostname: nowhere.example.test"),
    ("http://user:pw@public.example.test/hook", "Credentials in callback URLs are not allowed"),
    ("ftp://public.example.test/hook", "URL must use http:// or https://"),
    ("http:///hook", "URL must have a hostname"),
]


@pytest.mark.parametrize(("url", "message"), REFUSED_AT_CREATION)
async def test_the_guard_refuses_blocked_targets_with_the_contract_message(
    url: str, message: str
) -> None:
    guard = UrlGuard(resolve=FAKE_DNS)
    with pytest.raises(BlockedUrl) as refused:
        await guard.check(url)
    assert refused.value.message == message


async def test_the_guard_accepts_public_targets() -> None:
    guard = UrlGuard(resolve=FAKE_DNS)
    target = await guard.check("https://public.example.test/hook")
    assert target.addresses == (PUBLIC,)
    assert (await guard.check(f"http://{PUBLIC}:8443/x")).is_literal


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/x", "http://localhost/x", "http://10.0.0.5/x", "http://[::1]/x"]
)
async def test_allowing_private_webhooks_allows_loopback_and_private(url: str) -> None:
    guard = UrlGuard(allow_private=True, resolve=resolver({"localhost": ["127.0.0.1"]}))
    await guard.check(url)
    await guard.check_send(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/x",
        "http://metadata.google.internal/x",
        "http://metadata.internal/x",
        "http://0.0.0.0/x",
    ],
)
async def test_metadata_and_link_local_stay_blocked_when_private_webhooks_are_allowed(
    url: str,
) -> None:
    guard = UrlGuard(allow_private=True, resolve=FAKE_DNS)
    with pytest.raises(BlockedUrl):
        await guard.check(url)
    with pytest.raises(BlockedUrl) as refused:
        await guard.check_send(url)
    assert refused.value.message == DELIVERY_BLOCKED


@pytest.mark.parametrize(
    "address",
    ["64:ff9b::a00:1", "2002:a00:1::1", "2001:db8::1", "ff02::1", "::", "192.0.2.1"],
)
def test_translation_documentation_and_multicast_ranges_are_blocked(address: str) -> None:
    assert UrlGuard(allow_private=True).blocked(ipaddress.ip_address(address))


async def test_send_time_refusals_all_read_resolved_to_blocked_ip() -> None:
    guard = UrlGuard(resolve=FAKE_DNS)
    for url in ("http://private.example.test/", "http://nowhere.example.test/", "http://[::1]/"):
        with pytest.raises(BlockedUrl) as refused:
            await guard.check_send(url)
        assert refused.value.message == DELIVERY_BLOCKED


async def test_blocked_callback_urls_are_refused_at_creation_through_the_api(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        open_engine(database_url, clock, allow_private_webhooks=False) as engine,
        api(engine) as client,
    ):
        webhook(engine).guard.resolve = FAKE_DNS
        auth = await new_user(client)
        cases = [
            ("http://10.1.2.3/hook", "Callback URL resolves to blocked address range"),
            ("http://172.16.5.4/hook", "Callback URL resolves to blocked address range"),
            ("http://192.168.0.10/hook", "Callback URL resolves to blocked address range"),
            ("http://127.0.0.1:9000/hook", "Callback URL resolves to blocked address range"),
            ("http://localhost:9000/hook", "Blocked hostname: localhost"),
            ("http://[::1]:9000/hook", "Callback URL resolves to blocked address range"),
            ("http://169.254.169.254/latest", "Callback URL resolves to blocked address range"),
            ("https://private.example.test/hook", "Callback URL resolves to blocked address range"),
            ("https://nowhere.example.test/hook", "Cannot resolve hostname: nowhere.example.test"),
        ]
        for url, message in cases:
            body = {
                "name": "blocked",
                "schedule": {"type": "recurring", "cron": "0 9 * * *"},
                "callback": {"url": url},
            }
            response = await client.post("/v1/cues", json=body, headers=auth)
            assert response.status_code == 400, (url, response.text)
            assert response.json() == {
                "error": {"code": "invalid_callback_url", "message": message, "status": 400}
            }

        body = {
            "name": "alerting",
            "schedule": {"type": "recurring", "cron": "0 9 * * *"},
            "callback": {"url": "https://public.example.test/hook"},
            "on_failure": {"webhook": "http://10.0.0.9/alert"},
        }
        response = await client.post("/v1/cues", json=body, headers=auth)
        assert response.status_code == 400
        assert response.json()["error"]["message"] == (
            "on_failure.webhook: Callback URL resolves to blocked address range"
        )

        del body["on_failure"]
        created = await client.post("/v1/cues", json=body, headers=auth)
        assert created.status_code == 201, created.text
        patched = await client.patch(
            f"/v1/cues/{created.json()['id']}",
            json={"callback": {"url": "http://192.168.1.1/x"}},
            headers=auth,
        )
        assert patched.status_code == 400
        assert patched.json()["error"]["code"] == "invalid_callback_url"


async def test_webhook_cues_need_a_url_and_a_supported_method(
    database_url: str, clock: FakeClock
) -> None:
    async with open_engine(database_url, clock) as engine, api(engine) as client:
        auth = await new_user(client)
        schedule = {"type": "recurring", "cron": "0 9 * * *"}
        response = await client.post(
            "/v1/cues", json={"name": "no-url", "schedule": schedule}, headers=auth
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert error["message"] == (
            "body: Value error, callback.url is required for webhook transport"
        )

        body = {
            "name": "delete",
            "schedule": schedule,
            "callback": {"url": "http://127.0.0.1:9/x", "method": "DELETE"},
        }
        response = await client.post("/v1/cues", json=body, headers=auth)
        assert response.status_code == 422
        assert response.json()["error"]["message"].startswith("body.callback.method: ")


async def test_a_name_that_turns_private_after_creation_is_refused_at_send_time(
    database_url: str, clock: FakeClock
) -> None:
    dns = {"hooks.example.test": [PUBLIC]}
    async with (
        open_engine(database_url, clock, allow_private_webhooks=False) as engine,
        api(engine) as client,
    ):
        webhook(engine).guard.resolve = resolver(dns)
        auth = await new_user(client)
        cue = await create_cue(
            client,
            auth,
            clock,
            "https://hooks.example.test/hook",
            retry={"max_attempts": 2, "backoff_minutes": [1]},
        )
        dns["hooks.example.test"] = ["10.0.0.5"]

        assert await fire(engine, clock) == 1

        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "retrying"
        assert execution["attempts"] == 1
        assert execution["http_status"] is None
        assert execution["error_message"] == "Callback URL resolved to blocked IP"


async def test_plain_http_connects_to_the_address_the_guard_checked(
    database_url: str, clock: FakeClock
) -> None:
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        webhook(engine).guard.resolve = resolver({"receiver.example.test": ["127.0.0.1"]})
        auth = await new_user(client)
        url = receiver.url(host="receiver.example.test")
        cue = await create_cue(client, auth, clock, url)

        await fire(engine, clock)

        [request] = receiver.requests
        assert request.headers["host"] == f"receiver.example.test:{receiver.port}"
        [execution] = await executions_of(client, auth, cue["id"])
        assert execution["status"] == "success"


async def test_a_cue_whose_host_stopped_resolving_can_still_be_paused(
    database_url: str, clock: FakeClock
) -> None:
    dns = {"gone.example.test": [PUBLIC]}
    async with (
        open_engine(database_url, clock, allow_private_webhooks=False) as engine,
        api(engine) as client,
    ):
        webhook(engine).guard.resolve = resolver(dns)
        auth = await new_user(client)
        cue = await create_cue(client, auth, clock, "https://gone.example.test/hook")
        del dns["gone.example.test"]

        paused = await client.patch(
            f"/v1/cues/{cue['id']}", json={"status": "paused"}, headers=auth
        )

        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
