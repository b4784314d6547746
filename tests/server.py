"""Running a real ``cueflow serve`` process for end-to-end tests."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def cueflow_server(
    database_url: str,
    cwd: Path,
    *,
    log_level: str = "warning",
    stderr: IO[str] | None = None,
    nofile: int | None = None,
    **env: str,
) -> Iterator[str]:
    """Start ``cueflow serve`` on a free port; yields its base URL; stops it on exit. Its log
    goes to ``stderr`` (a file; default: this process's stderr). ``nofile`` lowers the file
    descriptors it may open."""
    with cueflow_server_process(
        database_url, cwd, log_level=log_level, stderr=stderr, nofile=nofile, **env
    ) as (base, _):
        yield base


@contextmanager
def cueflow_server_process(
    database_url: str,
    cwd: Path,
    *,
    args: Sequence[str] = (),
    session: bool = False,
    log_level: str = "warning",
    stderr: IO[str] | None = None,
    nofile: int | None = None,
    **env: str,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """:func:`cueflow_server` with more command-line ``args``, yielding the base URL and the
    process (a test may stop it itself; it is terminated on exit if still running).
    ``session``: the server leads a process group of its own (as a shell's foreground job,
    whose Ctrl-C reaches every process of the group)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "cueflow",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--log-level",
        log_level,
        *args,
    ]

    def limit_descriptors() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **env},
        stderr=stderr,
        preexec_fn=limit_descriptors if nofile is not None else None,
        start_new_session=session,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cueflow serve exited with {process.returncode}")
            try:
                httpx.get(f"{base}/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
