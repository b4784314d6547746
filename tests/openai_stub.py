"""A scripted OpenAI-compatible chat server for the agent tests: a real HTTP server (uvicorn on
a free loopback port, in a thread) that the real ``langchain_openai.ChatOpenAI`` talks to via
``base_url``. It answers ``POST /v1/chat/completions`` with the next step of its script: a final
text, tool calls (whose ``arguments`` may be malformed JSON or name a tool that does not exist),
or an HTTP error (``429`` with ``Retry-After``, ``500``). A step may be a callable that gets the
request body (the messages and tools the client sent) and returns a step, so a script can react
to ids it only learns during the run. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted answer: an assistant message or an HTTP error."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def say(text: str) -> Reply:
    """A final answer."""
    return Reply(content=text)


def call(name: str, args: dict[str, Any] | str, *more: tuple[str, dict[str, Any] | str]) -> Reply:
    """Tool calls; ``args`` given as a string are sent as is (so they may be malformed JSON)."""
    calls = []
    for tool, arguments in [(name, args), *more]:
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        calls.append(
            {
                "id": f"call_{next(_ids)}",
                "type": "function",
                "function": {"name": tool, "arguments": text},
            }
        )
    return Reply(tool_calls=calls)


def fail(status: int, retry_after: float | None = None) -> Reply:
    """A provider error (``429`` rate limit, ``500``), with ``Retry-After`` when given."""
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, headers=headers)


Step = Reply | Callable[[dict[str, Any]], Reply]


class OpenAIStub:
    """The server's script and what it was sent."""

    def __init__(self, steps: list[Step] | None = None) -> None:
        self.steps: list[Step] = list(steps or [])
        self.requests: list[dict[str, Any]] = []
        self.base_url = ""
        self.delay = 0.0
        """Seconds each answer takes (a slow model), after the step is taken."""

    def model(self, **options: Any) -> Any:
        """A real ``ChatOpenAI`` pointed at this server (no client-side retries unless asked)."""
        from langchain_openai import ChatOpenAI

        options.setdefault("max_retries", 0)
        return ChatOpenAI(
            model="gpt-stub", base_url=self.base_url, api_key="sk-test", timeout=10, **options
        )

    def tool_results(self, index: int = -1) -> list[dict[str, Any]]:
        """The tool messages of request ``index`` that follow its last assistant message."""
        found: list[dict[str, Any]] = []
        for message in reversed(self.requests[index]["messages"]):
            if message["role"] != "tool":
                break
            found.append(message)
        return found[::-1]

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.steps:
            return JSONResponse(
                {"error": {"message": "the script is exhausted", "type": "stub"}}, status_code=400
            )
        step = self.steps.pop(0)
        reply = step(body) if callable(step) else step
        if self.delay:
            await asyncio.sleep(self.delay)
        if reply.status != 200:
            error = {"error": {"message": f"scripted {reply.status}", "type": "server_error"}}
            return JSONResponse(error, status_code=reply.status, headers=reply.headers)
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(_ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "gpt-stub"),
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


@contextmanager
def openai_stub(steps: list[Step] | None = None) -> Iterator[OpenAIStub]:
    """Serve a scripted :class:`OpenAIStub` on a free loopback port for the ``with`` block."""
    stub = OpenAIStub(steps)
    app = Starlette(routes=[Route("/v1/chat/completions", stub._complete, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the OpenAI stub did not start")
        time.sleep(0.01)
    stub.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield stub
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


_STRICT_FORBIDDEN = {
    "default", "minLength", "maxLength", "format", "pattern", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems",
    "patternProperties", "minProperties", "maxProperties",
}  # fmt: skip
"""Schema keywords OpenAI's strict function calling refuses (or refused until lately)."""


def strict_problems(schema: dict[str, Any], where: str = "parameters") -> list[str]:
    """Why OpenAI would refuse ``schema`` as a strict function's parameters (empty: it would
    not): every object closes ``additionalProperties`` and requires all its properties, and
    no refused keyword appears anywhere."""
    problems = [f"{where}: {key}" for key in schema if key in _STRICT_FORBIDDEN]
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{where}: additionalProperties must be false")
        properties = schema.get("properties", {})
        if set(schema.get("required", [])) != set(properties):
            problems.append(f"{where}: every property must be required")
        for name, sub in properties.items():
            problems += strict_problems(sub, f"{where}.{name}")
    for branch in schema.get("anyOf", []):
        problems += strict_problems(branch, f"{where}|")
    if isinstance(schema.get("items"), dict):
        problems += strict_problems(schema["items"], f"{where}[]")
    return problems
