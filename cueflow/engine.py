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
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import cueflow.accounts as accounts
import cueflow.alerts as alerts
import cueflow.claims as claims
import cueflow.cues as cues
import cueflow.echo as echo
import cueflow.executions as executions
import cueflow.health as health
import cueflow.manual_runs as manual_runs
import cueflow.outcomes as outcomes
import cueflow.signing_secrets as signing_secrets
import cueflow.usage as usage
import cueflow.verification as verification
import cueflow.workers as workers
from cueflow.authentication import Authenticator, Principal
from cueflow.clock import Clock, SystemClock
from cueflow.config import Settings
from cueflow.dispatcher import Dispatcher
from cueflow.engine_flows import FlowsAPI
from cueflow.errors import CueflowError, PluginError
from cueflow.longpoll import LongPolls
from cueflow.loops import LoopFactory, Loops
from cueflow.metrics import Metrics
from cueflow.plugins import PluginManager
from cueflow.runner import run_until_signalled
from cueflow.scheduler import Scheduler
from cueflow.schemas import ClaimRequest, CueCreate, CueUpdate, OutcomeReport, RegisterRequest
from cueflow.services import Services, Transports
from cueflow.signals import Signals, WorkSignal
from cueflow.states import CueStatus
from cueflow.store import ExecutionFilter, ExecutionPage, Row, Store
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


