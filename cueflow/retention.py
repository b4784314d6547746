"""History retention: deleting executions, flow runs and alerts that ended long ago.

Every fire leaves an execution row, so a busy cue grows the tables without end. With
``retention_days`` set, the engine's ``retention`` loop (:func:`prune_forever`) deletes, every
``retention_interval_seconds``, what :func:`prune` lets go:

* executions in a terminal status (:data:`cueflow.states.TERMINAL`) last changed before the
  cut-off, except each cue's :data:`KEEP_LATEST` newest finished runs (the consecutive-failure
  alert counts back through them) and except flow steps' executions, which go with their run;
* flow runs that ended before the cut-off and have no open execution, with their steps and
  their executions;
* alerts created before the cut-off;
* fire idempotency keys past their window (or older than the cut-off) and expired rate-limit
  starts.

With a monthly execution limit (``monthly_execution_limit``), executions of the current month
are kept whatever the cut-off: the limit counts them.

Deletes run in batches of at most ``retention_batch`` rows, each in a transaction of its own
under a cluster-wide lock taken without waiting
(:meth:`cueflow.store.RetentionStore.try_lock_retention`): at any moment one node prunes, and
a node that finds the lock taken stops its cycle. The loop pauses between batches
:data:`PAUSE_FACTOR` times as long as the batch took (at most :data:`MAX_PAUSE_SECONDS`), so
pruning holds the database a quarter of the time at most and claims and outcomes on a
single-writer store get their turn.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import cueflow.alert_rules as alert_rules
from cueflow.errors import DatabaseUnavailable
from cueflow.manual_runs import IDEMPOTENCY_WINDOW
from cueflow.quotas import month_start
from cueflow.states import RUN_TERMINAL, TERMINAL, Status
from cueflow.store import PruneCut, StoreTx

if TYPE_CHECKING:
    from cueflow.pulse import Pulse
    from cueflow.services import Services

log = logging.getLogger(__name__)

KEEP_LATEST = alert_rules.CONSECUTIVE_FAILURE_THRESHOLD
"""Newest finished runs of each cue kept whatever their age: enough for the consecutive
failure alert to see a streak."""

PAUSE_FACTOR = 3.0
"""The retention loop rests this many times as long as a batch took before the next one."""
MAX_PAUSE_SECONDS = 2.0

KINDS = ("executions", "flow_runs", "flow_steps", "alerts", "fire_keys", "rate_limit_starts")
"""What a prune deletes, in the order of its report."""

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dhms])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m`` or ``45s`` as a duration; ``ValueError`` otherwise."""
    found = _AGE.match(text.lower())
    if found is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30d, 12h, 90m)")
    age = timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    if age <= timedelta(0):
        raise ValueError("the age must be more than zero")
    return age


@dataclass
class PruneReport:
    """What one prune did (or, dry, would do)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    batches: int = 0
    """Transactions that deleted (none on a dry run)."""
    largest_batch: int = 0
    """Most rows one transaction deleted."""
    complete: bool = True
    """``False`` when another node held the retention lock and this prune stopped early."""
    seconds: float = 0.0

    @property
    def deleted(self) -> int:
        """Rows deleted (or that would be), all kinds together."""
        return sum(self.counts.values())


def _cut(services: Services, now: datetime, older_than: timedelta) -> PruneCut:
    before = now - older_than
    if services.settings.monthly_execution_limit > 0:
        before = min(before, month_start(now))  # the monthly limit counts this month's runs
    return PruneCut(
        before=before,
        statuses=tuple(sorted(s.value for s in TERMINAL)),
        finished=(Status.FAILED.value, Status.SUCCESS.value),
        keep_latest=KEEP_LATEST,
        run_statuses=tuple(sorted(s.value for s in RUN_TERMINAL)),
    )


async def prune(
    services: Services,
    older_than: timedelta,
    *,
    dry_run: bool = False,
    pulse: Pulse | None = None,
    pause: bool = False,
) -> PruneReport:
    """Delete history that ended more than ``older_than`` ago (see the module), batch after
    batch until none is left or another node holds the retention lock; with ``dry_run``,
    count it and delete nothing. ``pulse`` hears each batch; with ``pause`` the prune rests
    between batches (see :data:`PAUSE_FACTOR`)."""
    started = time.monotonic()
    now = services.clock.now()
    cut = _cut(services, now, older_than)
    alerts_before = now - older_than
    keys_before = max(now - IDEMPOTENCY_WINDOW, cut.before)
    report = PruneReport()
    if dry_run:
        async with services.store.tx() as tx:
            report.counts = await tx.retention_counts(cut, alerts_before, keys_before, now)
        report.seconds = time.monotonic() - started
        return report
    limit = services.settings.retention_batch

    async def flow_runs(tx: StoreTx) -> tuple[int, int, int]:
        return await tx.prune_flow_runs(cut, limit)

    async def executions(tx: StoreTx) -> int:
        return await tx.prune_executions(cut, limit)

    async def alerts(tx: StoreTx) -> int:
        return await tx.prune_alerts(alerts_before, limit)

    async def fire_keys(tx: StoreTx) -> int:
        return await tx.prune_fire_keys(keys_before, limit)

    async def rate_limit_starts(tx: StoreTx) -> int:
        return await tx.prune_rate_starts(now, limit)

    steps: tuple[tuple[str, Callable[[StoreTx], Awaitable[int | tuple[int, int, int]]]], ...] = (
        ("flow_runs", flow_runs),
        ("executions", executions),
        ("alerts", alerts),
        ("fire_keys", fire_keys),
        ("rate_limit_starts", rate_limit_starts),
    )
    for kind, step in steps:
        while True:
            batch_started = time.monotonic()
            async with services.store.tx() as tx:
                if not await tx.try_lock_retention():
                    report.complete = False
                    report.seconds = time.monotonic() - started
                    return report
                done = await step(tx)
            if isinstance(done, tuple):
                runs, flow_steps, flow_executions = done
                report.counts["flow_runs"] += runs
                report.counts["flow_steps"] += flow_steps
                report.counts["executions"] += flow_executions
                count = runs + flow_steps + flow_executions
            else:
                report.counts[kind] += done
                count = done
            if count == 0:
                break
            report.batches += 1
            report.largest_batch = max(report.largest_batch, count)
            if pulse is not None:
                pulse.beat()
            if pause:
                took = time.monotonic() - batch_started
                await asyncio.sleep(min(MAX_PAUSE_SECONDS, PAUSE_FACTOR * took))
            if kind != "flow_runs" and count < limit:
                break
    report.seconds = time.monotonic() - started
    return report


async def prune_forever(services: Services) -> None:
    """The engine's ``retention`` loop: :func:`prune` history older than ``retention_days``
    every ``retention_interval_seconds`` (started only when ``retention_days`` is set)."""
    settings = services.settings
    pulse = services.loops.pulse("retention")
    while True:
        pulse.busy()
        try:
            report = await prune(
                services, timedelta(days=settings.retention_days), pulse=pulse, pause=True
            )
            if report.deleted:
                kinds = ", ".join(f"{n} {k}" for k, n in report.counts.items() if n)
                log.info("retention deleted %s in %.1f s", kinds, report.seconds)
        except DatabaseUnavailable as exc:
            log.warning("retention prune failed: %s", exc.message)
        except Exception:
            log.exception("retention prune failed")
        pulse.idle()
        await services.clock.sleep_until(
            services.clock.now() + timedelta(seconds=settings.retention_interval_seconds),
            asyncio.Event(),
        )
