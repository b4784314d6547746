"""Logs: JSON lines (or readable text) with the request id of the request being served and the
execution and cue ids of the delivery being made; API keys, webhook secrets and Authorization
values never reach the output, through the app or a real ``cueflow serve``."""

from __future__ import annotations

import io
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cueflow import logs
from cueflow.api import create_app
from cueflow.clock import FakeClock
from cueflow.engine import Engine
from tests.conftest import make_settings
from tests.server import cueflow_server
from tests.webhook_support import Receiver, api, fire, new_user, open_engine

Capture = Callable[..., io.StringIO]


@pytest.fixture
def capture() -> Iterator[Capture]:
    """``capture(format, level)`` installs cueflow's log handler on a fresh stream and returns
    the stream; the root logger is put back afterwards."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    installed: list[logging.Handler] = []

    def install(
        log_format: logs.LogFormat = "json", level: str = "DEBUG", *, pid: bool = False
    ) -> io.StringIO:
        stream = io.StringIO()
        installed.append(logs.configure(log_format, level, stream, pid=pid))
        return stream

    yield install
    for handler in installed:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line of ``stream`` parsed as JSON (a line that is not JSON fails the test)."""
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def logging_app(engine: Engine) -> httpx.AsyncClient:
    """A client on the server app plus a route that logs, as any route's code would."""
    app = create_app(engine, manage_engine=False)

    async def noisy() -> dict[str, str]:
        logging.getLogger("tests.route").info("handling %s", "noisy")
        return {"ok": "yes"}

    app.add_api_route("/test/noisy", noisy)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test")


