"""``cueflow serve --workers N``: N server processes on one port, each a full node.

One Python process uses one core. On PostgreSQL, several nodes already share one database with
no leader (``docs/guarantees.md``), so a machine with N cores runs N nodes: the supervisor (the
process ``cueflow serve`` started) binds the listening socket once, then starts N child
processes (``spawn``: fresh interpreters, nothing inherited but the socket) that each build
their own engine (scheduler, dispatcher, sweeps, database pool) and serve the shared socket
with :class:`~cueflow.api.serving.DrainingServer`; the kernel hands each new connection to one
of them. The supervisor serves no request itself.

* **SIGTERM or Ctrl-C**: the supervisor sends SIGTERM to every child, and each drains as a
  single ``cueflow serve`` does (``/status`` answers ``draining``, work in flight finishes
  within the graceful timeout); the supervisor exits 0 once they all have. A child still alive
  well past the graceful timeout is killed (exit 1). A second Ctrl-C (or SIGINT) is passed on
  as SIGINT: the children stop at once.
* **A child that dies** (killed, crashed) is replaced, with a pause that doubles while
  replacements die young (up to :data:`MAX_RESTART_PAUSE`); the log says which pid ended how.
  A child that fails to *start* (exit code 3, uvicorn's start-up failure: the database refused
  the connection, a plugin is missing ...) would fail again: the supervisor stops the others
  and exits 3.
* A child whose supervisor disappears (killed with SIGKILL) drains and exits by itself.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

log = logging.getLogger(__name__)

STARTUP_FAILURE = 3
"""The exit code of a process that failed to start (uvicorn's ``STARTUP_FAILURE``)."""
MAX_RESTART_PAUSE = 30.0
"""Longest pause before replacing a child, when replacements keep dying young."""
YOUNG_SECONDS = 10.0
"""A child that dies sooner than this after it started doubles the next restart pause."""
KILL_MARGIN_SECONDS = 30.0
"""How long past the graceful timeout (and the accept time) a draining child may take to end
(closing the engine, answering open requests) before it is killed."""

Node = Callable[[list[socket.socket]], None]
"""Runs one node (engine and server) on the given listening sockets until a signal stops it;
must be picklable (a module-level function, or a ``functools.partial`` of one)."""


def bind(host: str, port: int) -> socket.socket:
    """The listening TCP socket every child serves (IPv6 when ``host`` has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _child(node: Node, sock: socket.socket, parent: int) -> None:
    """A child's entry point: serve until told to stop, or until the supervisor is gone."""

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)  # orphaned: drain and stop as on SIGTERM

    threading.Thread(target=watch_parent, name="cueflow-parent-watch", daemon=True).start()
    node([sock])


class Supervisor:
    """Starts and keeps ``workers`` children serving ``sock``; :meth:`run` returns the exit code."""

    def __init__(self, node: Node, sock: socket.socket, workers: int, *, stop_timeout: float):
        self.node = node
        self.sock = sock
        self.workers = workers
        self.stop_timeout = stop_timeout
        self._context = multiprocessing.get_context("spawn")
        self._children: dict[int, tuple[BaseProcess, float]] = {}  # pid: (process, started)
        self._restarts: list[float] = []  # when each pending replacement may start
        self._pause = 0.0
        self._signals: list[int] = []
        self._stopping_since: float | None = None
        self._code = 0

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT and every child has ended; the process's exit code."""
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        old_wakeup = signal.set_wakeup_fd(wake_write)
        try:
            host, port = self.sock.getsockname()[:2]
            log.info("serving http://%s:%d with %d worker processes", host, port, self.workers)
            for _ in range(self.workers):
                self._start()
            while self._children or (self._stopping_since is None and self._restarts):
                sentinels: list[int] = [p.sentinel for p, _ in self._children.values()]
                multiprocessing.connection.wait([*sentinels, wake_read], self._timeout())
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 4096)
                self._handle_signals()
                self._reap()
                self._restart_due()
                self._kill_overdue()
            log.info("every worker process has stopped")
            return self._code
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_read)
            os.close(wake_write)
            self.sock.close()

    # signals ------------------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if self._stopping_since is None:
                name, count = signal.Signals(signum).name, len(self._children)
                log.info("%s: stopping %d worker process(es)", name, count)
                self._stop(signal.SIGTERM)
            elif signum == signal.SIGINT:  # a second Ctrl-C: the children stop at once
                log.warning("SIGINT again: worker processes stop without draining")
                self._send(signal.SIGINT)

    def _stop(self, signum: int) -> None:
        self._stopping_since = time.monotonic()
        self._restarts.clear()
        self._send(signum)

    def _send(self, signum: int) -> None:
        for pid in list(self._children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    # children -----------------------------------------------------------------------------------
    def _start(self) -> None:
        process = self._context.Process(
            target=_child, args=(self.node, self.sock, os.getpid()), name="cueflow-node"
        )
        process.start()
        assert process.pid is not None
        self._children[process.pid] = (process, time.monotonic())
        log.info("started worker process %d", process.pid)

    def _reap(self) -> None:
        for pid, (process, started) in list(self._children.items()):
            if process.is_alive():
                continue
            process.join()
            del self._children[pid]
            code = process.exitcode
            if self._stopping_since is not None:
                log.info("worker process %d stopped (exit code %s)", pid, code)
                if code not in _STOPPED_CLEANLY and self._code == 0:
                    self._code = 1
                continue
            if code == STARTUP_FAILURE:
                log.error("worker process %d failed to start: stopping the others", pid)
                self._code = STARTUP_FAILURE
                self._stop(signal.SIGTERM)
                continue
            lived = time.monotonic() - started
            young = lived < YOUNG_SECONDS
            self._pause = min(max(self._pause * 2, 0.5), MAX_RESTART_PAUSE) if young else 0.0
            log.warning(
                "worker process %d exited (exit code %s) after %.1f s; starting another in %.1f s",
                *(pid, code, lived, self._pause),
            )
            self._restarts.append(time.monotonic() + self._pause)

    def _restart_due(self) -> None:
        if self._stopping_since is not None:
            return
        now = time.monotonic()
        for due in [at for at in self._restarts if at <= now]:
            self._restarts.remove(due)
            self._start()

    def _kill_overdue(self) -> None:
        if self._stopping_since is None:
            return
        if time.monotonic() - self._stopping_since < self.stop_timeout:
            return
        for pid, (process, _) in list(self._children.items()):
            if process.is_alive():
                log.error("worker process %d did not stop in time: killing it", pid)
                process.kill()
                self._code = 1

    def _timeout(self) -> float | None:
        """How long the main loop may wait for a child to end or a signal to come."""
        deadlines = list(self._restarts)
        if self._stopping_since is not None:
            deadlines.append(self._stopping_since + self.stop_timeout)
        if not deadlines:
            return None
        return max(min(deadlines) - time.monotonic(), 0.0) + 0.01


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_STOPPED_CLEANLY = (0, -signal.SIGTERM, -signal.SIGINT)
"""Exit codes of a child that stopped as told (uvicorn ends by raising the signal it caught
again, once it has shut down)."""
