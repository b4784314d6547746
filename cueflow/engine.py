"""The engine: every use case of cueflow, free of HTTP.

The REST API, the CLI and embedding applications all call these methods; nothing else changes
stored state. An engine is opened over a store URL, optionally started (scheduler loop, lease
sweeper and push-delivery dispatcher as asyncio tasks) and closed::

    engine = Engine(Settings(database_url="sqlite:///cueflow.db"))
    await engine.start()
    ...
    await engine.stop()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from cueflow import accounts, alerts, claims, cues, executions, outcomes, signing_secrets, workers
from cueflow.accounts import Authenticator, Principal
from cueflow.clock import Clock, SystemClock
from cueflow.config import Settings
from cueflow.cues import CueValidationError
from cueflow.delivery import Dispatcher
from cueflow.errors import PluginError
from cueflow.fire import Scheduler
from cueflow.plugins import PluginManager
from cueflow.schemas import ClaimRequest, CueCreate, CueUpdate, OutcomeReport, RegisterRequest
from cueflow.store import ExecutionFilter, ExecutionPage, Row, Store
from cueflow.transport import Notifier, PushTransport, Transport

log = logging.getLogger(__name__)


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].split("+", 1)[0].lower()


class Engine:
    """Scheduling, claims, leases and outcomes over one store."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        plugins: Iterable[object] = (),
    ) -> None:
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self.plugins = PluginManager(self.settings, extra=plugins)
        self.transports: dict[str, Transport] = self.plugins.transports()
        factories = self.plugins.stores()
        scheme = _scheme(self.settings.database_url)
        if scheme not in factories:
            raise PluginError(
                f"no store plugin serves {scheme!r} URLs (installed: {sorted(factories)})"
            )
        self.store: Store = factories[scheme](self.settings.database_url, self.settings)
        self.auth = Authenticator(self)
        self.scheduler = Scheduler(self)
        self.dispatcher = Dispatcher(self)
        self.notifier: Notifier | None = next(
            (t for t in self.transports.values() if callable(getattr(t, "notify", None))), None
        )
        """Sends failure notices: the first transport that has ``notify`` (the webhook one)."""
        self._tasks: list[asyncio.Task[None]] = []
        self._opened = False

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
        """Open, start transports, and run the scheduler loop, the lease sweeper and (when a push
        transport is installed) the delivery dispatcher."""
        await self.open()
        if self._tasks:
            return
        for transport in self.transports.values():
            await transport.start(self)
        await self.store.listen(self.wake)
        self._tasks = [
            asyncio.create_task(self.scheduler.run(), name="cueflow-scheduler"),
            asyncio.create_task(self._sweep_forever(), name="cueflow-sweeper"),
        ]
        if self.push_transports():
            self._tasks.append(
                asyncio.create_task(self.dispatcher.run(), name="cueflow-dispatcher")
            )

    async def stop(self) -> None:
        """Cancel background tasks, finish or cancel deliveries in flight, stop transports."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # stop() itself is being cancelled: do not swallow that
        await self.dispatcher.stop()
        for transport in self.transports.values():
            await transport.stop()

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _sweep_forever(self) -> None:
        interval = self.settings.sweep_interval_seconds
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("lease sweep failed")
            await self.clock.sleep_until(
                self.clock.now() + timedelta(seconds=interval), asyncio.Event()
            )

    # helpers for the use-case modules ----------------------------------------------------------
    def wake(self) -> None:
        """Make the scheduler re-read due times now (a cue changed)."""
        self.scheduler.wakeup.set()

    def transport(self, name: str) -> Transport:
        """The transport called ``name``, or a 422 naming the available ones."""
        found = self.transports.get(name)
        if found is None:
            names = " or ".join(f"'{n}'" for n in sorted(self.transports))
            raise CueValidationError(f"body: Value error, transport must be {names}")
        return found

    def is_pull(self, transport: str) -> bool:
        """Whether executions of ``transport`` wait for workers (unknown transports do)."""
        found = self.transports.get(transport)
        return found is None or found.pull

    def pull_transports(self) -> list[str]:
        """Names of the transports whose executions workers claim."""
        return [name for name, t in self.transports.items() if t.pull]

    def push_transports(self) -> dict[str, PushTransport]:
        """The transports the dispatcher delivers to, by name."""
        return {name: cast(PushTransport, t) for name, t in self.transports.items() if not t.pull}

    def seconds_ago(self, seconds: float) -> datetime:
        """``now - seconds`` on the engine clock."""
        return self.clock.now() - timedelta(seconds=seconds)

    def executions_created(self, rows: Sequence[Row]) -> None:
        """Called after the scheduler inserted executions: wakes the delivery dispatcher."""
        if rows:
            self.dispatcher.wakeup.set()

    # accounts -----------------------------------------------------------------------------------
    async def register(self, email: str) -> dict[str, str]:
        """Create a user; returns ``{"api_key", "email"}``."""
        return await accounts.register(self, RegisterRequest(email=email))

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller behind an ``Authorization: Bearer cue_sk_...`` header value."""
        return await self.auth.authenticate(authorization)

    async def principal(self, api_key: str) -> Principal:
        """The caller owning ``api_key`` (for embedding code that holds a key)."""
        return await self.auth.authenticate(f"Bearer {api_key}")

    async def webhook_secret(self, user: Principal) -> str:
        """The caller's webhook signing secret (``whsec_...``)."""
        return await signing_secrets.webhook_secret(self, user)

    async def rotate_webhook_secret(self, user: Principal) -> str:
        """Replace the caller's webhook secret; the next delivery is signed with the new one."""
        return await signing_secrets.rotate_webhook_secret(self, user)

    async def alert_webhook_secret(self, user: Principal) -> str:
        """The caller's alert webhook secret, created on first call."""
        return await signing_secrets.alert_webhook_secret(self, user)

    async def rotate_alert_webhook_secret(self, user: Principal) -> str:
        """Replace the caller's alert webhook secret."""
        return await signing_secrets.rotate_alert_webhook_secret(self, user)

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
        return await alerts.list_alerts(self, user, alert_type, since, limit, offset)

    # cues ---------------------------------------------------------------------------------------
    async def create_cue(
        self, user: Principal, spec: CueCreate | dict[str, Any]
    ) -> tuple[Row, str | None]:
        """Create a cue; returns it and a warning (no live worker for a worker cue)."""
        if isinstance(spec, dict):
            spec = CueCreate.model_validate(spec)
        return await cues.create_cue(self, user, spec)

    async def list_cues(
        self, user: Principal, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Row], int]:
        """A page of the caller's cues, newest first, and the total."""
        async with self.store.tx() as tx:
            return await tx.list_cues(user.user_id, status, limit, offset)

    async def get_cue(self, user: Principal, cue_id: str) -> Row:
        """One cue, or 404."""
        return await cues.get_cue(self, user, cue_id)

    async def update_cue(
        self, user: Principal, cue_id: str, patch: CueUpdate | dict[str, Any]
    ) -> Row:
        """Change a cue (PATCH semantics)."""
        if isinstance(patch, dict):
            patch = CueUpdate.model_validate(patch)
        return await cues.update_cue(self, user, cue_id, patch)

    async def pause_cue(self, user: Principal, cue_id: str) -> Row:
        """Pause a cue: it stops firing until resumed."""
        return await self.update_cue(user, cue_id, CueUpdate(status="paused"))

    async def resume_cue(self, user: Principal, cue_id: str) -> Row:
        """Resume a cue: its next run is computed from now."""
        return await self.update_cue(user, cue_id, CueUpdate(status="active"))

    async def delete_cue(self, user: Principal, cue_id: str) -> None:
        """Delete a cue and its executions."""
        await cues.delete_cue(self, user, cue_id)

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
            self, user, where or ExecutionFilter(), limit, offset
        )

    async def get_execution(self, user: Principal, execution_id: str) -> Row:
        """One execution, or 404."""
        return await executions.get_execution(self, user, execution_id)

    async def cue_executions(
        self, user: Principal, cue_id: str, *, limit: int = 10, offset: int = 0
    ) -> tuple[list[Row], int]:
        """A page of one cue's executions and their total."""
        return await executions.cue_executions(self, user, cue_id, limit, offset)

    async def claimable(self, user: Principal, task: str | None = None) -> list[Row]:
        """Executions ready to be claimed by the caller's workers."""
        return await claims.claimable(self, user, task)

    async def claim(
        self, user: Principal, worker_id: str, execution_id: str | None = None
    ) -> dict[str, Any]:
        """Claim one execution (or the oldest due one) with a lease."""
        ClaimRequest(worker_id=worker_id)
        return await claims.claim(self, user, worker_id, execution_id)

    async def heartbeat_execution(
        self, user: Principal, execution_id: str, worker_id: str | None = None
    ) -> dict[str, Any]:
        """Extend the lease of a claimed execution."""
        return await claims.heartbeat(self, user, execution_id, worker_id)

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
        return await outcomes.record_outcome(self, user, execution_id, report, worker_id)

    # workers ------------------------------------------------------------------------------------
    async def worker_heartbeat(
        self, user: Principal, worker_id: str, handlers: list[str] | None = None
    ) -> dict[str, Any]:
        """Register or refresh a worker."""
        return await workers.heartbeat(self, user, worker_id, handlers)

    async def list_workers(self, user: Principal) -> list[dict[str, Any]]:
        """The caller's workers and their liveness."""
        return await workers.list_workers(self, user)

    async def delete_worker(self, user: Principal, worker_id: str) -> None:
        """Forget a worker."""
        await workers.delete_worker(self, user, worker_id)

    # background work, callable directly (tests move a fake clock, then call these) ---------------
    async def fire_due(self) -> int:
        """Fire every cue due now; returns the number of executions created."""
        return await self.scheduler.fire_due()

    async def sweep(self) -> int:
        """Expire leases and mark unclaimed executions missed; returns how many changed."""
        return await claims.sweep(self)

    async def deliver_due(self) -> int:
        """Hand every due push execution (new, retry due, or lease expired) to its transport and
        wait until all results are recorded; returns how many delivery attempts were made."""
        return await self.dispatcher.deliver_due()