def test_json_lines_have_timestamp_level_logger_message_and_exception(capture: Capture) -> None:
    stream = capture("json")
    log = logging.getLogger("tests.json")
    log.warning("a %s thing", "plain", extra={"execution_id": "e-1", "cue_id": "c-1"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")

    first, second = records(stream)
    assert first["level"] == "WARNING"
    assert first["logger"] == "tests.json"
    assert first["message"] == "a plain thing"
    assert first["execution_id"] == "e-1" and first["cue_id"] == "c-1"
    assert "request_id" not in first
    assert first["timestamp"].endswith("Z") and "T" in first["timestamp"]
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exception"]


def test_text_lines_are_readable(capture: Capture) -> None:
    stream = capture("text")
    token = logs.request_id.set("req-7")
    try:
        logging.getLogger("tests.text").info("hello %d", 3)
    finally:
        logs.request_id.reset(token)

    [line] = stream.getvalue().splitlines()
    assert line.endswith(" INFO    tests.text [request_id=req-7] hello 3")


def test_lines_name_the_process_when_several_serve(capture: Capture) -> None:
    """``cueflow serve --workers``: every line says which process wrote it."""
    text = capture("text", pid=True)
    logging.getLogger("tests.pid").info("plain")
    [line] = text.getvalue().splitlines()
    assert line.endswith(f" INFO    tests.pid [pid={os.getpid()}] plain")

    json_lines = capture("json", pid=True)
    logging.getLogger("tests.pid").info("plain", extra={"execution_id": "e-1"})
    [record] = records(json_lines)
    assert record["pid"] == os.getpid() and record["execution_id"] == "e-1"

    plain = capture("json")
    logging.getLogger("tests.pid").info("one process")
    assert "pid" not in records(plain)[0]


def test_the_level_filters_records(capture: Capture) -> None:
    stream = capture("json", "WARNING")
    logging.getLogger("tests.level").info("quiet")
    logging.getLogger("tests.level").warning("loud")
    assert [r["message"] for r in records(stream)] == ["loud"]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text"):
        logs.configure("xml", "INFO", io.StringIO())  # type: ignore[arg-type]


async def test_records_carry_the_request_id_the_response_answers(
    capture: Capture, engine: Engine
) -> None:
    stream = capture("json", "INFO")
    async with logging_app(engine) as client:
        given = await client.get("/test/noisy", headers={"X-Request-ID": "trace-42.a:b"})
        plain = await client.get("/test/noisy")
        odd = await client.get("/test/noisy", headers={"X-Request-ID": "bad id\twith\tspace"})
    logging.getLogger("tests.route").info("after the requests")

    answered = [r.headers.get_list("x-request-id") for r in (given, plain, odd)]
    assert all(len(ids) == 1 for ids in answered)
    assert len({uuid.UUID(ids[0]) for ids in answered}) == 3  # fresh per request (contract)
    handled = [r for r in records(stream) if r["logger"] == "tests.route"]
    assert [r.get("request_id") for r in handled] == [ids[0] for ids in answered] + [None]
    assert [r.get("client_request_id") for r in handled] == ["trace-42.a:b", None, None, None]


async def test_delivery_logs_carry_the_execution_and_cue_ids(
    capture: Capture, database_url: str, clock: FakeClock
) -> None:
    stream = capture("json", "INFO")
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        auth = await new_user(client)
        receiver.reply("/hook", 500)
        body = {
            "name": "hook",
            "transport": "webhook",
            "callback": {"url": receiver.url()},
            "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
        }
        cue = (await client.post("/v1/cues", json=body, headers=auth)).json()
        assert await fire(engine, clock) == 1
        [execution] = (
            await client.get("/v1/executions", params={"cue_id": cue["id"]}, headers=auth)
        ).json()["executions"]

    [failed] = [r for r in records(stream) if r["logger"] == "cueflow.dispatcher"]
    assert (
        failed["message"]
        == "delivery attempt 1 failed: Webhook endpoint returned server error (500)"
    )
    assert failed["execution_id"] == execution["id"]
    assert failed["cue_id"] == cue["id"]
    assert "request_id" not in failed
    assert receiver.url() not in stream.getvalue()  # httpx's request lines only show at DEBUG


async def test_an_in_process_handler_logs_with_its_execution_id(
    capture: Capture, database_url: str, clock: FakeClock
) -> None:
    stream = capture("json", "INFO")
    engine = Engine(make_settings(database_url), clock=clock)

    @engine.handler("greet")
    def greet(payload: dict[str, Any]) -> str:
        logging.getLogger("app.greet").info("greeting %s", payload["name"])
        return "done"

    await engine.open()
    try:
        me = await engine.account("me@example.com")
        at = (clock.now() + timedelta(minutes=1)).isoformat()
        cue, _ = await engine.create_cue(me, {
            "name": "greeting", "transport": "inprocess",
            "payload": {"task": "greet", "name": "world"},
            "schedule": {"type": "once", "at": at},
        })  # fmt: skip
        clock.advance(60)
        await engine.fire_due()
        assert await engine.deliver_due() == 1
        [execution] = (await engine.cue_executions(me, cue.id))[0]
    finally:
        await engine.close()

    [greeting] = [r for r in records(stream) if r["logger"] == "app.greet"]
    assert greeting["message"] == "greeting world"
    assert greeting["execution_id"] == execution.id
    assert greeting["cue_id"] == cue.id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key cue_sk_abcDEF123_-x used", "key cue_sk_[REDACTED] used"),
        ("secret=whsec_0123456789abcdef", "secret=whsec_[REDACTED]"),
        ("Authorization: Bearer abc.def", "Authorization: [REDACTED]"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "[REDACTED]"}'),
        ("[('authorization', 'token123')]", "[('authorization', '[REDACTED]')]"),
        ("sent bearer sk-live-XYZ now", "sent bearer [REDACTED] now"),
        ("authorization failed for user", "authorization failed for user"),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert logs.redact(text) == expected


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_no_key_or_secret_is_ever_written(
    capture: Capture, log_format: logs.LogFormat, database_url: str, clock: FakeClock
) -> None:
    """A flow that handles every kind of secret, with everything logged down to DEBUG, plus
    careless log calls that pass secrets in messages, arguments, extras and exceptions."""
    stream = capture(log_format, "DEBUG")
    async with (
        Receiver() as receiver,
        open_engine(database_url, clock) as engine,
        api(engine) as client,
    ):
        registered = await client.post("/v1/auth/register", json={"email": "s@example.com"})
        api_key = registered.json()["api_key"]
        auth = {"Authorization": f"Bearer {api_key}"}
        secret = (await client.get("/v1/auth/webhook-secret", headers=auth)).json()[
            "webhook_secret"
        ]
        body = {
            "name": "signed",
            "transport": "webhook",
            "callback": {"url": receiver.url(), "headers": {"Authorization": "Bearer hook-tok"}},
            "schedule": {"type": "once", "at": (clock.now() + timedelta(minutes=1)).isoformat()},
        }
        assert (await client.post("/v1/cues", json=body, headers=auth)).status_code == 201
        assert await fire(engine, clock) == 1
        wrong = {"Authorization": "Bearer cue_sk_not-a-real-key-0000"}
        assert (await client.get("/v1/cues", headers=wrong)).status_code == 401
        assert (await client.get("/v1/cues", headers={"Authorization": api_key})).status_code == 401

        careless = logging.getLogger("tests.careless")
        careless.info("key %s secret %s", api_key, secret)
        careless.info(f"headers {auth!r}", extra={"cue_id": secret})
        careless.info("sent %s", json.dumps({**auth, "note": "Bearer hook-tok"}))
        try:
            raise RuntimeError(f"could not use {api_key}")
        except RuntimeError:
            careless.exception("Authorization: Bearer %s", "hook-tok")

    assert receiver.requests[0].headers["authorization"] == "Bearer hook-tok"
    output = stream.getvalue()
    assert "tests.careless" in output
    if log_format == "json":
        assert len(records(stream)) > 10  # redaction keeps every line valid JSON
    for value in (api_key, secret, "hook-tok", "cue_sk_not-a-real-key-0000"):
        assert value not in output
    assert api_key[len("cue_sk_") :] not in output
    assert secret[len("whsec_") :] not in output


def test_a_real_server_writes_json_lines_with_request_ids_and_no_keys(tmp_path: Path) -> None:
    log_path = tmp_path / "serve.log"
    with (
        log_path.open("w") as log_file,
        cueflow_server(
            f"sqlite:///{tmp_path / 'serve.db'}",
            tmp_path,
            log_level="info",
            stderr=log_file,
            CUEFLOW_LOG_FORMAT="json",
        ) as base,
    ):
        registered = httpx.post(
            f"{base}/v1/auth/register",
            json={"email": "e2e@example.com"},
            headers={"X-Request-ID": "e2e-register"},
        )
        assert registered.status_code == 201
        api_key = registered.json()["api_key"]
        listed = httpx.get(
            f"{base}/v1/cues?api_key={api_key}",
            headers={"Authorization": f"Bearer {api_key}", "X-Request-ID": "e2e-list"},
        )
        assert listed.status_code == 200
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]

    assert api_key not in text
    access = {r.get("client_request_id"): r for r in lines if r["logger"] == "uvicorn.access"}
    assert access["e2e-register"]["request_id"] == registered.headers["x-request-id"]
    assert access["e2e-register"]["status"] == 201
    assert access["e2e-register"]["method"] == "POST"
    assert access["e2e-register"]["path"] == "/v1/auth/register"
    assert access["e2e-list"]["path"] == "/v1/cues?api_key=cue_sk_[REDACTED]"
    assert any(r["logger"] == "uvicorn.error" and r["level"] == "INFO" for r in lines)
