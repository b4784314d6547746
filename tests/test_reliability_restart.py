"""A PostgreSQL restart under a cluster of real ``cueflow serve`` nodes (a private server from
:mod:`tests.pg_instance`: the shared one is never restarted). Every node opens its ``LISTEN``
connection again, so a cue created on one node is fired by another when the first one dies
right after: ``docs/guarantees.md``'s promise that the other nodes keep firing every cue on
time holds across a database restart.

The nodes re-check the database only every 60 s here, so that what is tested is the listener
coming back, not the periodic re-check (``tests/test_loops.py`` tests that one)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cluster_clients import at, register, wait_until
from tests.cluster_support import cluster, node_env
from tests.helpers import cue_body
from tests.pg_instance import PgInstance, private_postgres

pytestmark = pytest.mark.postgres

CUES = 5


async def test_after_a_restart_every_node_listens_again_and_fires_what_a_dead_node_created(
    tmp_path: Path,
) -> None:
    with private_postgres() as pg:
        env = node_env(
            CUEFLOW_SCHEDULER_RECHECK_SECONDS="60",
            CUEFLOW_DATABASE_STATEMENT_TIMEOUT_SECONDS="2",
            CUEFLOW_DATABASE_CONNECT_TIMEOUT_SECONDS="2",
        )
        async with cluster(pg.url(), tmp_path, nodes=2, **env) as (node_a, node_b):
            await wait_until(lambda: _listening(pg, 2), 15, "both nodes listening")
            key = await register(node_b.base)

            restarted = await asyncio.to_thread(_timed, pg.restart)
            await wait_until(lambda: _listening(pg, 2), 15, "both nodes listening again")
            listening = time.monotonic() - restarted

            created = [await _create_once_cue(node_b.base, key) for _ in range(CUES)]
            node_b.kill()  # the node that knows of the cues dies before they are due
            killed = time.monotonic()

            await wait_until(lambda: _fired(pg, created), 15, f"node A firing the {CUES} cues")
            assert node_a.process is not None and node_a.process.poll() is None
            print(
                f"\nrestart: both nodes listening again {listening:.2f} s after the server was"
                f" back; {CUES} cues created on B (killed) fired by A"
                f" {time.monotonic() - killed:.2f} s after the kill (due 2 s after creation)"
            )


def _timed(action: Callable[[], None]) -> float:
    """Run ``action``; the monotonic time it ended."""
    action()
    return time.monotonic()


async def _listening(pg: PgInstance, nodes: int) -> bool:
    """Whether ``nodes`` sessions are listening (cueflow names its LISTEN connections)."""
    conn = await asyncpg.connect(pg.url())
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'cueflow-listener' OR query ILIKE 'LISTEN %'"
        )
    finally:
        await conn.close()
    return bool(count == nodes)


async def _create_once_cue(base: str, key: str) -> str:
    """Create a one-time cue due in 2 s, retrying while the node gets its connections back."""
    body = cue_body(schedule={"type": "once", "at": at(2)})
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:

        async def created() -> str | None:
            response = await client.post("/v1/cues", json=body, headers=headers)
            return str(response.json()["id"]) if response.status_code == 201 else None

        return str(await wait_until(created, 10, "a cue created on node B", pause=0.1))


async def _fired(pg: PgInstance, cue_ids: list[str]) -> bool:
    conn = await asyncpg.connect(pg.url())
    try:
        fired = await conn.fetchval(
            "SELECT count(DISTINCT cue_id) FROM executions WHERE cue_id = ANY($1::text[])",
            cue_ids,
        )
    finally:
        await conn.close()
    return bool(fired == len(cue_ids))