class Engine(FlowsAPI):
    """Scheduling, claims, leases and outcomes over one store."""

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

    def _compose(self) -> None:
        """Build the parts that hold the services."""
        services = self.services
        self.auth = Authenticator(services)
        self.scheduler = Scheduler(services)
        self.dispatcher = Dispatcher(services)
        self.long_polls = LongPolls(
            services.clock,
            services.signals.work.ticket,
            functools.partial(claims.claimable_rows, services),
            services.settings.max_waits_per_key,
        )
        """The long-polls waiting for claimable work, one shared look per account and task."""

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
        """Connect to the store and migrate it (idempotent)."""
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
        """Open, start transports, and run the background loops (see :mod:`cueflow.loops`): the
        scheduler, the lease sweeper, the store's listener for other nodes' changes and (when a
        push transport is installed) the delivery dispatcher."""
        await self.open()
        if self.loops.running():
            return
        for transport in self.transports.values():
            await transport.start(self.services)
        loops: dict[str, LoopFactory] = {
            "scheduler": self.scheduler.run,
            "sweeper": lambda: claims.sweep_forever(self.services),
            "listener": lambda: self.store.listen(self.wake, self.loops.pulse("listener")),
        }
        if self.transports.push():
            loops["dispatcher"] = self.dispatcher.run
        self.loops.start(loops, self.metrics)

    async def stop(self) -> None:
        """Cancel background tasks, finish or cancel deliveries in flight, stop transports."""
        await self.loops.stop()
        await self.long_polls.close()
        await self.dispatcher.stop()
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
        a few seconds to finish). Inside an asyncio application use ``async with engine`` or
        :meth:`start`/:meth:`close` instead."""
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

    # accounts -----------------------------------------------------------------------------------
    async def register(self, email: str) -> dict[str, str]:
        """Create a user; returns ``{"api_key", "email"}``."""
        return await accounts.register(self.services, RegisterRequest(email=email))

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer cue_sk_...`` header value."""
        return await self.auth.authenticate(authorization)

    async def principal(self, api_key: str) -> Principal:
        """The caller owning ``api_key`` (for embedding code that holds a key)."""
        return await self.auth.authenticate(f"Bearer {api_key}")

    async def account(self, email: str) -> Principal:
        """The account registered with ``email``, created if there is none: how Python code
        gets a principal without handling API keys (none is returned or logged). Cues created
        for it are listed over REST to whoever holds a key of the same account."""
        return await accounts.account(self.services, email)

    async def webhook_secret(self, user: Principal) -> str:
        """The caller's webhook signing secret (``whsec_...``)."""
        return await signing_secrets.webhook_secret(self.services, user)

    async def rotate_webhook_secret(self, user: Principal) -> str:
        """Replace the caller's webhook secret; the next delivery is signed with the new one."""
        return await signing_secrets.rotate_webhook_secret(self.services, user)

    async def alert_webhook_secret(self, user: Principal) -> str:
        """The caller's alert webhook secret, created on first call."""
        return await signing_secrets.alert_webhook_secret(self.services, user)

    async def rotate_alert_webhook_secret(self, user: Principal) -> str:
        """Replace the caller's alert webhook secret."""
        return await signing_secrets.rotate_alert_webhook_secret(self.services, user)

    async def list_alerts(
        self,
        user: Principal,
        *,
        alert_type: str | None = None,
        since: datetime | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Row], int]:
        """A page of the caller's alerts, newest first, and the total."""
        return await alerts.list_alerts(self.services, user, alert_type, since, limit, offset)

    # cues ---------------------------------------------------------------------------------------
    async def create_cue(
        self, user: Principal, spec: CueCreate | dict[str, Any]
    ) -> tuple[Row, str | None]:
        """Create a cue from a ``POST /v1/cues`` body (a dict or :class:`CueCreate`); returns
        the stored cue and a warning (no live worker for a worker cue) or ``None``. Invalid
        input raises :class:`cueflow.errors.CueflowError` (a dict that fails validation:
        :class:`pydantic.ValidationError`)."""
        if isinstance(spec, dict):
            spec = CueCreate.model_validate(spec)
        return await cues.create_cue(self.services, user, spec)

    async def list_cues(
        self, user: Principal, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Row], int]:
        """A page of the caller's cues (of ``status``: ``active``, ``paused``, ``completed``,
        ``failed``), newest first, and the total."""
        async with self.store.tx() as tx:
            return await tx.list_cues(user.user_id, status, limit, offset)

    async def get_cue(self, user: Principal, cue_id: str) -> Row:
        """One cue, or 404."""
        return await cues.get_cue(self.services, user, cue_id)

    async def update_cue(
        self, user: Principal, cue_id: str, patch: CueUpdate | dict[str, Any]
    ) -> Row:
        """Change a cue (PATCH semantics)."""
        if isinstance(patch, dict):
            patch = CueUpdate.model_validate(patch)
        return await cues.update_cue(self.services, user, cue_id, patch)

    async def pause_cue(self, user: Principal, cue_id: str) -> Row:
        """Pause a cue: it stops firing until resumed."""
        return await self.update_cue(user, cue_id, CueUpdate(status=CueStatus.PAUSED.value))

    async def resume_cue(self, user: Principal, cue_id: str) -> Row:
        """Resume a cue: its next run is computed from now."""
        return await self.update_cue(user, cue_id, CueUpdate(status=CueStatus.ACTIVE.value))

    async def delete_cue(self, user: Principal, cue_id: str) -> None:
        """Delete a cue and its executions."""
        await cues.delete_cue(self.services, user, cue_id)

    # executions ---------------------------------------------------------------------------------
    async def list_executions(
        self,
        user: Principal,
        where: ExecutionFilter | None = None,
        *,
        limit: int = 20,
        offset: int = 0,
    ) -> ExecutionPage:
        """A page of the caller's executions, newest first."""
        return await executions.list_executions(
            self.services, user, where or ExecutionFilter(), limit, offset
        )

    async def get_execution(self, user: Principal, execution_id: str) -> Row:
        """One execution, or 404."""
        return await executions.get_execution(self.services, user, execution_id)

    async def cue_executions(
        self, user: Principal, cue_id: str, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[Row], int]:
        """A page of one cue's executions and their total."""
        return await executions.cue_executions(self.services, user, cue_id, limit, offset)

    async def claimable(
        self,
        user: Principal,
        task: str | None = None,
        *,
        limit: int = claims.CLAIMABLE_LIMIT,
        wait: float = 0,
    ) -> list[Row]:
        """Executions ready to be claimed by the caller's workers, oldest first; with ``wait``
        seconds an empty answer waits for work to arrive (long-poll)."""
        return await claims.claimable(self.services, self.long_polls, user, task, limit, wait)

    async def claim_batch(
        self,
        user: Principal,
        worker_id: str,
        *,
        limit: int = 10,
        execution_ids: Sequence[str] | None = None,
        task: str | None = None,
        wait: float = 0,
    ) -> claims.ClaimBatch:
        """Claim several executions at once (the given ids, or up to ``limit`` of the oldest
        due), each with its own lease, exactly as single claims would."""
        ClaimRequest(worker_id=worker_id)
        return await claims.claim_batch(
            self.services,
            self.long_polls,
            user,
            worker_id,
            limit=limit,
            execution_ids=execution_ids,
            task=task,
            wait=wait,
        )

    async def claim(
        self, user: Principal, worker_id: str, execution_id: str | None = None
    ) -> dict[str, Any]:
        """Claim one execution (or the oldest due one) with a lease."""
        ClaimRequest(worker_id=worker_id)
        return await claims.claim(self.services, user, worker_id, execution_id)

    async def heartbeat_execution(
        self, user: Principal, execution_id: str, worker_id: str | None = None
    ) -> dict[str, Any]:
        """Extend the lease of a claimed execution."""
        return await claims.heartbeat(self.services, user, execution_id, worker_id)

    async def report_outcome(
        self,
        user: Principal,
        execution_id: str,
        report: OutcomeReport | dict[str, Any],
        worker_id: str | None = None,
    ) -> dict[str, Any]:
        """Record an execution's outcome (once)."""
        if isinstance(report, dict):
            report = OutcomeReport.model_validate(report)
        return await outcomes.record_outcome(self.services, user, execution_id, report, worker_id)

    async def report_outcomes(
        self,
        user: Principal,
        reports: Sequence[tuple[str, OutcomeReport | dict[str, Any]]],
        worker_id: str | None = None,
    ) -> list[dict[str, Any] | CueflowError]:
        """Record several outcomes in one transaction, ``(execution_id, report)`` each; per item
        the single outcome's answer, or the error it would have raised (404, 409, 400)."""
        parsed = [
            (eid, OutcomeReport.model_validate(r) if isinstance(r, dict) else r)
            for eid, r in reports
        ]
        return await outcomes.record_outcomes(self.services, user, parsed, worker_id)

    async def release_execution(
        self,
        user: Principal,
        execution_id: str,
        worker_id: str,
        reason: str | None = None,
        *,
        retry_after_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Give a claimed execution back unfinished (cueflow extension): back to the queue
        with the claim counted, claimable again after ``retry_after_seconds`` (default: the
        cue's retry backoff), or failed once its attempts are used up."""
        return await claims.release(
            self.services, user, execution_id, worker_id, reason, retry_after_seconds
        )

    # workers ------------------------------------------------------------------------------------
    async def worker_heartbeat(
        self, user: Principal, worker_id: str, handlers: list[str] | None = None
    ) -> dict[str, Any]:
        """Register or refresh a worker."""
        return await workers.heartbeat(self.services, user, worker_id, handlers)

    async def list_workers(self, user: Principal) -> list[dict[str, Any]]:
        """The caller's workers and their liveness."""
        return await workers.list_workers(self.services, user)

    async def delete_worker(self, user: Principal, worker_id: str) -> None:
        """Forget a worker."""
        await workers.delete_worker(self.services, user, worker_id)

    # background work, callable directly (tests move a fake clock, then call these) ---------------
    async def fire_due(self) -> int:
        """Fire every cue due now; returns the number of executions created."""
        return await self.scheduler.fire_due()

    async def sweep(self) -> int:
        """Expire leases and mark unclaimed executions missed; returns how many changed."""
        return await claims.sweep(self.services)

    async def deliver_due(self) -> int:
        """Hand every due push execution (new, retry due, or lease expired) to its transport and
        wait until all results are recorded; returns how many delivery attempts were made."""
        return await self.dispatcher.deliver_due()

    # runs started by hand ------------------------------------------------------------------------
    async def fire_cue(
        self,
        user: Principal,
        cue_id: str,
        *,
        send_at: datetime | None = None,
        payload_override: dict[str, Any] | None = None,
    ) -> Row:
        """Fire a cue now, or at ``send_at`` if that is in the future (any cue status), with
        ``payload_override`` replacing the cue's payload for that run; returns the new
        ``pending`` execution (``triggered_by`` ``manual_fire``)."""
        return await manual_runs.fire_cue(self.services, user, cue_id, send_at, payload_override)

    async def replay_execution(self, user: Principal, execution_id: str) -> Row:
        """Run a finished execution's cue again now; returns the new execution (``triggered_by``
        ``replay``)."""
        return await manual_runs.replay_execution(self.services, user, execution_id)

    # verification --------------------------------------------------------------------------------
    async def verify_outcome(
        self, user: Principal, execution_id: str, *, valid: bool = True, reason: str | None = None
    ) -> dict[str, Any]:
        """Confirm (``valid``) or reject an execution's reported outcome."""
        return await verification.verify(self.services, user, execution_id, valid, reason)

    async def mark_verification_pending(self, user: Principal, execution_id: str) -> dict[str, Any]:
        """Put an execution's recorded outcome back to ``verification_pending``."""
        return await verification.mark_pending(self.services, user, execution_id)

    async def append_evidence(
        self, user: Principal, execution_id: str, evidence: dict[str, Any]
    ) -> dict[str, Any]:
        """Add evidence (``external_id``, ``result_url``, ``summary`` ...) to a recorded
        outcome."""
        return await verification.append_evidence(self.services, user, execution_id, evidence)

    # the caller's account ------------------------------------------------------------------------
    async def me(self, user: Principal) -> dict[str, Any]:
        """The caller's account: email, plan, counts and limits, key prefix, slug."""
        return await accounts.me(self.services, user)

    async def update_me(
        self, user: Principal, update: accounts.AccountUpdate | dict[str, Any]
    ) -> dict[str, str]:
        """Change the caller's ``email`` and/or ``alert_webhook_url`` (``""`` clears it)."""
        if isinstance(update, dict):
            update = accounts.AccountUpdate.model_validate(update)
        return await accounts.update_me(self.services, self.auth, user, update)

    async def regenerate_api_key(self, user: Principal) -> str:
        """Replace the caller's API key; the old one answers 401 ``key_rotated`` from now on."""
        return await accounts.regenerate_key(self.services, self.auth, user)

    async def reveal_api_key(self, user: Principal) -> dict[str, Any]:
        """What ``GET /v1/auth/key`` shows: only the key's prefix (keys are stored hashed)."""
        return await accounts.reveal_key(self.services, user)

    async def usage(self, user: Principal, *, rate_used: int = 0) -> dict[str, Any]:
        """The caller's usage this calendar month against the configured limits."""
        return await usage.usage(self.services, user, rate_used)

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
