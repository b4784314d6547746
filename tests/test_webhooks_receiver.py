"""``cueflow.webhooks``: a receiver verifies deliveries of a real ``cueflow serve`` with
``cueflow.webhooks.verify`` and, on the very same requests, with the official SDK's
``verify_webhook``; both accept what cueflow sent and refuse a changed body or another secret,
and during a rotation's overlap window either secret verifies. The FastAPI dependency and the
Starlette helper answer a bad delivery 401 with the contract's error body."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import cueflow
import cueflow.webhooks as webhooks
from tests.conftest import eventually
from tests.server import cueflow_server
from tests.webhook_support import Received, Receiver, load_verifier

CONFIRM = {"X-Confirm-Destructive": "true"}
WRONG = "whsec_" + "0" * 64


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``cueflow serve`` that may deliver to 127.0.0.1."""
    workdir: Path = tmp_path_factory.mktemp("receiver")
    url = f"sqlite:///{workdir / 'cueflow.db'}"
    with cueflow_server(url, workdir, CUEFLOW_ALLOW_PRIVATE_WEBHOOKS="true") as base:
        yield base


class Sender:
    """One account on the server, with a webhook cue pointing at a receiver."""

    def __init__(self, api: httpx.AsyncClient, receiver: Receiver) -> None:
        self.api = api
        self.receiver = receiver
        self.auth: dict[str, str] = {}
        self.cue_id = ""

    async def start(self) -> str:
        """Register, create the cue; the account's webhook secret."""
        email = f"receiver-{id(self)}@example.com"
        registered = await self.api.post("/v1/auth/register", json={"email": email})
        assert registered.status_code == 201, registered.text
        self.auth = {"Authorization": f"Bearer {registered.json()['api_key']}"}
        cue = await self.api.post(
            "/v1/cues",
            json={
                "name": "nightly-greeting",
                "schedule": {"type": "recurring", "cron": "0 0 1 1 *"},
                "callback": {"url": self.receiver.url()},
                "payload": {"greeting": "grüße", "n": 1},
            },
            headers=self.auth,
        )
        assert cue.status_code == 201, cue.text
        self.cue_id = cue.json()["id"]
        return await self.secret()

    async def secret(self) -> str:
        """The account's current webhook secret."""
        answer = await self.api.get("/v1/auth/webhook-secret", headers=self.auth)
        return str(answer.json()["webhook_secret"])

    async def rotate(self, overlap_seconds: int) -> str:
        """A new secret, the previous one signing along for ``overlap_seconds``."""
        answer = await self.api.post(
            "/v1/auth/webhook-secret/regenerate",
            json={"overlap_seconds": overlap_seconds},
            headers={**self.auth, **CONFIRM},
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["webhook_secret"])

    async def delivery(self) -> Received:
        """Fire the cue and wait for the delivery it makes."""
        before = len(self.receiver.to("/hook"))
        fired = await self.api.post(f"/v1/cues/{self.cue_id}/fire", headers=self.auth)
        assert fired.status_code == 200, fired.text

        async def arrived() -> bool:
            return len(self.receiver.to("/hook")) > before

        await eventually(arrived, timeout=30)
        return self.receiver.to("/hook")[before]


@pytest.fixture
async def sender(server: str) -> AsyncIterator[tuple[Sender, str]]:
    """A sender on the server and its secret."""
    async with (
        Receiver() as receiver,
        httpx.AsyncClient(base_url=server, timeout=30) as api,
    ):
        sending = Sender(api, receiver)
        yield sending, await sending.start()


def sdk_accepts(request: Received, secret: str, body: bytes | None = None) -> bool:
    """The official SDK's verdict, on each ``v1=`` value of the header (its verifier compares
    the whole header with one value)."""
    verify = load_verifier()
    values = request.headers["x-cueapi-signature"].split(",")
    sent = request.body if body is None else body
    stamp = request.headers["x-cueapi-timestamp"]
    return any(verify(sent, value.strip(), secret, stamp) for value in values)


def cueflow_refusal(
    request: Received, secret: str | list[str], body: bytes | None = None, **kwargs: Any
) -> str | None:
    """``cueflow.webhooks.verify``'s verdict: ``None`` (accepted) or the refusal's reason."""
    try:
        webhooks.verify(request.body if body is None else body, request.headers, secret, **kwargs)
    except webhooks.SignatureError as refused:
        return refused.reason
    return None


