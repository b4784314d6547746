"""``cueflow worker``: run the worker daemon (:mod:`cueflow.commands.daemon`) until it is done
or stopped by SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from cueflow.client import ApiError, AsyncClient, BadServerUrl, Retries, Unreachable
from cueflow.commands.daemon import Events, WorkerDaemon
from cueflow.commands.handlers import HandlerSpecError, parse_handler
from cueflow.commands.output import EXIT_API_ERROR, EXIT_UNREACHABLE, EXIT_USAGE, fail
from cueflow.commands.remote import DEFAULT_API_URL, ApiKey, ApiUrl
from cueflow.worker_core import new_worker_id


@contextmanager
def _stop_on_signals(daemon: WorkerDaemon) -> Iterator[None]:
    """SIGINT/SIGTERM stop the daemon (the second one abandons running work)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: daemon.stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def worker(
    handler: Annotated[
        list[str],
        typer.Option(
            "--handler",
            "-H",
            metavar="TASK=shell:CMD|TASK=python:MOD:FUNC",
            help="What runs executions whose payload.task is TASK (repeatable).",
            show_default=False,
        ),
    ],
    concurrency: Annotated[int, typer.Option(min=1, help="Executions run at once.")] = 1,
    worker_id: Annotated[
        str | None, typer.Option(help="This worker's id (default: worker-<host>-<pid>-<random>).")
    ] = None,
    poll_interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls when idle.")
    ] = 2.0,
    timeout: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds a handler may run before it fails.")
    ] = None,
    grace: Annotated[
        float, typer.Option(min=0, help="On SIGINT/SIGTERM, seconds running work may finish.")
    ] = 30.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run what is claimable now, then exit.")
    ] = False,
    max_executions: Annotated[
        int | None, typer.Option(min=1, help="Exit after running this many executions.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    api_key: ApiKey = None,
    as_json: Annotated[bool, typer.Option("--json", help="Log events as JSON lines.")] = False,
) -> None:
    """Run a worker daemon: claim executions and run a handler for each.

    A shell handler gets the payload as JSON on stdin and in CUEFLOW_PAYLOAD; a Python handler
    is called with the payload dict."""
    if not api_key:
        fail("no API key: pass --api-key or set CUEFLOW_API_KEY", EXIT_USAGE)
    try:
        handlers = [parse_handler(spec) for spec in handler]
    except HandlerSpecError as exc:
        fail(str(exc), EXIT_USAGE)
    tasks = [h.task for h in handlers]
    if len(set(tasks)) != len(tasks):
        fail("each task may have only one --handler", EXIT_USAGE)
    try:
        api = AsyncClient(api_url, api_key, retries=Retries(attempts=0))
    except BadServerUrl as exc:
        fail(f"--api-url: {exc}", EXIT_USAGE)
    events = Events(as_json)
    daemon = WorkerDaemon(
        api,
        handlers,
        events,
        worker_id=worker_id or new_worker_id(),
        concurrency=concurrency,
        poll_interval=poll_interval,
        timeout=timeout,
        grace=grace,
        once=once,
        max_executions=max_executions,
    )
    events.emit(
        "started",
        f"worker [bold]{escape(daemon.worker_id)}[/bold] on {escape(api_url)}: "
        + ", ".join(escape(h.describe()) for h in handlers)
        + f" (concurrency {concurrency})",
        worker_id=daemon.worker_id,
        tasks=tasks,
        concurrency=concurrency,
    )
    try:
        with _stop_on_signals(daemon):
            daemon.run()
    except Unreachable as exc:
        fail(f"{exc} (is `cueflow serve` running there?)", EXIT_UNREACHABLE)
    except ApiError as exc:
        fail(f"{exc.message} ({exc.status} {exc.code})", EXIT_API_ERROR)
    events.emit(
        "stopped",
        f"worker stopped: {daemon.finished} finished, {daemon.released} released",
        finished=daemon.finished,
        released=daemon.released,
    )
