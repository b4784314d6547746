"""Real ``cueflow serve`` processes for the reliability scenarios: nodes that can be killed with
SIGKILL and restarted on the same port and database, so clients reconnect to the same address.

Beside it: ``tests/cluster_clients.py`` (HTTP clients and workers keeping a ledger of every
answer they got), ``tests/cluster_database.py`` (direct reads of what was stored) and
``tests/mixed_load.py`` (sustained mixed load on a node). Used by ``tests/test_reliability_*.py``,
``scripts/soak.py`` and ``benchmarks/partition.py``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server import free_port


@dataclass
class Node:
    """One ``cueflow serve`` process on a fixed port: it can be killed (SIGKILL) and restarted
    on the same port and database, so clients reconnect to the same address."""

    database_url: str
    workdir: Path
    env: dict[str, str]
    name: str = "node"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        """The node's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the node's output goes (appended across restarts)."""
        return self.workdir / f"{self.name}.log"

    @property
    def pid(self) -> int:
        """The running process id."""
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def spawn(self) -> None:
        """Start the process (see :meth:`ready` to wait for it)."""
        command = [
            sys.executable, "-m", "cueflow", "serve", "--port", str(self.port),
            "--database-url", self.database_url, "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    async def ready(self, timeout: float = 60) -> None:
        """Wait until ``/health`` answers (the store is migrated and the loops run)."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
                try:
                    if (await client.get(f"{self.base}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} not ready in {timeout} s: {self.log_tail()}")
                await asyncio.sleep(0.1)

    async def start(self) -> None:
        """Spawn and wait until ready."""
        self.spawn()
        await self.ready()

    def kill(self) -> None:
        """``kill -9``: no shutdown code runs, in-flight requests and deliveries are cut off."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), or kill after 10 s."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def rss_mib(self) -> float:
        """Resident memory of the process, from ``/proc/<pid>/status``."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS line")

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def errors_logged(self) -> list[str]:
        """Tracebacks and error lines in the node's log."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in text if "Traceback" in line or " 500 " in line]


def node_env(
    *,
    lease_seconds: int = 4,
    webhook_timeout: float = 3,
    misfire_grace_seconds: int | None = None,
    **extra: str,
) -> dict[str, str]:
    """Environment for test nodes: short leases, fast sweeps and delivery polls, and webhooks
    allowed to reach the local receiver."""
    env = {
        "WORKER_CLAIM_TIMEOUT_SECONDS": str(lease_seconds),
        "WEBHOOK_TIMEOUT_SECONDS": str(webhook_timeout),
        "CUEFLOW_DELIVERY_LEASE_MARGIN_SECONDS": "1",
        "CUEFLOW_DELIVERY_POLL_SECONDS": "0.5",
        "CUEFLOW_SWEEP_INTERVAL_SECONDS": "0.5",
        "CUEFLOW_ALLOW_PRIVATE_WEBHOOKS": "1",
        **extra,
    }
    if misfire_grace_seconds is not None:
        env["CUEFLOW_MISFIRE_GRACE_SECONDS"] = str(misfire_grace_seconds)
    return env


@asynccontextmanager
async def cluster(
    database_url: str, workdir: Path, nodes: int = 1, **env: str
) -> AsyncIterator[list[Node]]:
    """``nodes`` cueflow processes on one database, started together; stopped on exit."""
    started = [Node(database_url, workdir, env, name=f"node{k}") for k in range(nodes)]
    try:
        for node in started:
            node.spawn()
        for node in started:
            await node.ready()
        yield started
    finally:
        for node in started:
            node.stop()