# against real deliveries --------------------------------------------------------------------
async def test_a_real_delivery_verifies_with_cueflow_and_with_the_official_sdk(
    sender: tuple[Sender, str],
) -> None:
    sending, secret = sender
    delivery = await sending.delivery()

    assert cueflow_refusal(delivery, secret) is None
    assert sdk_accepts(delivery, secret)
    assert json.loads(delivery.body)["payload"] == {"greeting": "grüße", "n": 1}


async def test_a_changed_body_is_refused_by_both(sender: tuple[Sender, str]) -> None:
    sending, secret = sender
    delivery = await sending.delivery()
    changed = delivery.body.replace(b'"n": 1', b'"n": 2')
    assert changed != delivery.body

    assert cueflow_refusal(delivery, secret, changed) == "invalid_signature"
    assert not sdk_accepts(delivery, secret, changed)


async def test_another_secret_is_refused_by_both(sender: tuple[Sender, str]) -> None:
    sending, _ = sender
    delivery = await sending.delivery()

    assert cueflow_refusal(delivery, WRONG) == "invalid_signature"
    assert not sdk_accepts(delivery, WRONG)


async def test_a_timestamp_outside_the_tolerance_is_refused(sender: tuple[Sender, str]) -> None:
    sending, secret = sender
    delivery = await sending.delivery()
    stamp = int(delivery.headers["x-cueapi-timestamp"])

    assert cueflow_refusal(delivery, secret, now=stamp + 300) is None
    assert cueflow_refusal(delivery, secret, now=stamp + 301) == "stale_timestamp"
    assert cueflow_refusal(delivery, secret, now=stamp - 301) == "stale_timestamp"
    assert cueflow_refusal(delivery, secret, now=stamp + 50, tolerance=30) == "stale_timestamp"
    # the SDK reads the real clock, which cannot be moved: it accepts the fresh delivery
    sdk = load_verifier()
    assert sdk(delivery.body, delivery.headers["x-cueapi-signature"], secret, str(stamp))


async def test_during_a_rotation_either_secret_verifies_then_only_the_new_one(
    sender: tuple[Sender, str],
) -> None:
    sending, old = sender
    new = await sending.rotate(overlap_seconds=600)

    during = await sending.delivery()
    assert during.headers["x-cueapi-signature"].count("v1=") == 2
    for secret in (old, new):
        assert cueflow_refusal(during, secret) is None
        assert sdk_accepts(during, secret)
    assert cueflow_refusal(during, [WRONG, new]) is None  # a receiver holding both
    assert cueflow_refusal(during, WRONG) == "invalid_signature"
    assert not sdk_accepts(during, WRONG)

    newest = await sending.rotate(overlap_seconds=0)  # the window closes at once
    after = await sending.delivery()
    assert after.headers["x-cueapi-signature"].count("v1=") == 1
    assert cueflow_refusal(after, newest) is None
    assert sdk_accepts(after, newest)
    for gone in (old, new):
        assert cueflow_refusal(after, gone) == "invalid_signature"
        assert not sdk_accepts(after, gone)
    assert cueflow_refusal(after, [new, newest]) is None


# the framework helpers ----------------------------------------------------------------------
def replay(delivery: Received, body: bytes | None = None) -> dict[str, Any]:
    """The delivery as ``httpx`` request arguments, to send it again to an app."""
    headers = {k: v for k, v in delivery.headers.items() if k not in ("host", "content-length")}
    return {"content": delivery.body if body is None else body, "headers": headers}


