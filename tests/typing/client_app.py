"""A user's program against ``cueflow.Client`` and ``cueflow.AsyncClient``: type-checked with
``mypy --strict`` by tests/test_typing.py (``tests/typing`` is in mypy's files), so the
client's methods keep typed arguments and typed answers. ``tests/test_client.py`` runs the same
calls against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import assert_type

import cueflow
from cueflow.client import NotFound, RateLimited, Retries, models


def nightly(client: cueflow.Client) -> list[str]:
    """Create a cue, page through every cue, and handle the typed refusals."""
    cue = client.cues.create(
        {"name": "nightly", "schedule": {"type": "recurring", "cron": "0 2 * * *"}}
    )
    assert_type(cue, models.Cue)
    assert_type(client.cues.iterate(status="active"), Iterator[models.Cue])
    assert_type(client.executions.claim_next({"worker_id": "w1"}), models.Claimed)
    assert_type(client.cues.delete(cue.id), None)
    try:
        client.cues.get(cue.id)
    except NotFound as missing:
        assert_type(missing.status, int)
    except RateLimited as limited:
        assert_type(limited.retry_after, float | None)
    return [c.name for c in client.cues.iterate()]


async def worker(client: cueflow.AsyncClient) -> None:
    """Claim, heartbeat and report as one worker."""
    claimed = await client.executions.claim_batch({"worker_id": "w1", "limit": 5, "wait": 20})
    assert_type(claimed, models.BatchClaimed)
    for item in claimed.claimed:
        beat = await client.executions.heartbeat(item.execution_id, x_worker_id="w1")
        assert_type(beat, models.LeaseExtended)
        report = models.OutcomeReport(success=True, result="done")
        await client.executions.report_outcome(item.execution_id, report, x_worker_id="w1")
    assert_type(client.executions.iterate(status="failed"), AsyncIterator[models.Execution])


def clients() -> tuple[cueflow.Client, cueflow.AsyncClient]:
    """Both clients, with retries bounded."""
    retries = Retries(attempts=5, max_wait=30)
    return (
        cueflow.Client("http://127.0.0.1:8000", "cue_sk_...", retries=retries),
        cueflow.AsyncClient("http://127.0.0.1:8000", "cue_sk_...", retries=retries),
    )
