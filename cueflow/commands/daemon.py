"""The worker daemon behind ``cueflow worker``, on the worker core (:mod:`cueflow.worker_core`).

The core registers the worker with its task names (and again every ``REGISTER_SECONDS``), keeps
every claim's lease alive at a third of the lease and reports lost ones. The daemon polls
``GET /v1/executions/claimable?task=`` for each handler's task, claims what it has room for
(``concurrency``), runs each execution's handler in a thread of its own (handlers are blocking
shell commands and functions) and reports the outcome. :meth:`WorkerDaemon.stop` stops claiming
and lets running handlers finish for ``grace`` seconds; a second stop, or the end of the grace,
cancels them and releases their executions back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import typer
from rich.markup import escape

from cueflow.client import ApiError, AsyncClient, Unreachable
from cueflow.commands.handlers import Handler, Report, Run, TaskContext
from cueflow.commands.output import stdout
from cueflow.worker_api import HttpWorker
from cueflow.worker_core import Leases

MAX_RETRY_PAUSE = 30.0
"""Longest wait between polls while the server is unreachable or refusing them."""
REPORT_ATTEMPTS = 5
"""Tries to deliver an outcome while the server is unreachable (1, 2, 4, 8 s apart)."""

_BARE_OUTCOME = frozenset({"success", "result", "error"})
T = TypeVar("T")


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


async def _in_thread(work: Callable[[], T], name: str) -> T:
    """``work()`` on a daemon thread of its own: a handler that ignores cancellation (a Python
    function cannot be interrupted) must not keep the process from exiting."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    outcome: list[tuple[bool, Any]] = []

    def settle() -> None:
        if done.done():  # the awaiting task was cancelled
            return
        ok, value = outcome[0]
        if ok:
            done.set_result(value)
        else:
            done.set_exception(value)

    def target() -> None:
        try:
            outcome.append((True, work()))
        except BaseException as exc:  # handed to the awaiting task, which decides
            outcome.append((False, exc))
        with contextlib.suppress(RuntimeError):  # the daemon's loop is gone: nobody waits
            loop.call_soon_threadsafe(settle)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await done