async def post(app: Any, delivery: Received, body: bytes | None = None) -> httpx.Response:
    """Send ``delivery`` (its body replaced by ``body``) to ``app`` at ``/hook``."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver.test") as client:
        return await client.post("/hook", **replay(delivery, body))


async def test_the_fastapi_dependency_hands_over_the_verified_body_or_answers_401(
    sender: tuple[Sender, str],
) -> None:
    sending, secret = sender
    delivery = await sending.delivery()
    verified = webhooks.fastapi_verifier(secret)
    with_envelope = FastAPI(exception_handlers=webhooks.fastapi_exception_handlers())
    plain = FastAPI()
    for app in (with_envelope, plain):

        @app.post("/hook")
        async def hook(body: bytes = Depends(verified)) -> dict[str, Any]:
            return {"execution_id": json.loads(body)["execution_id"]}

        @app.get("/other")
        async def other() -> None:
            from fastapi import HTTPException

            raise HTTPException(418, "teapot")

    accepted = await post(with_envelope, delivery)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"execution_id": json.loads(delivery.body)["execution_id"]}

    refused = await post(with_envelope, delivery, delivery.body + b" ")
    assert refused.status_code == 401
    assert refused.json() == {
        "error": {
            "code": "invalid_signature",
            "message": "The delivery's signature does not match",
            "status": 401,
        }
    }
    transport = httpx.ASGITransport(app=with_envelope)
    async with httpx.AsyncClient(transport=transport, base_url="http://r.test") as client:
        other = await client.get("/other")
    assert (other.status_code, other.json()) == (418, {"detail": "teapot"})

    without = await post(plain, delivery, b"{}")
    assert without.status_code == 401
    assert without.json()["detail"]["code"] == "invalid_signature"
    assert (await post(plain, delivery)).status_code == 200


async def test_the_starlette_helper_verifies_a_request(sender: tuple[Sender, str]) -> None:
    sending, secret = sender
    delivery = await sending.delivery()

    async def hook(request: Request) -> Response:
        try:
            body = await webhooks.verify_request(request, [WRONG, secret])
        except webhooks.SignatureError as error:
            return webhooks.rejection(error)
        return JSONResponse({"bytes": len(body)})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    accepted = await post(app, delivery)
    assert accepted.json() == {"bytes": len(delivery.body)}
    missing = await post(app, Received("POST", "/hook", {}, delivery.body))
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_signature"


# verify() on its own ------------------------------------------------------------------------
def signed(body: bytes, secret: str, stamp: int) -> dict[str, str]:
    """Headers as cueflow's webhook transport signs them."""
    from cueflow_webhook.signing import signed_headers

    return signed_headers(secret, str(stamp), body)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing_signature"),
        ({"X-CueAPI-Signature": "v1=00"}, "missing_timestamp"),
        ({"X-CueAPI-Signature": "v1=00", "X-CueAPI-Timestamp": "soon"}, "invalid_timestamp"),
        ({"X-CueAPI-Signature": "v1=00", "X-CueAPI-Timestamp": "-5"}, "invalid_timestamp"),
        ({"X-CueAPI-Signature": "v2=00", "X-CueAPI-Timestamp": "1000"}, "invalid_signature"),
    ],
)
def test_malformed_headers_are_refused_with_their_reason(
    headers: dict[str, str], reason: str
) -> None:
    with pytest.raises(webhooks.SignatureError) as refused:
        webhooks.verify(b"{}", headers, "whsec_x", now=1000)

    assert refused.value.reason == reason
    assert refused.value.envelope()["error"]["status"] == 401


def test_header_names_are_matched_in_any_case_and_values_in_any_order() -> None:
    body = b'{"a": 1}'
    headers = signed(body, "whsec_new", 1000)
    old = signed(body, "whsec_old", 1000)["X-CueAPI-Signature"]
    two = {k.lower(): v for k, v in headers.items()}
    two["x-cueapi-signature"] = f"{old}, {headers['X-CueAPI-Signature']}"

    webhooks.verify(body, two, "whsec_new", now=1000)
    webhooks.verify(body, two, ("whsec_other", "whsec_old"), now=1000)


def test_a_secret_is_required() -> None:
    for secret in ("", [], [""]):
        with pytest.raises(ValueError):
            webhooks.verify(b"{}", {}, secret)


def test_the_helper_is_reached_from_the_package_without_the_server() -> None:
    import subprocess

    code = (
        "import sys, cueflow; cueflow.webhooks.verify; "
        "print(sorted(m for m in ('fastapi', 'starlette', 'sqlalchemy', 'cueflow.engine') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "[]"
    assert cueflow.webhooks is webhooks
    assert asyncio.iscoroutinefunction(webhooks.verify_request)
