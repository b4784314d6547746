"""A private PostgreSQL server for tests that restart or stop the database.

Never restart the shared server at 127.0.0.1:5432 (other tests use it); start one of these
instead: the installed server's ``initdb`` and ``pg_ctl`` on a data directory of its own, run as
the ``postgres`` OS user when the tests run as root (``initdb`` refuses root), listening only on
127.0.0.1 on a free port, with fsync off (test data)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server import free_port

"""Ports a private server may take (the first one free)."""


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class PgInstance:
    """One private PostgreSQL server (see the module docstring)."""

    def __init__(self, bindir: Path, root: Path, port: int) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.port = port

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        # no pipes: the server pg_ctl starts would inherit them and keep them open
        subprocess.run(
            [*prefix, *command],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
            cwd=self.root,
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", *args,
        )  # fmt: skip

    def init(self) -> None:
        """Create the data directory."""
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off -c max_connections=100"
        )
        self._pg_ctl("-o", options, "start")

    def restart(self) -> None:
        """Restart the server (``fast``: sessions are ended, as by an administrator's
        restart), waiting until it accepts connections again."""
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        """Stop the server at once."""
        self._pg_ctl("-m", "immediate", "stop")


def postgres_binaries_available() -> bool:
    """Whether ``initdb`` and ``pg_ctl`` are installed."""
    return _bindir() is not None


@contextmanager
def private_postgres() -> Iterator[PgInstance]:
    """A started private server, stopped and deleted on exit (skips the test when the server
    binaries are not installed)."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    root = Path(tempfile.mkdtemp(prefix="cueflow-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    instance = PgInstance(bindir, root, free_port())
    try:
        instance.init()
        instance.start()
        try:
            yield instance
        finally:
            instance.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
