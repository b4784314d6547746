"""ASGI middleware for what every request shares: a request id, the body-size limit, and the
refusal of NUL characters in paths and query strings (PostgreSQL cannot store them)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from cueflow.api.errors import envelope

MAX_BODY_BYTES = 1_048_576

Scope = dict[str, Any]


class RequestGuard:
    """Adds ``X-Request-Id`` to every response; answers 413 above 1 MiB of body (declared or
    streamed) and 400 for NUL characters in the path or query."""

    def __init__(self, app: Any, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4()).encode()

        async def send_with_id(message: dict[str, Any]) -> None:
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
                await _too_large(send_with_id, self.max_body)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send_with_id)


async def _too_large(send: Any, limit: int) -> None:
    await _reject(send, 413, "request_too_large", f"Request body exceeds {limit} bytes")


async def _reject(send: Any, status: int, code: str, message: str) -> None:
    body = orjson.dumps(envelope(code, message, status))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
