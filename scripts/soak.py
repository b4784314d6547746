"""Soak: a sustained mixed load on a real ``cueflow serve`` for minutes, with its memory watched.

The long variant of ``tests/test_reliability_load.py``: starts a server (a temporary SQLite file
by default, or ``--database-url postgresql://...``, which should be an empty database), then for
``--minutes`` creates cues, lists and fetches cues and executions, sends worker heartbeats,
runs ``--workers`` workers that poll, claim and report, and receives the webhooks. Prints the
request counts by status, the 5xx and unexpected 4xx counts, and the server's resident memory
at the start (after a warm-up), every minute and at the end, then writes them as JSON. Exits 1
if any 5xx or unexpected 4xx was answered.

    python scripts/soak.py --minutes 10
    python scripts/soak.py --minutes 10 --database-url postgresql://postgres@127.0.0.1:5432/soak
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.cluster_support import cluster, node_env
from tests.mixed_load import mixed_load
from tests.webhook_support import Receiver


async def soak(database_url: str | None, minutes: float, workers: int) -> dict[str, Any]:
    """One soak run; returns its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/soak.db"
        async with Receiver() as receiver, cluster(url, Path(tmp), **node_env()) as (node,):
            figures = await mixed_load(
                node,
                receiver.url(),
                minutes * 60,
                workers=workers,
                sample_every=60,
                received=receiver.requests,
            )
            logged = node.errors_logged()
    return {
        "database": url.split(":")[0],
        "workers": workers,
        **figures.summary(),
        "rss_per_minute_mib": [round(value, 1) for value in figures.rss_mib],
        "tracebacks_logged": len(logged),
    }


def main() -> None:
    """Parse arguments, soak, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/soak.json")
    args = parser.parse_args()
    figures = asyncio.run(soak(args.database_url, args.minutes, args.workers))
    print(json.dumps(figures, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    failed = figures["server_errors_5xx"] or figures["unexpected_4xx"]
    sys.exit(1 if failed or figures["tracebacks_logged"] else 0)


if __name__ == "__main__":
    main()
