"""Health, status and server information, for monitors and clients (no authentication).

* ``health``: always answered; ``status`` is ``degraded`` when the database does not answer
  within :data:`DATABASE_TIMEOUT_SECONDS`, another process has held its lock for
  :data:`BUSY_WAIT_SECONDS`, it failed a recent unit of work that no successful write followed
  (it answers reads but refuses writes, e.g. a full disk), this process's scheduler loop is not
  running, or a background loop is stalled (:mod:`cueflow.loops`). ``services`` reports
  ``database`` (``ok``/``busy``/``error``), ``scheduler`` (``ok``/``stale`` when not running/
  ``stalled``) and each other running loop (``sweeper``, ``dispatcher``, ``listener``:
  ``ok``/``stalled``);
  ``queue`` holds the execution counts of CueAPI's queue (``pending_outbox`` counts pending
  executions of push transports: cueflow has no outbox table, the executions are the queue).
* ``status``: ``healthy``, ``degraded`` (database busy or failing writes, scheduler not
  running, a loop stalled: ``reason`` says which), ``draining`` (the process is shutting down
  and takes no new work: a readiness probe should route elsewhere) or, when the database does
  not answer, ``down`` (the API layer answers those two with 503).
* ``info``: the server's version and authentication model.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cueflow.errors import DatabaseBusy
from cueflow.store import lock_wait_limit
from cueflow.version import __version__

if TYPE_CHECKING:
    from cueflow.services import Services

HEALTH_VERSION = "1.0.0"
"""What ``/health`` reports as ``version`` (CueAPI's clients and tests pin this value)."""
DATABASE_TIMEOUT_SECONDS = 5.0
BUSY_WAIT_SECONDS = 0.5
"""Longest a probe waits for a database lock another process holds before saying ``busy``."""
STALE_EXECUTION_SECONDS = 300


async def _queue(services: Services) -> dict[str, int]:
    stale_before = services.clock.now() - timedelta(seconds=STALE_EXECUTION_SECONDS)
    async with services.store.tx() as tx:
        return await tx.queue_counts(
            list(services.transports.push()), services.transports.pull(), stale_before
        )


async def _database_queue(services: Services) -> tuple[str, dict[str, int] | None]:
    """The database's state (``ok``, ``busy`` or ``error``) and, when ``ok``, the queue counts."""
    token = lock_wait_limit.set(BUSY_WAIT_SECONDS)
    try:
        return "ok", await asyncio.wait_for(_queue(services), DATABASE_TIMEOUT_SECONDS)
    except DatabaseBusy:
        return "busy", None
    except Exception:
        return "error", None
    finally:
        lock_wait_limit.reset(token)


def _database_failure(services: Services) -> str | None:
    """Why the store failed recent work although it answers (stores that track it)."""
    failure = getattr(services.store, "failure", None)
    return failure() if callable(failure) else None


def _loops(services: Services) -> dict[str, str]:
    """``scheduler`` (``ok``, ``stale``: not running, ``stalled``) and each other loop's
    state."""
    states = services.loops.states()
    return {"scheduler": states.pop("scheduler", "stale"), **states}


async def health(services: Services) -> dict[str, Any]:
    """The body of ``GET /health``."""
    database, queue = await _database_queue(services)
    parts = {
        "database": "error" if database == "ok" and _database_failure(services) else database,
        **_loops(services),
    }
    healthy = all(value == "ok" for value in parts.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "version": HEALTH_VERSION,
        "timestamp": services.clock.now().isoformat(),
        "services": parts,
        "queue": queue or {},
    }


async def status(services: Services) -> dict[str, str]:
    """The body of ``GET /status``: ``status`` ``down`` means the database is unreachable,
    ``draining`` that this process is shutting down (checked first, without the database)."""
    if services.signals.draining.is_set():
        return {"status": "draining", "reason": "shutting down"}
    database, _ = await _database_queue(services)
    if database == "error":
        return {"status": "down", "reason": "database unreachable"}
    if database == "busy":
        return {"status": "degraded", "reason": "database busy"}
    failure = _database_failure(services)
    if failure is not None:
        return {"status": "degraded", "reason": f"database failing: {failure}"}
    loops = _loops(services)
    if loops["scheduler"] == "stale":
        return {"status": "degraded", "reason": "scheduler stale"}
    stalled = [name for name, state in loops.items() if state != "ok"]
    if stalled:
        return {"status": "degraded", "reason": f"loop stalled: {', '.join(stalled)}"}
    return {"status": "healthy"}


def info() -> dict[str, Any]:
    """The body of ``GET /v1/info``: cueflow's version; every account authenticates with its
    own API key and sees only its own data; no primitive is switched off."""
    return {
        "version": __version__,
        "authorization_backend": "SameTenantAuthorizationBackend",
        "authentication_paths": {
            "per_user_api_key": True,
            "internal_token_with_on_behalf_of": False,
        },
        "disabled_primitives": [],
    }
