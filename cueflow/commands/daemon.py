"""The worker daemon behind ``cueflow worker``, over the pull protocol.

It registers (``POST /v1/worker/heartbeat`` with its task names, again every
``REGISTER_SECONDS``), polls ``GET /v1/executions/claimable?task=`` for each handler's task,
claims what it has room for (``concurrency``), runs each execution's handler in its own thread,
heartbeats every claim it holds at a third of the lease, and reports the outcome. :meth:`stop`
stops claiming and lets running handlers finish for ``grace`` seconds; a second stop, or the end
of the grace, cancels them and releases their executions back to the queue.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import typer
from rich.markup import escape

from cueflow.commands.client import ApiClient, ApiError, Unreachable
from cueflow.commands.handlers import Handler, Report, Run, TaskContext
from cueflow.commands.output import stdout

REGISTER_SECONDS = 30.0
"""How often the worker re-registers (the server calls a worker stale after 180 s)."""
LEASE_FRACTION = 1 / 3
"""A claim is heartbeated when this much of its lease has passed since the last one."""
MAX_RETRY_PAUSE = 30.0
"""Longest wait between polls while the server is unreachable or refusing them."""
REPORT_ATTEMPTS = 5
"""Tries to deliver an outcome while the server is unreachable (1, 2, 4, 8 s apart)."""


_BARE_OUTCOME = frozenset({"success", "result", "error", "worker_id"})


def new_worker_id() -> str:
    """A worker id unique to this process: ``worker-<host>-<pid>-<random>``."""
    host = socket.gethostname().split(".")[0][:40] or "host"
    return f"worker-{host}-{os.getpid()}-{secrets.token_hex(3)}"


class Events:
    """What the daemon tells its user: rich lines, or JSON lines with ``--json``."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._lock = threading.Lock()

    def emit(self, event: str, message: str, **fields: Any) -> None:
        """One event: ``message`` is rich markup for people, ``fields`` go to JSON lines."""
        with self._lock:
            if self.as_json:
                line = {"event": event, "time": datetime.now(UTC).isoformat(), **fields}
                typer.echo(json.dumps(line, ensure_ascii=False))
            else:
                stamp = datetime.now().strftime("%H:%M:%S")
                stdout().print(f"[dim]{stamp}[/dim] {message}", soft_wrap=True)


class _Claim:
    """An execution this worker holds."""

    def __init__(self, context: TaskContext, handler: Handler, lease_seconds: float) -> None:
        self.run = Run(context)
        self.handler = handler
        self.lease_seconds = lease_seconds
        self.last_beat = time.monotonic()
        self.started = time.monotonic()

    @property
    def execution_id(self) -> str:
        return self.run.context.execution_id


