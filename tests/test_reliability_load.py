"""Load: a real ``cueflow serve`` (SQLite, the default store) under a sustained mixed load for
20 seconds — cue creation, listing and fetching, worker heartbeats, four workers polling,
claiming and reporting, webhooks to a local receiver — answers no 5xx and no 4xx other than the
409 a worker gets when another one won a claim, and its memory stays flat.

``scripts/soak.py`` is the long variant (``--minutes 10``, either store).
"""

from __future__ import annotations

from pathlib import Path

from tests.cluster_support import cluster, node_env
from tests.mixed_load import mixed_load
from tests.webhook_support import Receiver

SECONDS = 20
RSS_GROWTH_LIMIT_MIB = 64
"""Allowed growth of the server's resident memory from the first sample (after a warm-up) to
the last: far above what 20 s of steady work adds, far below what a leak per request adds."""


async def test_twenty_seconds_of_mixed_load_answer_no_errors_with_flat_memory(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'load.db'}"
    async with Receiver() as receiver, cluster(url, tmp_path, **node_env()) as (node,):
        figures = await mixed_load(node, receiver.url(), SECONDS, received=receiver.requests)
        logged = node.errors_logged()
    summary = figures.summary()
    print(f"\nload[sqlite]: {summary}")
    assert figures.server_errors == 0, summary
    assert figures.unexpected_refusals == {}, summary
    assert logged == []
    assert figures.outcomes_acknowledged > 100 and figures.webhook_requests > 10, summary
    assert summary["rss_end_mib"] - summary["rss_start_mib"] < RSS_GROWTH_LIMIT_MIB, summary
