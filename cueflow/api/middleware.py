"""ASGI middleware for what every request shares: a request id, the body-size limit, the
refusal of NUL characters in paths and query strings (PostgreSQL cannot store them), the check
of JSON bodies, and CueAPI's opt-in verify-echo."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cueflow import logs
from cueflow.api.errors import envelope

MAX_BODY_BYTES = 1_048_576
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have (payloads are stored and sent
inside other JSON, and orjson writes at most 255 levels)."""


class RequestGuard:
    """Adds ``X-Request-Id`` to every response (the request context's id, see
    :mod:`cueflow.api.observability`, or a new one); answers 413 when the declared body is over
    1 MiB, and 400 for NUL characters in the path or query. It reads no body: the rate limiter
    runs after it and before :class:`BodyGuard`, so a refused request costs no buffer."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (logs.request_id.get() or str(uuid.uuid4())).encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id)]
            await send(message)

        if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
            await _reject(send_with_id, 400, "invalid_request", "NUL characters are not allowed")
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _too_large(send_with_id, self.max_body)
            return
        await self.app(scope, receive, send_with_id)


class BodyGuard:
    """Reads the request body: 413 when it streams past 1 MiB, 400 ``invalid_json`` for a JSON
    body cueflow could not store (see :func:`json_refusal`)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _too_large(send, self.max_body)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        refusal = json_refusal(scope, body)
        if refusal is not None:
            await _reject(send, 400, "invalid_json", refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def json_refusal(scope: Scope, body: bytes) -> str | None:
    """Why a body sent as JSON is refused, or ``None``. What orjson (which stores and sends
    cueflow's JSON) cannot read is refused here as a 400, not later as a 500: invalid UTF-8,
    lone surrogates, ``NaN``; and so is nesting past :data:`MAX_JSON_DEPTH` (orjson writes at
    most 255 levels)."""
    content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
    media = content_type.split(b";", 1)[0].strip()
    if not body or not (media == b"application/json" or media.endswith(b"+json")):
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "Request body is not valid JSON"
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth(document) > MAX_JSON_DEPTH:
        return f"Request body nests deeper than {MAX_JSON_DEPTH} levels"
    return None


def _depth(document: Any) -> int:
    """How many arrays and objects deep ``document`` nests (iteratively: no recursion limit)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((item, level + 1) for item in value)
    return deepest


async def _too_large(send: Send, limit: int) -> None:
    await _reject(send, 413, "request_too_large", f"Request body exceeds {limit} bytes")


async def _reject(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps(envelope(code, message, status))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class VerifyEcho:
    """CueAPI's opt-in body-integrity echo: with ``X-CueAPI-Verify-Echo: true`` on a POST, PATCH
    or PUT whose 2xx answer is a JSON object, the answer also carries ``body_received`` (the
    request body as parsed, its text if not JSON, ``null`` if empty) and
    ``body_received_sha256`` (SHA-256 of its canonical JSON, or of the raw bytes)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        wanted = headers.get(b"x-cueapi-verify-echo", b"").strip().lower() == b"true"
        if not wanted or scope["method"] not in ("POST", "PATCH", "PUT"):
            await self.app(scope, receive, send)
            return
        received = bytearray()

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received.extend(message.get("body", b""))
            return message

        start: dict[str, Any] = {}
        body = bytearray()

        async def buffering_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            await _send_echoed(send, start, bytes(body), bytes(received))

        await self.app(scope, recording_receive, buffering_send)


def _echo_fields(raw: bytes) -> dict[str, Any]:
    if not raw:
        return {"body_received": None, "body_received_sha256": hashlib.sha256(b"").hexdigest()}
    try:
        parsed = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace")
        return {"body_received": text, "body_received_sha256": hashlib.sha256(raw).hexdigest()}
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return {"body_received": parsed, "body_received_sha256": digest}


async def _send_echoed(send: Send, start: dict[str, Any], body: bytes, received: bytes) -> None:
    headers = dict(start.get("headers", []))
    is_json = headers.get(b"content-type", b"").startswith(b"application/json")
    if 200 <= start.get("status", 500) < 300 and is_json:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict) and "body_received" not in document:
            document.update(_echo_fields(received))
            body = orjson.dumps(document)
            start = {
                **start,
                "headers": [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                + [(b"content-length", str(len(body)).encode())],
            }
    await send(start)
    await send({"type": "http.response.body", "body": body})
