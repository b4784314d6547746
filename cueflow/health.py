"""Health, status and server information, for monitors and clients (no authentication).

* ``health``: always answered; ``status`` is ``degraded`` when the database does not answer
  within :data:`DATABASE_TIMEOUT_SECONDS`, another process has held its lock for
  :data:`BUSY_WAIT_SECONDS`, or this process's scheduler loop is not running. ``services``
  reports ``database`` (``ok``/``busy``/``error``) and ``scheduler`` (``ok``/``stale``);
  ``queue`` holds the execution counts of CueAPI's queue (``pending_outbox`` counts pending
  executions of push transports: cueflow has no outbox table, the executions are the queue).
* ``status``: ``healthy``, ``degraded`` (scheduler not running, or database busy) or, when
  the database does not answer, ``down`` (the API layer answers that with 503).
* ``info``: the server's version and authentication model.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cueflow import __version__
from cueflow.errors import DatabaseBusy
from cueflow.store import lock_wait_limit

if TYPE_CHECKING:
    from cueflow.engine import Engine

HEALTH_VERSION = "1.0.0"
"""What ``/health`` reports as ``version`` (CueAPI's clients and tests pin this value)."""
DATABASE_TIMEOUT_SECONDS = 5.0
BUSY_WAIT_SECONDS = 0.5
"""Longest a probe waits for a database lock another process holds before saying ``busy``."""
STALE_EXECUTION_SECONDS = 300


async def _queue(engine: Engine) -> dict[str, int]:
    stale_before = engine.clock.now() - timedelta(seconds=STALE_EXECUTION_SECONDS)
    async with engine.store.tx() as tx:
        return await tx.queue_counts(
            list(engine.push_transports()), engine.pull_transports(), stale_before
        )


async def _database_queue(engine: Engine) -> tuple[str, dict[str, int] | None]:
    """The database's state (``ok``, ``busy`` or ``error``) and, when ``ok``, the queue counts."""
    token = lock_wait_limit.set(BUSY_WAIT_SECONDS)
    try:
        return "ok", await asyncio.wait_for(_queue(engine), DATABASE_TIMEOUT_SECONDS)
    except DatabaseBusy:
        return "busy", None
    except Exception:
        return "error", None
    finally:
        lock_wait_limit.reset(token)


async def health(engine: Engine) -> dict[str, Any]:
    """The body of ``GET /health``."""
    database, queue = await _database_queue(engine)
    services = {
        "database": database,
        "scheduler": "ok" if engine.scheduler_running() else "stale",
    }
    healthy = all(value == "ok" for value in services.values())
    return {
        "status": "healthy" if healthy else "degraded",
        "version": HEALTH_VERSION,
        "timestamp": engine.clock.now().isoformat(),
        "services": services,
        "queue": queue or {},
    }


async def status(engine: Engine) -> dict[str, str]:
    """The body of ``GET /status``: ``status`` ``down`` means the database is unreachable."""
    database, _ = await _database_queue(engine)
    if database == "error":
        return {"status": "down", "reason": "database unreachable"}
    if database == "busy":
        return {"status": "degraded", "reason": "database busy"}
    if not engine.scheduler_running():
        return {"status": "degraded", "reason": "scheduler stale"}
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