class WorkerDaemon:
    """The daemon's state and loops; :meth:`run` returns when it is done."""

    def __init__(
        self,
        client_factory: Callable[[], ApiClient],
        handlers: list[Handler],
        events: Events,
        *,
        worker_id: str,
        concurrency: int = 1,
        poll_interval: float = 2.0,
        timeout: float | None = None,
        grace: float = 30.0,
        once: bool = False,
        max_executions: int | None = None,
    ) -> None:
        self.handlers = {h.task: h for h in handlers}
        self.events = events
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.grace = grace
        self.once = once
        self.max_executions = max_executions
        self._factory = client_factory
        self._local = threading.local()
        self._clients: list[ApiClient] = []
        self._held: dict[str, _Claim] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._abandon = threading.Event()
        self.claimed = 0
        self.finished = 0
        self.released = 0

    # public ------------------------------------------------------------------------------------
    def run(self) -> None:
        """Register, then claim and run executions until stopped, ``--once`` ran out of work or
        ``--max-executions`` were done. Raises :class:`Unreachable`/:class:`ApiError` if the
        first registration fails."""
        self._register()
        beater = threading.Thread(
            target=self._heartbeat_loop, name="cueflow-heartbeats", daemon=True
        )
        beater.start()
        try:
            self._claim_loop()
            self._drain()
        finally:
            self._stopping.set()
            self._wake.set()
            beater.join(timeout=5)
            for client in self._clients:
                client.close()

    def stop(self) -> None:
        """Stop claiming; a second call cancels and releases what is still running."""
        if self._stopping.is_set():
            self._abandon.set()
        self._stopping.set()
        self._wake.set()

    # claiming ----------------------------------------------------------------------------------
    def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self._quota() == 0:
                if not self._held:
                    return
                self._idle(self.poll_interval)
                continue
            polled = time.monotonic()
            try:
                claimed = self._fill()
                failures = 0
            except (Unreachable, ApiError) as exc:
                if self.once:
                    raise  # a script wants to know that this run did not happen
                failures += 1
                pause = min(self.poll_interval * 2 ** min(failures, 10), MAX_RETRY_PAUSE)
                message = exc.message if isinstance(exc, ApiError) else str(exc)
                self.events.emit(
                    "poll_failed",
                    f"[yellow]{escape(message)}; retrying in {pause:g}s[/yellow]",
                    error=message,
                )
                self._idle(pause)
                continue
            if self.once and not claimed and not self._held:
                return
            if not claimed:  # a server that long-polls has waited already
                self._idle(self.poll_interval - (time.monotonic() - polled))

    def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a handler finishes or a stop is asked for."""
        if seconds > 0:
            self._wake.wait(seconds)
        self._wake.clear()

    def _quota(self) -> int:
        """How many more executions may be claimed right now."""
        with self._lock:
            room = self.concurrency - len(self._held)
        if self.max_executions is not None:
            room = min(room, self.max_executions - self.claimed)
        return max(room, 0)

    def _fill(self) -> int:
        """Claim up to the free room; returns how many executions were claimed.

        A daemon with one task asks the server to hold an empty answer for a poll interval
        (``wait``) and to list no more than it has room for (``limit``): cueflow extensions that
        other servers ignore."""
        claimed = 0
        long_poll = len(self.handlers) == 1 and not self.once
        for task, handler in self.handlers.items():
            params: dict[str, Any] = {"task": task}
            if long_poll:
                params.update(
                    wait=min(round(self.poll_interval, 3), 30), limit=min(self._quota(), 100)
                )
            items = self._api().get("/v1/executions/claimable", **params)["executions"]
            for item in items:
                if self._quota() == 0 or self._stopping.is_set():
                    return claimed
                if item.get("task") == task:
                    claimed += self._try_claim(item, handler)
        return claimed

    def _try_claim(self, item: dict[str, Any], handler: Handler) -> bool:
        execution_id = item["execution_id"]
        try:
            answer = self._api().post(
                f"/v1/executions/{execution_id}/claim", {"worker_id": self.worker_id}
            )
        except ApiError as exc:
            if exc.status == 409:
                return False  # another worker was faster
            raise
        held = _Claim(TaskContext.of(item), handler, float(answer.get("lease_seconds") or 900))
        with self._lock:
            self._held[execution_id] = held
            self.claimed += 1
        self.events.emit(
            "claimed",
            f"claimed [bold]{execution_id}[/bold] ({escape(handler.task)})",
            execution_id=execution_id,
            task=handler.task,
            cue_id=held.run.context.cue_id,
        )
        payload = item.get("payload") or {}
        threading.Thread(
            target=self._work, args=(held, payload), name=f"cueflow-{execution_id}", daemon=True
        ).start()
        return True

    # running -----------------------------------------------------------------------------------
    def _work(self, held: _Claim, payload: dict[str, Any]) -> None:
        try:
            report = held.handler.run(payload, held.run, self.timeout)
            if not held.run.cancelled.is_set():
                self._report(held, report)
        except Exception as exc:  # never let a worker thread die silently
            self.events.emit("error", f"[red]{escape(held.execution_id)}: {escape(str(exc))}[/red]")
        finally:
            with self._lock:
                self._held.pop(held.execution_id, None)
            self._close_thread_client()
            self._wake.set()

    def _report(self, held: _Claim, report: Report) -> None:
        execution_id = held.execution_id
        path = f"/v1/executions/{execution_id}/outcome"
        headers = {"X-Worker-Id": self.worker_id}
        body = {**report, "worker_id": self.worker_id}
        for attempt in range(REPORT_ATTEMPTS):
            try:
                self._api().post(path, body, headers=headers)
                break
            except Unreachable:
                if attempt == REPORT_ATTEMPTS - 1:
                    raise
                time.sleep(2**attempt)
            except ApiError as exc:
                if exc.status == 422 and set(body) - _BARE_OUTCOME:
                    body = {k: v for k, v in body.items() if k in _BARE_OUTCOME}
                    continue  # evidence the server refused: report the bare outcome
                self.events.emit(
                    "report_refused",
                    f"[red]outcome of {execution_id} refused: {escape(exc.message)}[/red]",
                    execution_id=execution_id,
                    status=exc.status,
                    code=exc.code,
                )
                return
        with self._lock:
            self.finished += 1
        seconds = round(time.monotonic() - held.started, 3)
        if report["success"]:
            message = f"[green]✓[/green] {execution_id} succeeded in {seconds}s"
        else:
            error = escape(str(report.get("error", ""))[:200])
            message = f"[red]✗[/red] {execution_id} failed in {seconds}s: {error}"
        self.events.emit(
            "finished",
            message,
            execution_id=execution_id,
            success=report["success"],
            seconds=seconds,
        )

    # heartbeats --------------------------------------------------------------------------------
    def _heartbeat_loop(self) -> None:
        registered = time.monotonic()
        while not self._stopping.is_set() or self._held:
            now = time.monotonic()
            if now - registered >= REGISTER_SECONDS:
                registered = now
                self._quietly(self._register)
            with self._lock:
                due = [
                    h
                    for h in self._held.values()
                    if now - h.last_beat >= h.lease_seconds * LEASE_FRACTION
                ]
            for held in due:
                held.last_beat = now
                self._quietly(lambda held=held: self._beat(held))
            time.sleep(min(0.2, self.poll_interval))

    def _beat(self, held: _Claim) -> None:
        try:
            self._api().post(
                f"/v1/executions/{held.execution_id}/heartbeat",
                {},
                headers={"X-Worker-Id": self.worker_id},
            )
        except ApiError as exc:
            if exc.status in (403, 404, 409):
                self.events.emit(
                    "lease_lost",
                    f"[yellow]lost {held.execution_id}: {escape(exc.message)}[/yellow]",
                    execution_id=held.execution_id,
                )
                return
            raise

    def _register(self) -> None:
        self._api().post(
            "/v1/worker/heartbeat", {"worker_id": self.worker_id, "handlers": sorted(self.handlers)}
        )

    def _quietly(self, action: Callable[[], None]) -> None:
        try:
            action()
        except (ApiError, Unreachable) as exc:
            self.events.emit("warning", f"[yellow]{escape(str(exc))}[/yellow]")

    # stopping ----------------------------------------------------------------------------------
    def _drain(self) -> None:
        """Wait for running handlers: until they finish, or the grace ends (or a second stop
        signal); then cancel and release what is left."""
        if self._held and self._stopping.is_set():
            count = len(self._held)
            self.events.emit(
                "stopping",
                f"stopping: waiting up to {self.grace:g}s for {count} running execution(s)",
                running=count,
            )
        deadline = time.monotonic() + self.grace
        while self._held:
            if self._abandon.is_set() or (self._stopping.is_set() and time.monotonic() >= deadline):
                self._release_all()
                return
            self._wake.wait(0.1)
            self._wake.clear()

    def _release_all(self) -> None:
        with self._lock:
            left = list(self._held.values())
        for held in left:
            held.run.cancel()
            self._quietly(lambda held=held: self._release(held))
            with self._lock:
                self._held.pop(held.execution_id, None)

    def _release(self, held: _Claim) -> None:
        execution_id = held.execution_id
        reason = "worker stopped"
        try:
            self._api().post(
                f"/v1/executions/{execution_id}/release",
                {"worker_id": self.worker_id, "reason": reason},
            )
        except ApiError as exc:
            if exc.status not in (404, 405) or exc.code == "execution_not_found":
                raise
            # a server without the release extension: report the run as failed instead
            self._api().post(
                f"/v1/executions/{execution_id}/outcome",
                {
                    "success": False,
                    "error": f"released by worker: {reason}",
                    "worker_id": self.worker_id,
                },
                headers={"X-Worker-Id": self.worker_id},
            )
        self.released += 1
        self.events.emit(
            "released",
            f"[yellow]released {execution_id}[/yellow] (unfinished)",
            execution_id=execution_id,
        )

    # plumbing ----------------------------------------------------------------------------------
    def _api(self) -> ApiClient:
        """This thread's client (one connection pool per thread)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._factory()
            with self._lock:
                self._clients.append(client)
        return client

    def _close_thread_client(self) -> None:
        """Close the client of a thread that is about to end (one per execution)."""
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            with self._lock:
                self._clients.remove(client)
            client.close()