class WorkerDaemon:
    """The daemon's state and loops; :meth:`run` returns when it is done."""

    def __init__(
        self,
        api: AsyncClient,
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
        self.api = api
        self.handlers = {h.task: h for h in handlers}
        self.events = events
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.grace = grace
        self.once = once
        self.max_executions = max_executions
        self.worker = HttpWorker(api, worker_id)
        self.leases = Leases(
            self.worker, tasks=sorted(self.handlers), on_lost=self._lost, warn=self._warn
        )
        self._running: dict[str, Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
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
        asyncio.run(self._run())

    def stop(self) -> None:
        """Stop claiming; a second call cancels and releases what is still running. Safe from
        a signal handler or another thread."""
        if self._stopping.is_set():
            self._abandon.set()
        self._stopping.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just ended
                loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        try:
            await self.leases.register_now(quietly=False)
            self.leases.start()
            await self._claim_loop()
            await self._drain()
        finally:
            self._stopping.set()
            self._loop = None
            await self.leases.stop()
            await self.api.aclose()

    # claiming ----------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            if self._quota() == 0:
                if not self._running:
                    return
                await self._idle(self.poll_interval)
                continue
            polled = time.monotonic()
            try:
                claimed = await self._fill()
                failures = 0
            except ApiError as exc:
                if self.once:
                    raise  # a script wants to know that this run did not happen
                failures += 1
                pause = min(self.poll_interval * 2 ** min(failures, 10), MAX_RETRY_PAUSE)
                self.events.emit(
                    "poll_failed",
                    f"[yellow]{escape(exc.message)}; retrying in {pause:g}s[/yellow]",
                    error=exc.message,
                )
                await self._idle(pause)
                continue
            if self.once and not claimed and not self._running:
                return
            if not claimed:  # a server that long-polls has waited already
                await self._idle(self.poll_interval - (time.monotonic() - polled))

    async def _idle(self, seconds: float) -> None:
        """Wait ``seconds``, or less if a handler finishes or a stop is asked for."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _quota(self) -> int:
        """How many more executions may be claimed right now."""
        room = self.concurrency - len(self._running)
        if self.max_executions is not None:
            room = min(room, self.max_executions - self.claimed)
        return max(room, 0)

    async def _fill(self) -> int:
        """Claim up to the free room; returns how many executions were claimed.

        A daemon with one task asks the server to hold an empty answer for a poll interval
        (``wait``) and to list no more than it has room for (``limit``): cueflow extensions that
        other servers ignore."""
        claimed = 0
        long_poll = len(self.handlers) == 1 and not self.once
        for task, handler in self.handlers.items():
            wait = min(round(self.poll_interval, 3), 30) if long_poll else None
            limit = min(self._quota(), 100) if long_poll else None
            items = await self.worker.claimable(task, wait=wait, limit=limit)
            for item in items:
                if self._quota() == 0 or self._stopping.is_set():
                    return claimed
                if item.get("task") == task:
                    claimed += await self._try_claim(item, handler)
        return claimed

    async def _try_claim(self, item: dict[str, Any], handler: Handler) -> bool:
        execution_id = item["execution_id"]
        try:
            await self.leases.claim(item)
        except ApiError as exc:
            if exc.status == 409:
                return False  # another worker was faster
            raise
        run = Run(TaskContext.of(item))
        self._running[execution_id] = run
        self.claimed += 1
        self.events.emit(
            "claimed",
            f"claimed [bold]{execution_id}[/bold] ({escape(handler.task)})",
            execution_id=execution_id,
            task=handler.task,
            cue_id=run.context.cue_id,
        )
        payload = item.get("payload") or {}
        asyncio.get_running_loop().create_task(self._work(handler, run, payload))
        return True

    # running -----------------------------------------------------------------------------------
    async def _work(self, handler: Handler, run: Run, payload: dict[str, Any]) -> None:
        execution_id = run.context.execution_id
        started = time.monotonic()
        try:
            report = await _in_thread(
                lambda: handler.run(payload, run, self.timeout), f"cueflow-{execution_id}"
            )
            if not run.cancelled.is_set():
                await self._report(execution_id, report, started)
        except Exception as exc:  # never let one execution stop the daemon silently
            self.events.emit("error", f"[red]{escape(execution_id)}: {escape(str(exc))}[/red]")
        finally:
            self.leases.forget(execution_id)
            self._running.pop(execution_id, None)
            self._wake.set()

    async def _report(self, execution_id: str, report: Report, started: float) -> None:
        body = report
        for attempt in range(REPORT_ATTEMPTS):
            try:
                await self.leases.report(execution_id, body)
                break
            except Unreachable:
                if attempt == REPORT_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(2**attempt)
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
        self.finished += 1
        seconds = round(time.monotonic() - started, 3)
        if report["success"]:
            message = f"[green]✓[/green] {execution_id} succeeded in {seconds}s"
        else:
            error = escape(str(report.get("error", ""))[:200])
            message = f"[red]✗[/red] {execution_id} failed in {seconds}s: {error}"
        self.events.emit(
            "finished", message, execution_id=execution_id, success=report["success"],
            seconds=seconds,
        )  # fmt: skip

    # what the worker core tells ----------------------------------------------------------------
    def _lost(self, execution_id: str, exc: ApiError) -> None:
        self.events.emit(
            "lease_lost",
            f"[yellow]lost {execution_id}: {escape(exc.message)}[/yellow]",
            execution_id=execution_id,
        )

    def _warn(self, text: str) -> None:
        self.events.emit("warning", f"[yellow]{escape(text)}[/yellow]")

    # stopping ----------------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Wait for running handlers: until they finish, or the grace ends (or a second stop
        signal); then cancel and release what is left."""
        if self._running and self._stopping.is_set():
            count = len(self._running)
            self.events.emit(
                "stopping",
                f"stopping: waiting up to {self.grace:g}s for {count} running execution(s)",
                running=count,
            )
        deadline = time.monotonic() + self.grace
        while self._running:
            if self._abandon.is_set() or (self._stopping.is_set() and time.monotonic() >= deadline):
                await self._release_all()
                return
            await self._idle(0.1)

    async def _release_all(self) -> None:
        for execution_id, run in list(self._running.items()):
            run.cancel()
            try:
                # unfinished, not failed: back in the queue at once, not after the backoff
                await self.leases.release(execution_id, "worker stopped", retry_after=0)
            except ApiError as exc:
                self._warn(exc.message)
            else:
                self.released += 1
                self.events.emit(
                    "released",
                    f"[yellow]released {execution_id}[/yellow] (unfinished)",
                    execution_id=execution_id,
                )
            self._running.pop(execution_id, None)
