"""A real HAProxy (Debian's package), run as a child process of the test on free ports with the
repository's ``deploy/haproxy.cfg``, its servers swapped for the test's nodes; and its request
log, read back.

Missing ``haproxy`` skips the tests that need it, unless ``CUEFLOW_REQUIRE_HAPROXY=1`` (set by
``.ci/run``, which installs it) makes that a failure.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server import free_port

CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str:
    """The ``haproxy`` executable; skips (or fails, when required) without one."""
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    if os.environ.get("CUEFLOW_REQUIRE_HAPROXY") == "1":
        pytest.fail("haproxy is required (CUEFLOW_REQUIRE_HAPROXY=1) but not installed")
    pytest.skip("haproxy is not installed (apt-get install haproxy)")


def balancer_config(ports: Sequence[int], port: int, stats_port: int) -> str:
    """``deploy/haproxy.cfg`` listening on ``port`` (stats on ``stats_port``), its backend's
    servers replaced by local nodes on ``ports``."""
    lines = []
    for line in CONFIG.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("server "):
            continue
        if stripped == "bind :8000":
            line = line.replace(":8000", f"127.0.0.1:{port}")
        elif stripped == "bind :8404":
            line = line.replace(":8404", f"127.0.0.1:{stats_port}")
        lines.append(line)
        if stripped == "backend cueflow":
            marker = len(lines)
    servers = [f"    server node{k} 127.0.0.1:{p}" for k, p in enumerate(ports)]
    # the servers go at the end of the backend section, before the next section
    end = next(
        (i for i in range(marker, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    return "\n".join([*lines[:end], *servers, *lines[end:]]) + "\n"


@dataclass
class Balancer:
    """A running HAProxy."""

    process: subprocess.Popen[bytes]
    base: str
    stats: str
    log_path: Path

    def servers_up(self) -> dict[str, str]:
        """Server name → status (``UP``, ``DOWN``, ...) of the ``cueflow`` backend."""
        text = httpx.get(f"{self.stats};csv", timeout=2).text.lstrip("# ")
        rows = csv.DictReader(io.StringIO(text))
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == "cueflow" and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def requests(self) -> list[Logged]:
        """Every request HAProxy logged so far."""
        return [
            found
            for line in self.log_path.read_text(errors="replace").splitlines()
            if (found := Logged.parse(line)) is not None
        ]


# "client:port [date] frontend backend/server Tq/Tw/Tc/Tr/Ta status bytes - - TERM
#  act/fe/be/srv/retries queues "request""
_HTTPLOG = re.compile(
    r"\] (?P<frontend>\S+) (?P<backend>[^/\s]+)/(?P<server>\S+) \S+ (?P<status>-?\d+) \S+ \S+ \S+ "
    r"(?P<term>\S{4}) \d+/\d+/\d+/\d+/(?P<retries>\+?\d+) \S+ \"(?P<request>[^\"]*)\""
)


@dataclass
class Logged:
    """One request line of HAProxy's log."""

    server: str
    status: int
    termination: str
    retries: str
    request: str

    @classmethod
    def parse(cls, line: str) -> Logged | None:
        """The request of ``line``, or None for other lines."""
        match = _HTTPLOG.search(line)
        if match is None or match["frontend"] != "api":
            return None
        return cls(
            match["server"], int(match["status"]), match["term"], match["retries"], match["request"]
        )

    @property
    def failed(self) -> bool:
        """A 5xx, or a request HAProxy could not complete (its termination state says who
        ended it: ``-`` in the first place is a normal end)."""
        return self.status >= 500 or self.status < 0 or self.termination[0] != "-"


@contextmanager
def haproxy(ports: Sequence[int], workdir: Path, timeout: float = 30) -> Iterator[Balancer]:
    """HAProxy in front of the nodes on ``ports``; yields once it sees every one of them up."""
    binary = haproxy_binary()
    port, stats_port = free_port(), free_port()
    config = workdir / "haproxy.cfg"
    config.write_text(balancer_config(ports, port, stats_port))
    log_path = workdir / "haproxy.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    balancer = Balancer(
        process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{stats_port}/stats", log_path
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"haproxy exited: {log_path.read_text()[-2000:]}")
            try:
                states = balancer.servers_up()
                if len(states) == len(ports) and all(s == "UP" for s in states.values()):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("haproxy did not see every node up")
            time.sleep(0.1)
        yield balancer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
