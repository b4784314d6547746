"""The engine: the lifecycle and the public Python API of cueflow, free of HTTP.

The REST API, the CLI and embedding applications all call these methods; nothing else changes
stored state, so whatever the REST API does, Python code does through the same calls. The
engine composes: it builds one :class:`cueflow.services.Services` (store, clock, settings,
metrics, transports, wake-up signals, loops) and hands it to the use-case modules, the
scheduler and the dispatcher, which never see the engine (``docs/architecture.md``). An engine
is made over a store URL, started (it connects and migrates, then runs the scheduler loop, the
lease sweeper and the push-delivery dispatcher as asyncio tasks) and closed::

    engine = cueflow.open_engine("sqlite:///app.db")   # or "sqlite://", "postgresql://..."

    @engine.handler("send-report")                     # runs cues whose payload.task matches
    def send_report(payload: dict) -> str: ...

    @engine.every("5m", owner="me@example.com")        # a handler with its cue, stored at start
    def refresh(payload: dict) -> None: ...

    async with engine:                                 # start(); close() on the way out
        me = await engine.account("me@example.com")
        cue, _ = await engine.create_cue(me, {"name": "report", "transport": "inprocess",
            "schedule": {"type": "recurring", "cron": "0 9 * * *"},
            "payload": {"task": "send-report"}})
        ...

Scripts may call the blocking :meth:`Engine.run` instead; :func:`cueflow.api.mount` serves the
REST API from an existing FastAPI app.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

import cueflow.change_feed as change_feed
import cueflow.claims as claims
import cueflow.echo as echo
import cueflow.health as health
import cueflow.leases as leases
import cueflow.retention as retention
import cueflow.tracing as tracing
import cueflow.workers as workers
from cueflow.authentication import Authenticator
from cueflow.clock import Clock, SystemClock
from cueflow.config import Settings
from cueflow.dispatcher import Dispatcher
from cueflow.engine.accounts import AccountMethods
from cueflow.engine.cues import CueMethods
from cueflow.engine.declared_flows import DeclaredFlow, DeclaredFlowMethods
from cueflow.engine.declared_schedules import DeclaredSchedule, DeclaredScheduleMethods
from cueflow.engine.flows import FlowMethods
from cueflow.engine.runs import RunMethods
from cueflow.errors import PluginError
from cueflow.longpoll import LongPolls
from cueflow.loops import LoopFactory, Loops
from cueflow.metrics import Metrics
from cueflow.plugins import PluginManager
from cueflow.runner import run_until_signalled
from cueflow.scheduler import Scheduler
from cueflow.services import Services, Transports
from cueflow.signals import Signals, WorkSignal
from cueflow.store import Store
from cueflow.transport import HandlerHost, Notifier

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def open_engine(
    url: str = "sqlite:///cueflow.db",
    *,
    clock: Clock | None = None,
    plugins: Iterable[object] = (),
    **settings: Any,
) -> Engine:
    """An engine over the store at ``url``: ``sqlite:///path.db`` (a file, created if missing),
    ``sqlite://`` (in memory, gone when the engine closes) or
    ``postgresql://user:password@host/db``. ``settings`` are :class:`cueflow.config.Settings`
    fields (``handler_concurrency=4`` ...); the rest come from the environment as for
    ``cueflow serve``. Nothing connects until the engine starts (or :meth:`Engine.open`)."""
    return Engine(Settings(database_url=url, **settings), clock=clock, plugins=plugins)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


class Engine(
    AccountMethods,
    CueMethods,
    RunMethods,
    FlowMethods,
    DeclaredFlowMethods,
    DeclaredScheduleMethods,
):
    """Scheduling, claims, leases and outcomes over one store. The lifecycle is here; the
    public API of each concept is a base class (:mod:`cueflow.engine.accounts`,
    :mod:`cueflow.engine.cues`, :mod:`cueflow.engine.runs`, :mod:`cueflow.engine.flows`,
    :mod:`cueflow.engine.declared_flows`, :mod:`cueflow.engine.declared_schedules`)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        plugins: Iterable[object] = (),
    ) -> None:
        settings = settings or Settings()
        self.plugins = PluginManager(settings, extra=plugins)
        registered = self.plugins.transports()
        transports = Transports(registered, self.plugins.notifier(registered))
        factories = self.plugins.stores()
        scheme = _scheme(settings.database_url)
        if scheme not in factories:
            raise PluginError(
                f"no store plugin serves {scheme!r} URLs (installed: {sorted(factories)})"
            )
        self.services = Services(
            settings=settings,
            clock=clock or SystemClock(),
            store=factories[scheme](settings.database_url, settings),
            metrics=Metrics(),
            transports=transports,
            signals=Signals(),
            loops=Loops(settings.loop_stall_seconds),
        )
        """What the use cases, the scheduler, the dispatcher and the loops receive."""
        self._compose()
        self._opened = False
        self.declared_flows: dict[str, DeclaredFlow] = {}
        """The flows declared in code (:meth:`flow`) by name, stored when the engine starts."""
        self.declared_schedules: dict[str, DeclaredSchedule] = {}
        """The schedules declared in code (:meth:`cron`, :meth:`every`, :meth:`at`) by name,
        stored when the engine starts."""

    def _compose(self) -> None:
        """Build the parts that hold the services."""
        services = self.services
        self.auth = Authenticator(services)
        self.stream_slots = change_feed.StreamSlots()
        self.scheduler = Scheduler(services)
        self.dispatcher = Dispatcher(services)
        self.long_polls = LongPolls(
            services.clock,
            services.signals.work.ticket,
            functools.partial(claims.claimable_rows, services),
            services.settings.max_waits_per_key,
            services.signals.draining,
        )
        """The long-polls waiting for claimable work, one shared look per account and task."""
        self.poll_sightings = workers.PollSightings()
        """When this process last wrote each polling worker's row (polls as heartbeats)."""

    # the services, as embedders and tests have always read them --------------------------------
    @property
    def settings(self) -> Settings:
        """This engine's settings."""
        return self.services.settings

    @property
    def clock(self) -> Clock:
        """The clock every part of this engine reads."""
        return self.services.clock

    @property
    def store(self) -> Store:
        """The store this engine runs over."""
        return self.services.store

    @property
    def metrics(self) -> Metrics:
        """This engine's Prometheus metrics (``GET /metrics`` renders its registry)."""
        return self.services.metrics

    @metrics.setter
    def metrics(self, metrics: Metrics) -> None:
        """Record into ``metrics`` instead (say over the process-wide registry); only before
        the engine starts."""
        if self.loops.running():
            raise RuntimeError("set an engine's metrics before it starts")
        self.services = dataclasses.replace(self.services, metrics=metrics)
        self._compose()

    @property
    def transports(self) -> Transports:
        """The installed transports by name."""
        return self.services.transports

    @property
    def notifier(self) -> Notifier | None:
        """Sends failure notices: the one registered through ``cueflow_register_notifiers``."""
        return self.services.transports.notifier

    @property
    def loops(self) -> Loops:
        """The background loops, each reporting progress; a stalled one is restarted."""
        return self.services.loops

    @property
    def work(self) -> WorkSignal:
        """Wakes long-polling workers when work may have become claimable."""
        return self.services.signals.work

    # lifecycle --------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect to the store and migrate it (idempotent); pick up the OpenTelemetry tracer
        provider if the application has set one (:mod:`cueflow.tracing`)."""
        tracing.refresh()
        if not self._opened:
            await self.store.open()
            self._opened = True

    async def close(self) -> None:
        """Stop background work and disconnect."""
        await self.stop()
        if self._opened:
            await self.store.close()
            self._opened = False

    async def start(self) -> None:
        """Open, store the flows and schedules declared in code (:meth:`sync_flows`,
        :meth:`sync_schedules`), start transports, and
        run the background loops (see :mod:`cueflow.loops`): the scheduler, the lease sweeper,
        the store's listener for other nodes' changes, (when a push transport is installed)
        the delivery dispatcher and (when ``retention_days`` is set) the history retention."""
        await self.open()
        if self.loops.running():
            return
        self.services.signals.draining.clear()
        await self.sync_flows()
        await self.sync_schedules()
        for transport in self.transports.values():
            await transport.start(self.services)
        loops: dict[str, LoopFactory] = {
            "scheduler": self.scheduler.run,
            "sweeper": lambda: leases.sweep_forever(self.services),
            "listener": lambda: self.store.listen(self.wake, self.loops.pulse("listener")),
        }
        if self.transports.push():
            loops["dispatcher"] = self.dispatcher.run
        if self.settings.retention_days > 0:
            loops["retention"] = lambda: retention.prune_forever(self.services)
        self.loops.start(loops, self.metrics)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop taking new work and let the work in flight end: the first half of :meth:`stop`,
        which ``cueflow serve`` runs on SIGTERM while it still answers requests. From the first
        moment ``/status`` answers 503 ``draining`` (:meth:`draining`); the background loops
        stop (nothing fires or starts a delivery here); every long-poll is answered now with an
        empty list, and later ones at once; push deliveries and in-process handlers in flight
        get ``timeout`` seconds (default ``graceful_timeout_seconds``) to finish and be
        recorded, and those still running are then cancelled and their executions go back to
        the queue. Calling it again does nothing new; :meth:`start` ends the drain."""
        self.services.signals.draining.set()
        self.long_polls.answer_all()
        await self.loops.stop()
        grace = self.settings.graceful_timeout_seconds if timeout is None else timeout
        await self.dispatcher.drain(grace)

    def draining(self) -> bool:
        """Whether the engine drains or stopped (:meth:`drain`) since it last started."""
        return self.services.signals.draining.is_set()

    async def stop(self) -> None:
        """Drain (:meth:`drain`: deliveries in flight get ``graceful_timeout_seconds``), then
        stop the long-poll watches and the transports."""
        await self.drain()
        await self.long_polls.close()
        for transport in self.transports.values():
            await transport.stop()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def run(self, startup: Callable[[], Awaitable[object]] | None = None) -> None:
        """Blocking, for scripts: start the engine, await ``startup()`` if given (create cues
        there), then run until Ctrl-C or SIGTERM and close cleanly (deliveries in flight get
        ``graceful_timeout_seconds`` to finish, see :meth:`drain`). Inside an asyncio
        application use ``async with engine`` or :meth:`start`/:meth:`close` instead."""
        asyncio.run(run_until_signalled(self, startup))

    # in-process handlers and wake-ups ------------------------------------------------------------
    def wake(self) -> None:
        """Make the scheduler re-read due times now (a cue changed)."""
        self.services.signals.wake()

    def handler(self, name: str) -> Callable[[F], F]:
        """Decorator: run the function for each fire of an ``inprocess`` cue whose
        ``payload["task"]`` is ``name``::

            @engine.handler("send-report")
            async def send_report(payload: dict) -> dict: ...

        Sync or async; it receives the cue's payload (and, if it takes a second positional
        parameter without a default, a :class:`cueflow.HandlerContext` with the
        execution id, cue id and name, task, ``scheduled_for`` and attempt number). Its return
        value becomes the outcome's ``result`` (a string as is, anything else as JSON); an
        exception or a timeout is a failed attempt, retried per the cue's ``retry`` policy. See
        :mod:`cueflow_inprocess`. A name registers once per engine."""
        host = next((t for t in self.transports.values() if isinstance(t, HandlerHost)), None)
        if host is None:
            raise PluginError("no installed transport runs in-process handlers (cueflow_inprocess)")

        def register(function: F) -> F:
            host.add_handler(name, function)
            return function

        return register

    # background work, callable directly (tests move a fake clock, then call these) ---------------
    async def fire_due(self) -> int:
        """Fire every cue due now; returns the number of executions created."""
        return await self.scheduler.fire_due()

    async def sweep(self) -> int:
        """Expire leases and mark unclaimed executions missed; returns how many changed."""
        return await leases.sweep(self.services)

    async def prune(self, older_than: timedelta, *, dry_run: bool = False) -> retention.PruneReport:
        """Delete executions, flow runs and alerts that ended more than ``older_than`` ago, in
        bounded batches (see :mod:`cueflow.retention`); with ``dry_run``, only count them."""
        return await retention.prune(self.services, older_than, dry_run=dry_run)

    async def deliver_due(self) -> int:
        """Hand every due push execution (new, retry due, or lease expired) to its transport and
        wait until all results are recorded; returns how many delivery attempts were made."""
        return await self.dispatcher.deliver_due()

    # echo receiver, health -----------------------------------------------------------------------
    async def store_echo(
        self, token: str, body: bytes, headers: Iterable[tuple[str, str]]
    ) -> dict[str, bool]:
        """Keep a JSON body and its headers under ``token`` for a few minutes."""
        return await echo.store_echo(self.services, token, body, headers)

    async def read_echo(self, token: str) -> dict[str, Any]:
        """What was stored under ``token``: ``{"status": "waiting"}`` or ``delivered``."""
        return await echo.read_echo(self.services, token)

    async def health(self) -> dict[str, Any]:
        """Database and scheduler state, and queue depth."""
        return await health.health(self.services)

    async def status(self) -> dict[str, str]:
        """``healthy``, ``degraded`` or (database unreachable) ``down``."""
        return await health.status(self.services)

    def info(self) -> dict[str, Any]:
        """The server's version and authentication model."""
        return health.info()

    def scheduler_running(self) -> bool:
        """Whether this engine's scheduler loop runs (it was started and has not crashed)."""
        return "scheduler" in self.loops.running()
