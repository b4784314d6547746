"""Prometheus metrics: every metric cueflow exports, defined in one place.

Each engine owns a :class:`Metrics` with its own ``CollectorRegistry`` (not the process-wide
default), so several embedded engines, or the tests, never share or collide on series. The
engine's modules record events with one cheap call at the place they happen (a counter
increment, a histogram observation: no extra database query); the queue figures are read at
scrape time, by :func:`cueflow.scrape.exposition`, which ``GET /metrics`` serves;
``docs/operations.md`` lists every metric with its labels and meaning.

Label values are bounded sets (transport names, results, route templates, status codes), never
ids, so the number of series stays small however many cues and executions there are.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from cueflow.records import Cue, DueDelivery, FiredRun
from cueflow.states import Status
from cueflow.store import FirePlan
from cueflow.version import __version__

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format's content type: version 0.0.4, which every Prometheus
server reads (the series names are plain ASCII, so the text is the same in later versions)."""

LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
"""Scheduler lag buckets (seconds): sub-second when healthy, minutes to an hour after an
outage."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
"""Request and delivery duration buckets (seconds), up to the default webhook timeout."""
QUEUE_FIGURES = ("pending_outbox", "pending_worker_claims", "pending_retries", "stale_executions")
"""The ``queue`` label values of ``cueflow_queue_depth`` (the figures ``GET /health`` shows)."""
STALE_EXECUTION_SECONDS = 300
"""A ``delivering`` execution untouched this long counts as ``stale_executions``."""
DATABASE_TIMEOUT_SECONDS = 5.0
"""Longest a scrape waits for the queue figures before reporting the database down."""


_handoff_since: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "cueflow_handoff_since", default=None
)
"""When the step end being handed off was accepted (``perf_counter``)."""


@contextmanager
def handoff_clock(*, restart: bool) -> Iterator[None]:
    """Time the hand-off run inside the block from now (``restart``, or when no outer block
    started it) for :meth:`Metrics.observe_handoff`."""
    since = _handoff_since.get()
    token = _handoff_since.set(time.perf_counter() if restart or since is None else since)
    try:
        yield
    finally:
        _handoff_since.reset(token)


class Metrics:
    """The metrics of one services, registered in :attr:`registry`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        """The registry ``GET /metrics`` renders. To put cueflow's series into an application's
        registry instead, set ``engine.metrics = Metrics(registry)`` before the engine starts
        and before :func:`cueflow.api.create_app`."""
        r = self.registry
        self.fires = Counter(
            "cueflow_fires",
            "Executions the scheduler created for due cues (status pending, or missed when a "
            "misfire policy or a quota skipped the run).",
            ["transport", "status"],
            registry=r,
        )
        self.scheduler_lag = Histogram(
            "cueflow_scheduler_lag_seconds",
            "Fire time minus scheduled_for of each pending execution the scheduler created.",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.claims = Counter(
            "cueflow_claims",
            "Executions claimed by workers (pull transports).",
            registry=r,
        )
        self.claim_conflicts = Counter(
            "cueflow_claim_conflicts",
            "Claims refused with 409 claim_failed: mode=execution when a named execution was "
            "taken, not due or not claimable; mode=next when claim-next found nothing to claim.",
            ["mode"],
            registry=r,
        )
        self.lease_expiries = Counter(
            "cueflow_lease_expiries",
            "Leases that ended without a result: kind=claim (a worker's claim ran out), "
            "stale (its registered worker went silent), delivery (a push delivery's "
            "lease ran out, e.g. the process died mid-send).",
            ["kind"],
            registry=r,
        )
        self.deliveries = Counter(
            "cueflow_deliveries",
            "Push delivery attempts recorded, by transport and result (success or failure).",
            ["transport", "result"],
            registry=r,
        )
        self.retries = Counter(
            "cueflow_retries",
            "Failed push delivery attempts that scheduled a retry (the rest of the failures "
            "were the last attempt: the execution failed).",
            ["transport"],
            registry=r,
        )
        self.delivery_duration = Histogram(
            "cueflow_delivery_duration_seconds",
            "Time one push delivery attempt took; transport=webhook is the webhook latency "
            "(address check, request and response).",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outcomes = Counter(
            "cueflow_outcomes",
            "Outcomes reported through the API, by transport and success (true or false).",
            ["transport", "success"],
            registry=r,
        )
        self.http_duration = Histogram(
            "cueflow_http_request_duration_seconds",
            "HTTP requests by method, route template (unmatched for unknown paths) and status.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "cueflow_queue_depth",
            "Executions waiting, read at scrape time: pending_outbox (pending push "
            "deliveries), pending_worker_claims (pending pull executions), pending_retries "
            "(retrying or retry_ready), stale_executions (delivering, untouched for 5 min).",
            ["queue"],
            registry=r,
        )
        self.overdue = Gauge(
            "cueflow_scheduler_overdue_seconds",
            "How late the most overdue active cue is (now minus the earliest next_run, 0 when "
            "nothing is due), read at scrape time: a lasting value means the scheduler is "
            "behind or not running.",
            registry=r,
        )
        self.up = Gauge(
            "cueflow_database_up",
            "1 when the last scrape could read the queue figures from the database, else 0.",
            registry=r,
        )
        self.loop_lag = Gauge(
            "cueflow_loop_lag_seconds",
            "Seconds since each background loop (scheduler, sweeper, dispatcher, listener) last "
            "made progress: about its sleep interval when healthy, growing while it is stuck.",
            ["loop"],
            registry=r,
        )
        self.loop_restarts = Counter(
            "cueflow_loop_restarts",
            "Background loops restarted because they stalled (no progress for "
            "CUEFLOW_LOOP_STALL_SECONDS) or died.",
            ["loop"],
            registry=r,
        )
        self.flow_runs_started = Counter(
            "cueflow_flow_runs_started",
            "Flow runs started, by trigger: api (a start request) or schedule (the flow's "
            "schedule fired).",
            ["trigger"],
            registry=r,
        )
        self.flow_runs_finished = Counter(
            "cueflow_flow_runs_finished",
            "Flow runs that ended, by status (succeeded, failed, cancelled).",
            ["status"],
            registry=r,
        )
        self.flow_handoff = Histogram(
            "cueflow_flow_handoff_seconds",
            "Step hand-off latency: from a parent step's accepted end (its outcome, delivery "
            "result or event, in that transaction) to its child step's first execution "
            "being created; it is claimable when that transaction commits.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        Info("cueflow_build", "The cueflow version serving these metrics.", registry=r).info(
            {"version": __version__}
        )
        _add_runtime_collectors(r)

    def delivered(self, transport: str, ok: bool, run: DueDelivery, seconds: float) -> None:
        """Count one push delivery attempt of the execution claimed as ``run`` (a failure
        with attempts left also counts a retry) and observe how long it took."""
        self.delivery_duration.labels(transport).observe(seconds)
        self.deliveries.labels(transport, "success" if ok else "failure").inc()
        if not ok and run.attempts < run.retry_max_attempts:
            self.retries.labels(transport).inc()

    def observe_handoff(self) -> None:
        """Observe a child step's hand-off latency: the time since the enclosing
        :func:`handoff_clock` started (nothing outside one: a run's root steps)."""
        since = _handoff_since.get()
        if since is not None:
            self.flow_handoff.observe(time.perf_counter() - since)

    def watch_fires(self, plan: Callable[[Cue], FirePlan]) -> FireWatch:
        """Wrap the scheduler's fire plan so that :meth:`FireWatch.record` can count the
        executions a batch actually inserted (a fire key that existed already is not counted)."""
        return FireWatch(self, plan)


def _add_runtime_collectors(registry: CollectorRegistry) -> None:
    """Register prometheus-client's ``process_*``, ``python_info`` and ``python_gc_*``
    collectors: they only register themselves in the process-wide default registry, which
    cueflow does not serve. A registry that has them already (the default one, given as
    ``Metrics(REGISTRY)``) keeps its own."""
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        try:
            collector(registry=registry)
        except ValueError:  # "Duplicated timeseries": this registry has that collector
            continue


class FireWatch:
    """A fire plan that remembers what it planned, to record what was inserted."""

    def __init__(self, metrics: Metrics, plan: Callable[[Cue], FirePlan]) -> None:
        self.metrics = metrics
        self.plan = plan
        self.planned: dict[str, dict[str, object]] = {}

    def __call__(self, cue: Cue) -> FirePlan:
        """Plan ``cue``'s fire, remembering each planned execution by id."""
        fired = self.plan(cue)
        for execution in fired.executions:
            self.planned[execution["id"]] = execution
        return fired

    def record(self, inserted: Iterable[FiredRun], now: datetime) -> None:
        """Count the inserted executions and observe the lag of the pending ones."""
        for run in inserted:
            planned = self.planned.get(run.id)
            if planned is None:
                continue
            status = str(run.status)
            self.metrics.fires.labels(str(planned["transport"]), status).inc()
            scheduled_for = planned["scheduled_for"]
            if status == Status.PENDING and isinstance(scheduled_for, datetime):
                lag = (now - scheduled_for).total_seconds()
                self.metrics.scheduler_lag.observe(max(lag, 0.0))
