"""What a benchmark runs against: a ``cueflow serve`` it starts (SQLite or PostgreSQL), or
any CueAPI-compatible server already running at a URL.

A started server is sampled from ``/proc``: resident memory (peak and current) and CPU time,
so each scenario can report the server's cost beside the client's. A server started with
several processes (``--server-workers N``: ``cueflow serve --workers N``, PostgreSQL only) is
measured whole: the supervisor and every process under it, summed.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_URL = os.environ.get("CUEFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

BENCH_ENV = {
    # A benchmark key makes thousands of requests a second: lift the per-key rate limit.
    "CUEFLOW_RATE_LIMIT_PER_MINUTE": "0",
    "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "1",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def process_rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of ``pid`` in MiB."""
    rss = peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return rss, peak


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants alive now (``cueflow serve --workers``: its node processes)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """:func:`process_cpu_seconds` summed over :func:`process_tree` (and over the descendants
    that ended and were waited for, which the kernel adds to their parent's figures)."""
    total = 0.0
    for member in process_tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / CLOCK_TICKS  # utime stime cutime cstime
    return total


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """:func:`process_rss_mb` (current, peak) summed over :func:`process_tree`."""
    rss = peak = 0.0
    for member in process_tree(pid):
        try:
            now, high = process_rss_mb(member)
        except OSError:
            continue
        rss, peak = rss + now, peak + high
    return rss, peak


def client_cpu_seconds() -> float:
    """CPU seconds used by this benchmark process (and children it waited for)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Meter:
    """CPU and memory of the server process over one scenario."""

    pid: int | None
    database_pid: int | None = None
    """The local PostgreSQL server's postmaster, whose CPU is measured too
    (:func:`postmaster_pid`)."""
    started: float = field(default_factory=time.monotonic)
    server_cpu0: float = 0.0
    database_cpu0: float = 0.0
    client_cpu0: float = field(default_factory=client_cpu_seconds)
    peak_rss_mb: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Meter:
        """Begin sampling (RSS every 50 ms, so short peaks are seen)."""
        if self.database_pid is not None:
            self.database_cpu0 = tree_cpu_seconds(self.database_pid)
        if self.pid is not None:
            self.server_cpu0 = tree_cpu_seconds(self.pid)
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            try:
                rss, _ = tree_rss_mb(self.pid)  # type: ignore[arg-type]
            except OSError:
                return
            self.peak_rss_mb = max(self.peak_rss_mb, rss)

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the figures for the scenario."""
        elapsed = time.monotonic() - self.started
        self._stop.set()
        figures: dict[str, Any] = {
            "wall_seconds": round(elapsed, 3),
            "client_cpu_seconds": round(client_cpu_seconds() - self.client_cpu0, 3),
        }
        if self.database_pid is not None:
            used = tree_cpu_seconds(self.database_pid) - self.database_cpu0
            figures["database_cpu_seconds"] = round(used, 3)
        if self.pid is not None:
            rss, _ = tree_rss_mb(self.pid)
            used = tree_cpu_seconds(self.pid) - self.server_cpu0
            figures["server_cpu_seconds"] = round(used, 3)
            figures["server_rss_mb"] = round(rss, 1)
            figures["server_peak_rss_mb"] = round(max(self.peak_rss_mb, rss), 1)
        return figures


class Target:
    """A server to benchmark: its base URL, an API key, and (when started here) its pid."""

    def __init__(self, base_url: str, api_key: str | None = None, pid: int | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.pid = pid
        self.store = "remote"
        self.database_pid: int | None = None

    def meter(self) -> Meter:
        """A started :class:`Meter` on this server (and its local PostgreSQL server)."""
        return Meter(self.pid, self.database_pid).start()

    def new_account(self) -> str:
        """A fresh API key (registers a user when the server allows it; otherwise the key the
        target was given)."""
        email = f"bench-{uuid.uuid4().hex[:10]}@example.com"
        resp = httpx.post(f"{self.base_url}/v1/auth/register", json={"email": email}, timeout=30)
        if resp.status_code in (200, 201):
            return str(resp.json()["api_key"])
        if self.api_key:
            return self.api_key
        raise RuntimeError(f"cannot register a benchmark user: {resp.status_code} {resp.text}")

    def close(self) -> None:
        """Nothing to stop for a remote server."""


class ServerTarget(Target):
    """A ``cueflow serve`` process started for the benchmark, on a fresh database."""

    def __init__(
        self,
        store: str,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        workers: int = 1,
    ):
        if workers > 1 and store != "postgresql":
            raise ValueError("several server processes need PostgreSQL (--store postgresql)")
        self.store_kind = store
        self.workers = workers
        self._tmp = tempfile.TemporaryDirectory(prefix="cueflow-bench-")
        self._pg_db: str | None = None
        if store == "sqlite":
            url = f"sqlite:///{self._tmp.name}/bench.db"
        elif store == "postgresql":
            self._pg_db = f"cueflow_bench_{uuid.uuid4().hex[:10]}"
            _pg_admin_sync(f'CREATE DATABASE "{self._pg_db}"')
            url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self._pg_db
        else:
            raise ValueError(f"unknown store {store!r}")
        self.database_url = url
        self._port = free_port()
        self._env = {**os.environ, **BENCH_ENV, **(env or {})}
        self._log = log
        super().__init__(f"http://127.0.0.1:{self._port}")
        self.store = store
        if store == "postgresql":
            self.database_pid = postmaster_pid()
        self._start()

    def _start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "cueflow",
            "serve",
            "--port",
            str(self._port),
            "--database-url",
            self.database_url,
            "--log-level",
            "warning",
            "--workers",
            str(self.workers),
        ]
        out = open(self._log or os.devnull, "ab")  # noqa: SIM115 - lives as long as the server
        self._process = subprocess.Popen(
            command, cwd=self._tmp.name, env=self._env, stdout=out, stderr=out
        )
        self.pid = self._process.pid
        self._wait_ready()

    def _stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def restart(self) -> None:
        """Stop the server and start it again on the same database and port."""
        self._stop()
        self._start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"cueflow serve exited with {self._process.returncode}")
            try:
                httpx.get(f"{self.base_url}/health", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        """Stop the server and drop its database."""
        self._stop()
        if self._pg_db:
            _pg_admin_sync(f'DROP DATABASE IF EXISTS "{self._pg_db}" WITH (FORCE)')
        self._tmp.cleanup()


def _pg_admin_sync(sql: str) -> Any:
    """:func:`_pg_admin` from synchronous code, inside or outside a running event loop."""
    errors: list[BaseException] = []
    answers: list[Any] = []

    def run() -> None:
        try:
            answers.append(asyncio.run(_pg_admin(sql)))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return answers[0]


async def _pg_admin(sql: str) -> Any:
    """Run ``sql`` on the admin database; the first column of its first row."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def postmaster_pid() -> int | None:
    """The pid of the PostgreSQL server at :data:`PG_ADMIN_URL` when it runs on this machine
    and its data directory is readable here (its process tree does the database's work, so its
    CPU is the database's side of a run: shared with anything else using that server), else
    ``None``."""
    try:
        directory = _pg_admin_sync("SHOW data_directory")
        pid = int(Path(directory, "postmaster.pid").read_text().split()[0])
        Path(f"/proc/{pid}/stat").read_text()
    except Exception:
        return None
    return pid


def open_target(store: str | None, url: str | None, api_key: str | None) -> Target:
    """A remote :class:`Target` when ``url`` is given, else a started server on ``store``."""
    if url:
        return Target(url, api_key)
    return ServerTarget(store or "sqlite")
