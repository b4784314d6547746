"""Real server processes to stop with SIGTERM, and a webhook receiver that holds its answer:
what ``tests/test_drain_serve.py`` measures a drain with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.server import free_port

HANDLER_NODE = """
import asyncio
from cueflow.api import create_app
from cueflow.api.serving import serve_forever
from cueflow.engine import Engine

engine = Engine()

@engine.handler("steady")
async def steady(payload):
    await asyncio.sleep(payload["seconds"])
    return "finished"

serve_forever(create_app(engine), engine.settings, "warning", drain=engine.drain)
"""
"""A program serving like ``cueflow serve`` (the same ``serve_forever`` and drain), with an
in-process handler that takes ``payload["seconds"]``."""


@dataclass
class Served:
    """A server process on ``base``."""

    process: subprocess.Popen[bytes]
    base: str

    def terminate(self) -> float:
        """Send SIGTERM; returns the monotonic time it was sent."""
        self.process.send_signal(signal.SIGTERM)
        return time.monotonic()

    def wait_exit(self, sent: float, timeout: float = 90) -> float:
        """Seconds from ``sent`` until the process exited. uvicorn ends a graceful shutdown by
        raising the signal it caught again, so the exit status is SIGTERM's (what was done
        before it, the tests read in the database)."""
        code = self.process.wait(timeout=timeout)
        took = time.monotonic() - sent
        assert code in (0, -signal.SIGTERM), f"exited with {code}"
        return took


@contextmanager
def served(
    database_url: str, cwd: Path, *args: str, program: str | None = None, **env: str
) -> Iterator[Served]:
    """Start ``cueflow serve`` (or ``program``, a Python source run with the same settings
    from the environment) on a free port with ``args``; yields once ``/status`` answers; kills
    it on the way out if it still runs."""
    port = free_port()
    if program is None:
        command = [sys.executable, "-m", "cueflow", "serve", "--port", str(port)]
        command += ["--database-url", database_url, "--log-level", "warning", *args]
    else:
        (cwd / "node.py").write_text(program)
        command = [sys.executable, str(cwd / "node.py")]
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "true",
        **env,
    }
    process = subprocess.Popen(command, cwd=cwd, env=environment)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/status", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the server did not start within 90 s")
            time.sleep(0.1)
        yield Served(process, base)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass
class Receiver:
    """A webhook receiver that holds each request until :attr:`release` is set (at most
    ``hold`` seconds), then answers 200."""

    hold: float = 60.0
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[str] = field(default_factory=list)
    url: str = ""


@contextmanager
def slow_receiver(hold: float = 60.0) -> Iterator[Receiver]:
    """A :class:`Receiver` listening on a free local port."""
    receiver = Receiver(hold)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(body.decode())
            receiver.arrived.set()
            receiver.release.wait(receiver.hold)
            try:
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()


def register(base: str) -> dict[str, str]:
    """A fresh account's auth headers."""
    response = httpx.post(f"{base}/v1/auth/register", json={"email": "drain@example.com"})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['api_key']}"}


def fire(base: str, auth: dict[str, str], cue: dict[str, object]) -> str:
    """Create a cue that never fires by itself and fire it now; returns the execution id."""
    body = {"name": "drain", "schedule": {"type": "recurring", "cron": "0 0 1 1 *"}, **cue}
    created = httpx.post(f"{base}/v1/cues", headers=auth, json=body)
    assert created.status_code == 201, created.text
    fired = httpx.post(f"{base}/v1/cues/{created.json()['id']}/fire", headers=auth, timeout=10)
    assert fired.status_code == 200, fired.text
    return str(fired.json()["id"])


def wait_until(check: object, timeout: float = 30) -> None:
    """Call ``check()`` until it returns something truthy, at most ``timeout`` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        time.sleep(0.05)
